using System.Numerics.Tensors;

namespace Jevons.Training.Autograd;

public sealed partial class Tape
{
    /// <summary>
    /// MLA's causal attention in its decompressed form (the engine's reference mode), fused:
    /// q [n, heads·(nope+rope)] with q_pe roped, kv [n, heads·(nope+v)] = kv_b(c_kv) per head [k_nope | v],
    /// kpe [n, rope] the roped key part shared by all heads. Rows are <paramref name="batch"/> sequences of
    /// <paramref name="sequence"/> positions. Per head: s_ij = scale·(q_nope_i·k_nope_j + q_pe_i·kpe_j), j ≤ i;
    /// p = softmax_j(s); o_i = Σ_j p_ij v_j → o [n, heads·v]. The probabilities are kept for backward
    /// (memory batch·heads·sequence²). Backward: ds = p ⊙ (dp − Σ_j p dp), dq = scale·ds·k, dk = scale·dsᵀ·q,
    /// dv = pᵀ·do. Sequences run in parallel; heads in order inside one, so the shared dkpe sums are fixed.
    /// </summary>
    public Tensor MlaAttention(Tensor q, Tensor kv, Tensor kpe, int batch, int sequence, int heads, int nope, int rope, int vDim, float scale)
    {
        int n = batch * sequence, qk = nope + rope, qStride = heads * qk, kvStride = heads * (nope + vDim), oStride = heads * vDim;
        if (q.Rows != n || q.Cols != qStride || kv.Rows != n || kv.Cols != kvStride || kpe.Rows != n || kpe.Cols != rope)
            throw new ArgumentException($"MlaAttention: q {q}, kv {kv}, kpe {kpe} do not fit {batch}×{sequence} tokens of {heads} heads");
        var o = Result([n, oStride], q, kv, kpe);
        int T = sequence;
        var probs = new float[(long)batch * heads * T * T];
        Tape self = this;
        ForSequences(batch, b =>
        {
            for (int h = 0; h < heads; h++)
            {
                var p = probs.AsSpan((b * heads + h) * T * T, T * T);
                for (int i = 0; i < T; i++)
                {
                    int ri = b * T + i;
                    var qn = q.Data.AsSpan(ri * qStride + h * qk, nope);
                    var qr = q.Data.AsSpan(ri * qStride + h * qk + nope, rope);
                    var pi = p.Slice(i * T, i + 1);
                    float max = float.NegativeInfinity;
                    for (int j = 0; j <= i; j++)
                    {
                        int rj = b * T + j;
                        float s = scale * (TensorPrimitives.Dot(qn, kv.Data.AsSpan(rj * kvStride + h * (nope + vDim), nope))
                                           + TensorPrimitives.Dot(qr, kpe.Data.AsSpan(rj * rope, rope)));
                        pi[j] = s;
                        max = MathF.Max(max, s);
                    }
                    float sum = 0;
                    for (int j = 0; j <= i; j++) sum += pi[j] = MathF.Exp(pi[j] - max);
                    float invSum = 1f / sum;
                    var oi = o.Data.AsSpan(ri * oStride + h * vDim, vDim);
                    for (int j = 0; j <= i; j++)
                    {
                        pi[j] *= invSum;
                        TensorPrimitives.MultiplyAdd(kv.Data.AsSpan((b * T + j) * kvStride + h * (nope + vDim) + nope, vDim), pi[j], oi, oi);
                    }
                }
            }
        });
        Record(o, () => self.ForSequences(batch, b =>
        {
            var dp = new float[T];
            var dqRow = new float[qk];
            for (int h = 0; h < heads; h++)
            {
                var p = probs.AsSpan((b * heads + h) * T * T, T * T);
                for (int i = 0; i < T; i++)
                {
                    int ri = b * T + i;
                    var doi = o.Grad.AsSpan(ri * oStride + h * vDim, vDim);
                    var pi = p.Slice(i * T, i + 1);
                    float dot = 0;
                    for (int j = 0; j <= i; j++)
                    {
                        int kvRow = (b * T + j) * kvStride + h * (nope + vDim);
                        dp[j] = TensorPrimitives.Dot(doi, kv.Data.AsSpan(kvRow + nope, vDim));
                        dot += pi[j] * dp[j];
                        if (kv.Grad is not null)
                        {
                            var dv = kv.Grad.AsSpan(kvRow + nope, vDim);
                            TensorPrimitives.MultiplyAdd(doi, pi[j], dv, dv);
                        }
                    }
                    var qn = q.Data.AsSpan(ri * qStride + h * qk, nope);
                    var qr = q.Data.AsSpan(ri * qStride + h * qk + nope, rope);
                    Array.Clear(dqRow);
                    for (int j = 0; j <= i; j++)
                    {
                        float ds = scale * pi[j] * (dp[j] - dot);
                        if (ds == 0) continue;
                        int rj = b * T + j, kvRow = rj * kvStride + h * (nope + vDim);
                        TensorPrimitives.MultiplyAdd(kv.Data.AsSpan(kvRow, nope), ds, dqRow.AsSpan(0, nope), dqRow.AsSpan(0, nope));
                        TensorPrimitives.MultiplyAdd(kpe.Data.AsSpan(rj * rope, rope), ds, dqRow.AsSpan(nope, rope), dqRow.AsSpan(nope, rope));
                        if (kv.Grad is not null)
                        {
                            var dk = kv.Grad.AsSpan(kvRow, nope);
                            TensorPrimitives.MultiplyAdd(qn, ds, dk, dk);
                        }
                        if (kpe.Grad is not null)
                        {
                            var dk = kpe.Grad.AsSpan(rj * rope, rope);
                            TensorPrimitives.MultiplyAdd(qr, ds, dk, dk);
                        }
                    }
                    if (q.Grad is not null)
                    {
                        var dq = q.Grad.AsSpan(ri * qStride + h * qk, qk);
                        TensorPrimitives.Add(dq, dqRow, dq);
                    }
                }
            }
        }));
        return o;
    }

    /// <summary>body(b) for every sequence b, spread over the pool; each call writes only its sequence's rows.</summary>
    void ForSequences(int batch, Action<int> body)
    {
        if (batch == 1 || Pool.Threads == 1)
        {
            for (int b = 0; b < batch; b++) body(b);
            return;
        }
        Pool.For(batch, (b0, b1) =>
        {
            for (int b = b0; b < b1; b++) body(b);
        });
    }
}

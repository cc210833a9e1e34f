namespace Jevons.Numerics.Quants;

/// <summary>
/// Row quantisers for writing files, mirroring llama.cpp's quantize_row_*_ref (what llama-quantize
/// writes without an importance matrix), so synthetic files look like real ones.
/// </summary>
internal static unsafe class ReferenceQuantizer
{
    static int NearestInt(float v) => (int)MathF.Round(v);

    static void PutHalf(byte* p, float v) => *(Half*)p = (Half)v;
    static float GetHalf(byte* p) => (float)*(Half*)p;

    public static void Q8_0(float* x, byte* y, int k)
    {
        for (int i = 0; i < k / 32; i++, x += 32, y += 34)
        {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
            float d = amax / 127, id = d != 0 ? 1f / d : 0f;
            PutHalf(y, d);
            for (int j = 0; j < 32; j++) ((sbyte*)y)[2 + j] = (sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
        }
    }

    static void AbsMaxSigned(float* x, int n, out float amax, out float max)
    {
        amax = 0; max = 0;
        for (int j = 0; j < n; j++)
        {
            float v = x[j];
            if (amax < MathF.Abs(v)) { amax = MathF.Abs(v); max = v; }
        }
    }

    public static void Q4_0(float* x, byte* y, int k)
    {
        for (int i = 0; i < k / 32; i++, x += 32, y += 18)
        {
            AbsMaxSigned(x, 32, out _, out float max);
            float d = max / -8, id = d != 0 ? 1f / d : 0f;
            PutHalf(y, d);
            for (int j = 0; j < 16; j++)
            {
                int xi0 = Math.Min(15, (int)(x[j] * id + 8.5f));
                int xi1 = Math.Min(15, (int)(x[16 + j] * id + 8.5f));
                y[2 + j] = (byte)(xi0 | (xi1 << 4));
            }
        }
    }

    public static void Q4_1(float* x, byte* y, int k)
    {
        for (int i = 0; i < k / 32; i++, x += 32, y += 20)
        {
            float min = float.MaxValue, max = float.MinValue;
            for (int j = 0; j < 32; j++) { min = MathF.Min(min, x[j]); max = MathF.Max(max, x[j]); }
            float d = (max - min) / 15, id = d != 0 ? 1f / d : 0f;
            PutHalf(y, d);
            PutHalf(y + 2, min);
            for (int j = 0; j < 16; j++)
            {
                int xi0 = Math.Min(15, (int)((x[j] - min) * id + 0.5f));
                int xi1 = Math.Min(15, (int)((x[16 + j] - min) * id + 0.5f));
                y[4 + j] = (byte)(xi0 | (xi1 << 4));
            }
        }
    }

    public static void Q5_0(float* x, byte* y, int k)
    {
        for (int i = 0; i < k / 32; i++, x += 32, y += 22)
        {
            AbsMaxSigned(x, 32, out _, out float max);
            float d = max / -16, id = d != 0 ? 1f / d : 0f;
            PutHalf(y, d);
            uint qh = 0;
            for (int j = 0; j < 16; j++)
            {
                int xi0 = Math.Min(31, (int)(x[j] * id + 16.5f));
                int xi1 = Math.Min(31, (int)(x[16 + j] * id + 16.5f));
                y[6 + j] = (byte)((xi0 & 0xF) | ((xi1 & 0xF) << 4));
                qh |= (uint)((xi0 & 0x10) >> 4) << j;
                qh |= (uint)((xi1 & 0x10) >> 4) << (j + 16);
            }
            *(uint*)(y + 2) = qh;
        }
    }

    public static void Q5_1(float* x, byte* y, int k)
    {
        for (int i = 0; i < k / 32; i++, x += 32, y += 24)
        {
            float min = float.MaxValue, max = float.MinValue;
            for (int j = 0; j < 32; j++) { min = MathF.Min(min, x[j]); max = MathF.Max(max, x[j]); }
            float d = (max - min) / 31, id = d != 0 ? 1f / d : 0f;
            PutHalf(y, d);
            PutHalf(y + 2, min);
            uint qh = 0;
            for (int j = 0; j < 16; j++)
            {
                int xi0 = Math.Min(31, (int)((x[j] - min) * id + 0.5f));
                int xi1 = Math.Min(31, (int)((x[16 + j] - min) * id + 0.5f));
                y[8 + j] = (byte)((xi0 & 0xF) | ((xi1 & 0xF) << 4));
                qh |= (uint)((xi0 & 0x10) >> 4) << j;
                qh |= (uint)((xi1 & 0x10) >> 4) << (j + 16);
            }
            *(uint*)(y + 4) = qh;
        }
    }

    const float GroupMaxEps = 1e-15f;

    static float MakeQxQuants(int n, int nmax, float* x, sbyte* L, int rmseType)
    {
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < GroupMaxEps)
        {
            for (int i = 0; i < n; i++) L[i] = 0;
            return 0;
        }
        float iscale = -nmax / max;
        if (rmseType == 0)
        {
            for (int i = 0; i < n; i++)
            {
                int l = NearestInt(iscale * x[i]);
                L[i] = (sbyte)(nmax + Math.Max(-nmax, Math.Min(nmax - 1, l)));
            }
            return 1 / iscale;
        }
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++)
        {
            int l = NearestInt(iscale * x[i]);
            l = Math.Max(-nmax, Math.Min(nmax - 1, l));
            L[i] = (sbyte)(l + nmax);
            float w = x[i] * x[i]; // rmse_type 1
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0;
        float best = scale * sumlx;
        for (int it = -9; it <= 9; it++)
        {
            if (it == 0) continue;
            iscale = -(nmax + 0.1f * it) / max;
            sumlx = suml2 = 0;
            for (int i = 0; i < n; i++)
            {
                int l = NearestInt(iscale * x[i]);
                l = Math.Max(-nmax, Math.Min(nmax - 1, l));
                float w = x[i] * x[i];
                sumlx += w * x[i] * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2)
            {
                for (int i = 0; i < n; i++)
                {
                    int l = NearestInt(iscale * x[i]);
                    L[i] = (sbyte)(nmax + Math.Max(-nmax, Math.Min(nmax - 1, l)));
                }
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    static float MakeQ3Quants(int n, int nmax, float* x, sbyte* L)
    {
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < GroupMaxEps)
        {
            for (int i = 0; i < n; i++) L[i] = 0;
            return 0;
        }
        float iscale = -nmax / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++)
        {
            int l = NearestInt(iscale * x[i]);
            l = Math.Max(-nmax, Math.Min(nmax - 1, l));
            L[i] = (sbyte)l;
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        for (int itry = 0; itry < 5; itry++)
        {
            int changed = 0;
            for (int i = 0; i < n; i++)
            {
                float w = x[i] * x[i];
                float slx = sumlx - w * x[i] * L[i];
                if (slx > 0)
                {
                    float sl2 = suml2 - w * L[i] * L[i];
                    int newL = NearestInt(x[i] * sl2 / slx);
                    newL = Math.Max(-nmax, Math.Min(nmax - 1, newL));
                    if (newL != L[i])
                    {
                        slx += w * x[i] * newL;
                        sl2 += w * newL * newL;
                        if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2)
                        {
                            L[i] = (sbyte)newL; sumlx = slx; suml2 = sl2;
                            changed++;
                        }
                    }
                }
            }
            if (changed == 0) break;
        }
        for (int i = 0; i < n; i++) L[i] += (sbyte)nmax;
        return suml2 > 0 ? sumlx / suml2 : 0;
    }

    static float MakeQkx2Quants(int n, int nmax, float* x, float* weights, byte* L, out float theMin, byte* Laux,
        float rmin, float rdelta, int nstep, bool useMad)
    {
        float min = x[0], max = x[0];
        float sumW = weights[0], sumX = sumW * x[0];
        for (int i = 1; i < n; i++)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            float w = weights[i];
            sumW += w;
            sumX += w * x[i];
        }
        if (min > 0) min = 0;
        if (max == min)
        {
            for (int i = 0; i < n; i++) L[i] = 0;
            theMin = -min;
            return 0;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++)
        {
            int l = NearestInt(iscale * (x[i] - min));
            L[i] = (byte)Math.Max(0, Math.Min(nmax, l));
            float diff = scale * L[i] + min - x[i];
            diff = useMad ? MathF.Abs(diff) : diff * diff;
            bestError += weights[i] * diff;
        }
        if (nstep < 1)
        {
            theMin = -min;
            return scale;
        }
        for (int it = 0; it <= nstep; it++)
        {
            iscale = (rmin + rdelta * it + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; i++)
            {
                int l = NearestInt(iscale * (x[i] - min));
                l = Math.Max(0, Math.Min(nmax, l));
                Laux[i] = (byte)l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * x[i];
            }
            float D = sumW * sumL2 - sumL * sumL;
            if (D > 0)
            {
                float thisScale = (sumW * sumXL - sumX * sumL) / D;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / D;
                if (thisMin > 0)
                {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float curError = 0;
                for (int i = 0; i < n; i++)
                {
                    float diff = thisScale * Laux[i] + thisMin - x[i];
                    diff = useMad ? MathF.Abs(diff) : diff * diff;
                    curError += weights[i] * diff;
                }
                if (curError < bestError)
                {
                    for (int i = 0; i < n; i++) L[i] = Laux[i];
                    bestError = curError;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin = -min;
        return scale;
    }

    public static void Q2_K(float* x, byte* y, int k)
    {
        byte* L = stackalloc byte[256];
        byte* Laux = stackalloc byte[16];
        float* weights = stackalloc float[16];
        float* mins = stackalloc float[16];
        float* scales = stackalloc float[16];
        const float q4scale = 15f;
        for (int i = 0; i < k / 256; i++, x += 256, y += 84)
        {
            byte* ysc = y, qs = y + 16;
            float maxScale = 0, maxMin = 0;
            for (int j = 0; j < 16; j++)
            {
                for (int l = 0; l < 16; l++) weights[l] = MathF.Abs(x[16 * j + l]);
                scales[j] = MakeQkx2Quants(16, 3, x + 16 * j, weights, L + 16 * j, out mins[j], Laux, -0.5f, 0.1f, 15, true);
                if (scales[j] > maxScale) maxScale = scales[j];
                if (mins[j] > maxMin) maxMin = mins[j];
            }
            if (maxScale > 0)
            {
                float iscale = q4scale / maxScale;
                for (int j = 0; j < 16; j++) ysc[j] = (byte)NearestInt(iscale * scales[j]);
                PutHalf(y + 80, maxScale / q4scale);
            }
            else
            {
                for (int j = 0; j < 16; j++) ysc[j] = 0;
                PutHalf(y + 80, 0);
            }
            if (maxMin > 0)
            {
                float iscale = q4scale / maxMin;
                for (int j = 0; j < 16; j++) ysc[j] |= (byte)(NearestInt(iscale * mins[j]) << 4);
                PutHalf(y + 82, maxMin / q4scale);
            }
            else PutHalf(y + 82, 0);
            for (int j = 0; j < 16; j++)
            {
                float d = GetHalf(y + 80) * (ysc[j] & 0xF);
                if (d == 0) continue;
                float dm = GetHalf(y + 82) * (ysc[j] >> 4);
                for (int ii = 0; ii < 16; ii++)
                {
                    int l = NearestInt((x[16 * j + ii] + dm) / d);
                    L[16 * j + ii] = (byte)Math.Max(0, Math.Min(3, l));
                }
            }
            for (int j = 0; j < 256; j += 128)
                for (int l = 0; l < 32; l++)
                    qs[j / 4 + l] = (byte)((L[j + l] & 3) | ((L[j + l + 32] & 3) << 2) | ((L[j + l + 64] & 3) << 4) | ((L[j + l + 96] & 3) << 6));
        }
    }

    public static void Q3_K(float* x, byte* y, int k)
    {
        sbyte* L = stackalloc sbyte[256];
        float* scales = stackalloc float[16];
        for (int i = 0; i < k / 256; i++, x += 256, y += 110)
        {
            byte* hmask = y, qs = y + 32, ysc = y + 96;
            float maxScale = 0, amax = 0;
            for (int j = 0; j < 16; j++)
            {
                scales[j] = MakeQ3Quants(16, 4, x + 16 * j, L + 16 * j);
                float scale = MathF.Abs(scales[j]);
                if (scale > amax) { amax = scale; maxScale = scales[j]; }
            }
            new Span<byte>(ysc, 12).Clear();
            if (maxScale != 0)
            {
                float iscale = -32f / maxScale;
                for (int j = 0; j < 16; j++)
                {
                    int l = (sbyte)NearestInt(iscale * scales[j]);
                    l = Math.Max(-32, Math.Min(31, l)) + 32;
                    if (j < 8) ysc[j] = (byte)(l & 0xF);
                    else ysc[j - 8] |= (byte)((l & 0xF) << 4);
                    l >>= 4;
                    ysc[j % 4 + 8] |= (byte)(l << (2 * (j / 4)));
                }
                PutHalf(y + 108, 1 / iscale);
            }
            else PutHalf(y + 108, 0);
            for (int j = 0; j < 16; j++)
            {
                int sc = Jevons.Numerics.Quants.KBits.Q3Scale(j, ysc);
                float d = GetHalf(y + 108) * sc;
                if (d == 0) continue;
                for (int ii = 0; ii < 16; ii++)
                {
                    int l = NearestInt(x[16 * j + ii] / d);
                    L[16 * j + ii] = (sbyte)(Math.Max(-4, Math.Min(3, l)) + 4);
                }
            }
            new Span<byte>(hmask, 32).Clear();
            int m = 0;
            byte hm = 1;
            for (int j = 0; j < 256; j++)
            {
                if (L[j] > 3)
                {
                    hmask[m] |= hm;
                    L[j] -= 4;
                }
                if (++m == 32) { m = 0; hm <<= 1; }
            }
            for (int j = 0; j < 256; j += 128)
                for (int l = 0; l < 32; l++)
                    qs[j / 4 + l] = (byte)((L[j + l] & 3) | ((L[j + l + 32] & 3) << 2) | ((L[j + l + 64] & 3) << 4) | ((L[j + l + 96] & 3) << 6));
        }
    }

    static void PackScaleMin(byte* scales, int j, int ls, int lm)
    {
        if (j < 4)
        {
            scales[j] = (byte)ls;
            scales[j + 4] = (byte)lm;
        }
        else
        {
            scales[j + 4] = (byte)((ls & 0xF) | ((lm & 0xF) << 4));
            scales[j - 4] |= (byte)((ls >> 4) << 6);
            scales[j] |= (byte)((lm >> 4) << 6);
        }
    }

    /// <summary>Q4_K (nmax 15) and Q5_K (nmax 31): the shared scale/min search, then the per-format packing.</summary>
    static void KWithMins(float* x, byte* L, byte* scalesOut, out float d, out float dmin, int nmax, float rmin, float rdelta, int nstep, byte* yHeader)
    {
        byte* Laux = stackalloc byte[32];
        float* weights = stackalloc float[32];
        float* mins = stackalloc float[8];
        float* scales = stackalloc float[8];
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; j++)
        {
            float sumX2 = 0;
            for (int l = 0; l < 32; l++) sumX2 += x[32 * j + l] * x[32 * j + l];
            float avX = MathF.Sqrt(sumX2 / 32);
            for (int l = 0; l < 32; l++) weights[l] = avX + MathF.Abs(x[32 * j + l]);
            scales[j] = MakeQkx2Quants(32, nmax, x + 32 * j, weights, L + 32 * j, out mins[j], Laux, rmin, rdelta, nstep, false);
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }
        float invScale = maxScale > 0 ? 63f / maxScale : 0f;
        float invMin = maxMin > 0 ? 63f / maxMin : 0f;
        new Span<byte>(scalesOut, 12).Clear();
        for (int j = 0; j < 8; j++)
        {
            int ls = Math.Min(63, (int)(byte)NearestInt(invScale * scales[j]));
            int lm = Math.Min(63, (int)(byte)NearestInt(invMin * mins[j]));
            PackScaleMin(scalesOut, j, ls, lm);
        }
        PutHalf(yHeader, maxScale / 63f);
        PutHalf(yHeader + 2, maxMin / 63f);
        d = GetHalf(yHeader);
        dmin = GetHalf(yHeader + 2);
        for (int j = 0; j < 8; j++)
        {
            KBits.ScaleMin(j, scalesOut, out int sc, out int m);
            float dd = d * sc;
            if (dd == 0) continue;
            float dm = dmin * m;
            for (int ii = 0; ii < 32; ii++)
            {
                int l = NearestInt((x[32 * j + ii] + dm) / dd);
                L[32 * j + ii] = (byte)Math.Max(0, Math.Min(nmax, l));
            }
        }
    }

    public static void Q4_K(float* x, byte* y, int k)
    {
        byte* L = stackalloc byte[256];
        for (int i = 0; i < k / 256; i++, x += 256, y += 144)
        {
            KWithMins(x, L, y + 4, out _, out _, 15, -1f, 0.1f, 20, y);
            byte* q = y + 16;
            for (int j = 0; j < 256; j += 64, q += 32)
                for (int l = 0; l < 32; l++) q[l] = (byte)(L[j + l] | (L[j + l + 32] << 4));
        }
    }

    public static void Q5_K(float* x, byte* y, int k)
    {
        byte* L = stackalloc byte[256];
        for (int i = 0; i < k / 256; i++, x += 256, y += 176)
        {
            KWithMins(x, L, y + 4, out _, out _, 31, -0.5f, 0.1f, 15, y);
            byte* qh = y + 16, ql = y + 48;
            new Span<byte>(qh, 32).Clear();
            byte m1 = 1, m2 = 2;
            for (int n = 0; n < 256; n += 64, ql += 32)
            {
                for (int j = 0; j < 32; j++)
                {
                    int l1 = L[n + j];
                    if (l1 > 15) { l1 -= 16; qh[j] |= m1; }
                    int l2 = L[n + j + 32];
                    if (l2 > 15) { l2 -= 16; qh[j] |= m2; }
                    ql[j] = (byte)(l1 | (l2 << 4));
                }
                m1 <<= 2; m2 <<= 2;
            }
        }
    }

    public static void Q6_K(float* x, byte* y, int k)
    {
        sbyte* L = stackalloc sbyte[256];
        float* scales = stackalloc float[16];
        for (int i = 0; i < k / 256; i++, x += 256, y += 210)
        {
            float maxScale = 0, maxAbsScale = 0;
            for (int ib = 0; ib < 16; ib++)
            {
                float scale = MakeQxQuants(16, 32, x + 16 * ib, L + 16 * ib, 1);
                scales[ib] = scale;
                float abs = MathF.Abs(scale);
                if (abs > maxAbsScale) { maxAbsScale = abs; maxScale = scale; }
            }
            if (maxAbsScale < GroupMaxEps)
            {
                new Span<byte>(y, 210).Clear();
                continue;
            }
            float iscale = -128f / maxScale;
            PutHalf(y + 208, 1 / iscale);
            sbyte* ysc = (sbyte*)(y + 192);
            for (int ib = 0; ib < 16; ib++) ysc[ib] = (sbyte)Math.Min(127, NearestInt(iscale * scales[ib]));
            for (int j = 0; j < 16; j++)
            {
                float d = GetHalf(y + 208) * ysc[j];
                if (d == 0) continue;
                for (int ii = 0; ii < 16; ii++)
                {
                    int l = NearestInt(x[16 * j + ii] / d);
                    L[16 * j + ii] = (sbyte)(Math.Max(-32, Math.Min(31, l)) + 32);
                }
            }
            byte* ql = y, qh = y + 128;
            for (int j = 0; j < 256; j += 128, ql += 64, qh += 32)
                for (int l = 0; l < 32; l++)
                {
                    int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                    ql[l] = (byte)(q1 | (q3 << 4));
                    ql[l + 32] = (byte)(q2 | (q4 << 4));
                    qh[l] = (byte)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
                }
        }
    }
}

using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Jevons.Numerics.Quants;
using Jevons.Numerics.Simd;

namespace Jevons.Numerics.Kernels;

/// <summary>
/// Many products Y_p[m_p, out_p] = X_p·W_pᵀ in one parallel loop: the experts of a MoE layer, each over the rows
/// routed to it, or matrices that read the same input (MLA's q and kv_a). A source matrix X is quantised to
/// Q8_0 once however many products read it; a product reads a set of the source's rows. The work items are
/// (product, tile of four weight rows) over all products, so the pool forks and joins once for all of them,
/// every weight row is read once, and no core waits at a join per matrix.
/// Each (row, token) is the integer dot MatMul runs, in the same float order, so a product has the bits of
/// <see cref="MatMul.Gemm(Linear, ReadOnlySpan{float}, Span{float}, int, WorkerPool)"/> over its rows.
/// Reusable: <see cref="Clear"/>, add sources, sets and products, <see cref="Run"/>. Its scratch grows to the
/// largest call and stays, so a steady decode step allocates nothing. Callers keep the float buffers they
/// pass fixed until <see cref="Run"/> returns.
/// </summary>
public sealed unsafe class GroupedGemm
{
    const int TileRows = 4;

    struct Source
    {
        public float* X;
        public int Rows, In, Blocks;
        public long Quant;      // offset of [rows][blocks·34] Q8_0 in the scratch
        public long Scales;     // offset of [rows][blocks] d_x as float
    }

    struct Set
    {
        public int Source, First, Count, NPad;
        public int Index;       // offset in _rows of its source row indices; -1: rows First .. First + Count − 1
        public long Packed;     // offset of the tile layout (xs, dx, dx2), or -1 while unpacked
    }

    struct Product
    {
        public byte* W;
        public long RowBytes;
        public int Out, Blocks, Set;
        public float* Y;
        public long YStride;
        public float* Bias;     // the weight's pinned bias, or null
        public DType Type;
        public delegate*<Job*, Product*, int, int, void> Kernel;
    }

    struct Job
    {
        public Product* Products;
        public int* ItemStart;   // [products + 1]
        public int ProductCount;
        public Set* Sets;
        public Source* Sources;
        public int* Rows;
        public byte* Scratch;
        public KernelPath Path;
        public int Width;
    }

    Source[] _sources = new Source[4];
    Set[] _sets = new Set[16];
    Product[] _products = new Product[16];
    int[] _itemStart = new int[17];
    int[] _rows = new int[64];
    int _sourceCount, _setCount, _productCount, _rowCount;
    byte[] _buffer = [];   // pinned: the scratch pointer stays valid for the object's life
    byte* _scratch;

    /// <summary>Whether <paramref name="w"/> can be a product here: a 32-element integer format (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) without block scales (a bias is added as MatMul adds it).</summary>
    public static bool Supports(Linear w) =>
        w.ScaleInv == null && w.InFeatures % 32 == 0
        && w.Type is DType.Q8_0 or DType.Q4_0 or DType.Q4_1 or DType.Q5_0 or DType.Q5_1;

    public void Clear() => _sourceCount = _setCount = _productCount = _rowCount = 0;

    /// <summary>A source matrix x[rows, in] (in a multiple of 32); its id.</summary>
    public int AddSource(float* x, int rows, int inFeatures)
    {
        if (inFeatures % 32 != 0) throw new ArgumentException($"in-features {inFeatures} is not a multiple of 32");
        Grow(ref _sources, _sourceCount + 1);
        _sources[_sourceCount] = new Source { X = x, Rows = rows, In = inFeatures, Blocks = inFeatures / 32 };
        return _sourceCount++;
    }

    /// <summary>Rows first .. first + count − 1 of a source; its id.</summary>
    public int AddSet(int source, int first, int count)
    {
        if ((uint)source >= (uint)_sourceCount || first < 0 || count <= 0 || first + count > _sources[source].Rows)
            throw new ArgumentException($"rows {first}..{first + count - 1} are not inside source {source}");
        Grow(ref _sets, _setCount + 1);
        _sets[_setCount] = new Set { Source = source, First = first, Count = count, NPad = (count + 1) & ~1, Index = -1, Packed = -1 };
        return _setCount++;
    }

    /// <summary>The given rows of a source, in this order; its id.</summary>
    public int AddSet(int source, ReadOnlySpan<int> rows)
    {
        if ((uint)source >= (uint)_sourceCount || rows.IsEmpty) throw new ArgumentException("a set needs a source and at least one row");
        foreach (int r in rows)
            if ((uint)r >= (uint)_sources[source].Rows) throw new ArgumentException($"row {r} is not inside source {source}");
        Grow(ref _rows, _rowCount + rows.Length);
        rows.CopyTo(_rows.AsSpan(_rowCount));
        Grow(ref _sets, _setCount + 1);
        _sets[_setCount] = new Set { Source = source, Count = rows.Length, NPad = (rows.Length + 1) & ~1, Index = _rowCount, Packed = -1 };
        _rowCount += rows.Length;
        return _setCount++;
    }

    /// <summary>y[i·yStride + r] = W[r]·x[set row i] (+ bias[r]) for every row r of W and row i of the set.</summary>
    public void AddProduct(Linear w, int set, float* y, long yStride)
    {
        if (!Supports(w)) JevonsException.Throw($"a grouped product cannot take weights of type {w.Type.Name()}", w.File, w.Name);
        if ((uint)set >= (uint)_setCount || _sources[_sets[set].Source].In != w.InFeatures)
            throw new ArgumentException($"{w.Name}: set {set} does not have {w.InFeatures} columns");
        if (yStride < w.OutFeatures) throw new ArgumentException($"{w.Name}: output stride {yStride} is below {w.OutFeatures} rows");
        Grow(ref _products, _productCount + 1);
        _products[_productCount++] = new Product
        {
            W = w.Data, RowBytes = w.RowBytes, Out = w.OutFeatures, Blocks = w.InFeatures / 32, Set = set, Y = y, YStride = yStride, Type = w.Type,
            Bias = w.BiasPointer,
        };
    }

    /// <summary>
    /// y_i[n, out_i] = x[n, in]·W_iᵀ (+ bias_i) for two or three products that read the same x (gate and up, q/k/v,
    /// MLA's q and kv_a): one quantisation of x and one parallel loop, the bits of one Gemm each. Clears this object first.
    /// </summary>
    public void RunOnSameInput(ReadOnlySpan<float> x, int n, Linear a, Span<float> ya, Linear b, Span<float> yb, WorkerPool pool) =>
        RunOnSameInput(x, n, a, ya, b, yb, null, default, pool);

    /// <inheritdoc cref="RunOnSameInput(ReadOnlySpan{float}, int, Linear, Span{float}, Linear, Span{float}, WorkerPool)"/>
    public void RunOnSameInput(ReadOnlySpan<float> x, int n, Linear a, Span<float> ya, Linear b, Span<float> yb, Linear? c, Span<float> yc, WorkerPool pool)
    {
        int inF = a.InFeatures;
        if (n <= 0 || x.Length < (long)n * inF) throw new ArgumentException($"{a.Name}: x has {x.Length} values, need {n}x{inF}");
        Check(a, ya.Length, n, inF);
        Check(b, yb.Length, n, inF);
        if (c is not null) Check(c, yc.Length, n, inF);
        fixed (float* px = x, pa = ya, pb = yb, pc = yc)
        {
            Clear();
            int set = AddSet(AddSource(px, n, inF), 0, n);
            AddProduct(a, set, pa, a.OutFeatures);
            AddProduct(b, set, pb, b.OutFeatures);
            if (c is not null) AddProduct(c, set, pc, c.OutFeatures);
            Run(pool);
        }
    }

    static void Check(Linear w, int length, int n, int inF)
    {
        if (w.InFeatures != inF || length < (long)n * w.OutFeatures)
            throw new ArgumentException($"{w.Name}: {w.InFeatures} inputs (need {inF}), output has {length} values (need {n}x{w.OutFeatures})");
    }

    /// <summary>Quantises every source once, packs the sets the tiles read, then runs all products' row tiles in one loop.</summary>
    public void Run(WorkerPool pool)
    {
        if (_productCount == 0) return;
        var path = pool.Path;
        int width = GemmTiles.Enabled ? GemmTiles.Width(path) : 0;
        bool rows4 = Int8Dot.HasRows4(path);

        // kernels first: they decide which sets need the tile layout
        for (int p = 0; p < _productCount; p++)
        {
            ref var pr = ref _products[p];
            ref var set = ref _sets[pr.Set];
            bool tile = width != 0 && pr.Type is DType.Q8_0 or DType.Q4_0 or DType.Q5_0;
            // one token: four rows per pass with 256-bit dots (a 512-bit tile would spend half its lanes on padding)
            if (set.Count == 1 && rows4) pr.Kernel = pr.Type switch
            {
                DType.Q8_0 => &Rows4<Q8_0Format>, DType.Q4_0 => &Rows4<Q4_0Format>, DType.Q4_1 => &Rows4<Q4_1Format>,
                DType.Q5_0 => &Rows4<Q5_0Format>, _ => &Rows4<Q5_1Format>,
            };
            else if (tile)
            {
                pr.Kernel = pr.Type switch { DType.Q8_0 => &Tiles<Q8_0Format>, DType.Q4_0 => &Tiles<Q4_0Format>, _ => &Tiles<Q5_0Format> };
                set.Packed = 0;
            }
            else pr.Kernel = pr.Type switch
            {
                DType.Q8_0 => &Dots<Q8_0Format>, DType.Q4_0 => &Dots<Q4_0Format>, DType.Q4_1 => &Dots<Q4_1Format>,
                DType.Q5_0 => &Dots<Q5_0Format>, _ => &Dots<Q5_1Format>,
            };
        }

        // scratch: quantised sources, their scales, packed sets (64-byte aligned pieces)
        long bytes = 0;
        for (int s = 0; s < _sourceCount; s++)
        {
            ref var src = ref _sources[s];
            src.Quant = bytes;
            bytes += Align((long)src.Rows * src.Blocks * 34);
            src.Scales = bytes;
            bytes += Align((long)src.Rows * src.Blocks * 4);
        }
        for (int i = 0; i < _setCount; i++)
        {
            ref var set = ref _sets[i];
            if (set.Packed < 0) continue;
            set.Packed = bytes;
            bytes += PackedBytes(set.NPad, _sources[set.Source].Blocks);
        }
        EnsureScratch(bytes);

        for (int s = 0; s < _sourceCount; s++)
        {
            ref var src = ref _sources[s];
            byte* q = _scratch + src.Quant;
            float* dx = (float*)(_scratch + src.Scales);
            long qBytes = src.Blocks * 34L;
            for (int r = 0; r < src.Rows; r++)
            {
                ActivationQuant.QuantizeQ8_0(src.X + (long)r * src.In, q + r * qBytes, src.In);
                Int8Dot.ActivationScales(q + r * qBytes, dx + (long)r * src.Blocks, src.Blocks);
            }
        }
        for (int i = 0; i < _setCount; i++)
        {
            ref var set = ref _sets[i];
            if (set.Packed < 0) continue;
            ref var src = ref _sources[set.Source];
            int blocks = src.Blocks;
            Packed(_scratch + set.Packed, blocks, set.NPad, out var xs, out var dx, out var dx2);
            for (int t = 0; t < set.NPad; t++)
            {
                if (t < set.Count)
                    GemmTiles.PackLegacyToken(_scratch + src.Quant + (long)SourceRow(set, t) * blocks * 34, blocks, t, set.NPad, xs, dx, dx2);
                else
                    for (int b = 0; b < blocks; b++) // the padding token of an odd count: zeros
                    {
                        new Span<sbyte>(xs + ((long)b * set.NPad + t) * 32, 32).Clear();
                        dx[(long)b * set.NPad + t] = 0;
                        new Span<float>(dx2 + ((long)b * (set.NPad / 2) + t / 2) * 16 + (t & 1) * 8, 8).Clear();
                    }
            }
        }

        Grow(ref _itemStart, _productCount + 1);
        _itemStart[0] = 0;
        for (int p = 0; p < _productCount; p++)
            _itemStart[p + 1] = checked(_itemStart[p] + (_products[p].Out + TileRows - 1) / TileRows);
        int items = _itemStart[_productCount];

        fixed (Product* products = _products)
        fixed (int* itemStart = _itemStart)
        fixed (Set* sets = _sets)
        fixed (Source* sources = _sources)
        fixed (int* rowIndex = _rows)
        {
            var job = new Job
            {
                Products = products, ItemStart = itemStart, ProductCount = _productCount, Sets = sets, Sources = sources,
                Rows = rowIndex, Scratch = _scratch, Path = path, Width = width,
            };
            // many small chunks: the items differ in cost (tokens per product), and the last chunk is what a core waits for
            pool.Run(items, &Items, &job, Math.Min(items, pool.Threads * 32));
        }
    }

    int SourceRow(in Set set, int i) => set.Index < 0 ? set.First + i : _rows[set.Index + i];

    static int SourceRow(Job* j, Set* set, int i) => set->Index < 0 ? set->First + i : j->Rows[set->Index + i];

    static long Align(long bytes) => (bytes + 63) & ~63L;

    static long PackedBytes(int nPad, int blocks) =>
        Align((long)blocks * nPad * 32) + Align((long)blocks * nPad * 4) + Align((long)blocks * (nPad / 2) * 64);

    /// <summary>A packed set's pieces: xs [block][nPad][32], dx [block][nPad], dx2 [block][pair][16].</summary>
    static void Packed(byte* packed, int blocks, int nPad, out sbyte* xs, out float* dx, out float* dx2)
    {
        xs = (sbyte*)packed;
        dx = (float*)(packed + Align((long)blocks * nPad * 32));
        dx2 = (float*)((byte*)dx + Align((long)blocks * nPad * 4));
    }

    static void Items(void* ctx, int start, int end)
    {
        var j = (Job*)ctx;
        int lo = 0, hi = j->ProductCount - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (j->ItemStart[mid] <= start) lo = mid; else hi = mid - 1;
        }
        for (int p = lo; start < end; p++)
        {
            int first = j->ItemStart[p], stop = Math.Min(end, j->ItemStart[p + 1]);
            if (stop > start) j->Products[p].Kernel(j, j->Products + p, start - first, stop - first);
            start = Math.Max(start, stop);
        }
    }

    /// <summary>Row tiles t0 .. t1 − 1 of a product whose set is packed for the tile kernels.</summary>
    static void Tiles<T>(Job* j, Product* p, int t0, int t1) where T : struct, ILegacyBlock
    {
        var set = j->Sets + p->Set;
        int blocks = p->Blocks, nPad = set->NPad;
        Packed(j->Scratch + set->Packed, blocks, nPad, out var xs, out var dx, out var dx2);
        float* lanes = stackalloc float[GemmTiles.LegacyLanes];
        byte** rows = stackalloc byte*[TileRows];
        float[] rented = ArrayPool<float>.Shared.Rent(TileRows * blocks);
        fixed (float* dw = rented)
            for (int tile = t0; tile < t1; tile++)
                GemmTiles.LegacyRowTile<T>(p->W, p->RowBytes, p->Out, blocks, tile * TileRows, xs, dx, dx2, set->Count, nPad, p->Y, p->YStride, p->Bias,
                    j->Width, dw, lanes, rows);
        ArrayPool<float>.Shared.Return(rented);
    }

    /// <summary>Row tiles of a one-row set: four weight rows per pass against the row's activation blocks (MatMul's MatVec kernel).</summary>
    static void Rows4<T>(Job* j, Product* p, int t0, int t1) where T : struct, ILegacyBlock
    {
        var set = j->Sets + p->Set;
        var src = j->Sources + set->Source;
        long row = SourceRow(j, set, 0);
        byte* xq = j->Scratch + src->Quant + row * src->Blocks * 34;
        float* dx = (float*)(j->Scratch + src->Scales) + row * src->Blocks;
        float* dots = stackalloc float[4];
        int r = t0 * TileRows, end = Math.Min(p->Out, t1 * TileRows);
        for (; r + 4 <= end; r += 4)
        {
            Int8Dot.DotQ8_0Rows4<T>(p->W + r * p->RowBytes, p->RowBytes, xq, dx, p->Blocks, dots);
            for (int i = 0; i < 4; i++) p->Y[r + i] = dots[i] + (p->Bias == null ? 0 : p->Bias[r + i]);
        }
        for (; r < end; r++)
            p->Y[r] = Int8Dot.DotQ8_0<T>(p->W + r * p->RowBytes, xq, p->Blocks, j->Path) + (p->Bias == null ? 0 : p->Bias[r]);
    }

    /// <summary>Row tiles one dot per (row, token): the scalar and 128-bit paths, and formats without a tile.</summary>
    static void Dots<T>(Job* j, Product* p, int t0, int t1) where T : struct, IBlockFormat
    {
        var set = j->Sets + p->Set;
        var src = j->Sources + set->Source;
        byte* q = j->Scratch + src->Quant;
        long qBytes = src->Blocks * 34L;
        int end = Math.Min(p->Out, t1 * TileRows);
        for (int r = t0 * TileRows; r < end; r++)
        {
            byte* w = p->W + r * p->RowBytes;
            float b = p->Bias == null ? 0 : p->Bias[r];
            for (int i = 0; i < set->Count; i++)
                p->Y[i * p->YStride + r] = T.DotInt8(w, q + SourceRow(j, set, i) * qBytes, p->Blocks, j->Path) + b;
        }
    }

    static void Grow<T>(ref T[] array, int size)
    {
        if (array.Length < size) Array.Resize(ref array, Math.Max(size, 2 * array.Length));
    }

    void EnsureScratch(long bytes)
    {
        if (bytes + 64 <= _buffer.Length) return;
        _buffer = GC.AllocateUninitializedArray<byte>(checked((int)Math.Max(bytes + 64, 2L * _buffer.Length)), pinned: true);
        _scratch = (byte*)(((nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_buffer)) + 63) & ~(nint)63);
    }
}

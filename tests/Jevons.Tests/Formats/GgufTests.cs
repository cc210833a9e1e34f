using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Jevons.Formats;
using Jevons.Numerics;
using Jevons.Tests.Support;
using Xunit;

namespace Jevons.Tests.Formats;

public class GgufTests
{
    /// <summary>Every scalar type, every array type, nested and empty arrays, odd strings.</summary>
    static readonly (string Key, GgufValue Value)[] AllValues =
    [
        ("general.architecture", GgufValue.String("qwen2")),
        ("t.u8", GgufValue.UInt8(250)),
        ("t.i8", GgufValue.Int8(-7)),
        ("t.u16", GgufValue.UInt16(65000)),
        ("t.i16", GgufValue.Int16(-30000)),
        ("t.u32", GgufValue.UInt32(4_000_000_000)),
        ("t.i32", GgufValue.Int32(-2_000_000_000)),
        ("t.f32", GgufValue.Float32(1e-6f)),
        ("t.bool", GgufValue.Bool(true)),
        ("t.bool_false", GgufValue.Bool(false)),
        ("t.string", GgufValue.String("héllo wörld ✓ 𝄞")),
        ("t.empty_string", GgufValue.String("")),
        ("t.u64", GgufValue.UInt64(ulong.MaxValue)),
        ("t.i64", GgufValue.Int64(long.MinValue)),
        ("t.f64", GgufValue.Float64(Math.PI)),
        ("t.arr.u8", GgufValue.Array(new byte[] { 1, 2, 255 })),
        ("t.arr.i8", GgufValue.Array(new sbyte[] { -128, 0, 127 })),
        ("t.arr.u16", GgufValue.Array(new ushort[] { 1, 65535 })),
        ("t.arr.i16", GgufValue.Array(new short[] { -1, 2 })),
        ("t.arr.u32", GgufValue.Array(new uint[] { 3, 4, 5 })),
        ("t.arr.i32", GgufValue.Array(new int[] { 1, 3, 3, 6 })),
        ("t.arr.f32", GgufValue.Array(new float[] { 0.5f, -0f, float.NaN })),
        ("t.arr.bool", GgufValue.Array(new bool[] { true, false, true })),
        ("t.arr.string", GgufValue.Array(new string[] { "a b", "", "Ġthe" })),
        ("t.arr.u64", GgufValue.Array(new ulong[] { ulong.MaxValue })),
        ("t.arr.i64", GgufValue.Array(new long[] { -5, 5 })),
        ("t.arr.f64", GgufValue.Array(new double[] { 1e300, -2 })),
        ("t.arr.empty", GgufValue.Array(System.Array.Empty<int>())),
        ("t.arr.nested", GgufValue.Array(new[]
        {
            GgufValue.Array(new int[] { 1, 2 }),
            GgufValue.Array(new string[] { "x" }),
            GgufValue.Array(new[] { GgufValue.Array(new double[] { 0.25 }) }),
        })),
    ];

    static byte[] RandomBytes(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>A small file with a few tensors of different types and ranks.</summary>
    static (GgufWriter Writer, Dictionary<string, (DType Type, long[] Shape, byte[] Data)> Tensors) SampleWriter(uint alignment = 32)
    {
        var w = new GgufWriter(alignment);
        foreach (var (k, v) in AllValues) w.Set(k, v);
        var tensors = new Dictionary<string, (DType, long[], byte[])>
        {
            ["token_embd.weight"] = (DType.F32, [5, 8], RandomBytes(5 * 8 * 4, 1)),
            ["blk.0.attn_q.weight"] = (DType.Q8_0, [3, 64], RandomBytes(3 * 2 * 34, 2)),
            ["blk.0.attn_norm.weight"] = (DType.F16, [7], RandomBytes(14, 3)), // 14 bytes: forces padding
            ["blk.0.ffn_gate_exps.weight"] = (DType.F32, [2, 3, 4], RandomBytes(2 * 3 * 4 * 4, 4)),
            ["blk.0.ids"] = (DType.I32, [3], RandomBytes(12, 5)),
        };
        foreach (var (name, (type, shape, data)) in tensors)
            w.AddTensor(name, type, shape, s => s.Write(data)); // streamed callback
        return (w, tensors);
    }

    [Theory]
    [InlineData(32u)]
    [InlineData(64u)]
    public void RoundTripPreservesEveryValueAndTensorByte(uint alignment)
    {
        using var dir = new TempDir();
        var path = dir.File("rt.gguf");
        var (writer, tensors) = SampleWriter(alignment);
        writer.Write(path);
        Assert.Equal(writer.FileLength, new FileInfo(path).Length);

        using var g = GgufFile.Open(path);
        Assert.Equal(3u, g.Version);
        Assert.Equal(alignment, g.Alignment);
        Assert.Equal(0, g.DataOffset % alignment);

        int expectedKeys = AllValues.Length + (alignment == 32 ? 0 : 1);
        Assert.Equal(expectedKeys, g.Metadata.Count);
        foreach (var (key, value) in AllValues)
        {
            Assert.True(g.Metadata.TryGetValue(key, out var read), key);
            Assert.Equal(value, read);
        }
        Assert.Equal(AllValues.Select(kv => kv.Key), g.Metadata.Keys.Where(k => k != "general.alignment")); // file order kept

        Assert.Equal(tensors.Keys, g.TensorNames);
        foreach (var info in g.TensorInfos)
        {
            var (type, shape, data) = tensors[info.Name];
            var view = g.Get(info.Name);
            Assert.Equal(type, view.Type);
            Assert.Equal(shape, view.Shape);
            Assert.Equal(data, view.Bytes.ToArray());
            Assert.Equal(0, info.Offset % alignment);
            Assert.Equal(path, view.File);
        }
    }

    [Fact]
    public void WriterLaysOutHeaderAsSpecified()
    {
        using var dir = new TempDir();
        var path = dir.File("layout.gguf");
        var w = new GgufWriter();
        w.Set("general.architecture", GgufValue.String("llama"));
        w.AddTensor("a", DType.F32, [3], new byte[12]);
        w.AddTensor("b", DType.F16, [2, 2], new byte[8]);
        w.Write(path);
        var bytes = File.ReadAllBytes(path);

        // magic, version 3, 2 tensors, 1 kv
        Assert.Equal("GGUF"u8.ToArray(), bytes[..4]);
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4)));
        Assert.Equal(2ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(8)));
        Assert.Equal(1ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(16)));
        // kv: key "general.architecture" (20 bytes), type 8 (string), value "llama"
        int p = 24;
        Assert.Equal(20ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(p)));
        p += 8 + 20;
        Assert.Equal(8u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(p)));
        p += 4 + 8 + 5;
        // tensor "a": n_dims 1, ne [3], type 0, offset 0
        p += 8 + 1;
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(p)));
        Assert.Equal(3L, BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(p + 4)));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(p + 12)));
        Assert.Equal(0ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(p + 16)));
        p += 24;
        // tensor "b": ne [2, 2] type 1, offset 32 (12 bytes padded to 32)
        p += 8 + 1;
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(p)));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(p + 20)));
        Assert.Equal(32ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(p + 24)));
        p += 32;
        // data section at the next multiple of 32; both tensors padded: 32 + 32
        int dataStart = (p + 31) / 32 * 32;
        Assert.Equal(dataStart + 64, bytes.Length);
        Assert.All(bytes[p..dataStart], b => Assert.Equal(0, b));
    }

    [Fact]
    public void WriterStreamsLargeTensorWithProgressAndChecksCallbackSize()
    {
        using var dir = new TempDir();
        var w = new GgufWriter();
        const int rows = 64, cols = 1 << 16; // 16 MiB of F32, written in row chunks
        w.AddTensor("big", DType.F32, [rows, cols], s =>
        {
            var row = new byte[cols * 4];
            for (int r = 0; r < rows; r++)
            {
                row.AsSpan().Fill((byte)r);
                s.Write(row);
            }
        });
        var reports = new List<WriteProgress>();
        w.Write(dir.File("big.gguf"), new SyncProgress(reports.Add));
        Assert.Equal(reports[^1].TotalBytes, reports[^1].BytesWritten);
        Assert.True(reports.Count >= 2);

        using var g = GgufFile.Open(dir.File("big.gguf"));
        var v = g.Get("big");
        unsafe
        {
            Assert.Equal(63, v.Data[v.ByteLength - 1]);
            Assert.Equal(1, v.Data[cols * 4]);
        }

        var bad = new GgufWriter();
        bad.AddTensor("short", DType.F32, [4], s => s.Write(new byte[12]));
        var e = Assert.Throws<InvalidOperationException>(() => bad.Write(dir.File("bad.gguf")));
        Assert.Contains("wrote 12 bytes", e.Message);
        Assert.False(File.Exists(dir.File("bad.gguf")));
        Assert.False(File.Exists(dir.File("bad.gguf.partial")));
    }

    [Fact]
    public void WriterRejectsWhatLlamaCppWouldNotLoad()
    {
        var w = new GgufWriter();
        Assert.Throws<ArgumentException>(() => w.AddTensor(new string('x', 64), DType.F32, [1], new byte[4]));
        Assert.Throws<ArgumentException>(() => w.AddTensor("q", DType.Q4_K, [2, 100], new byte[10]));
        Assert.Throws<ArgumentException>(() => w.AddTensor("f8", DType.F8_E4M3, [4], new byte[4]));
        Assert.Throws<ArgumentException>(() => w.AddTensor("r5", DType.F32, [1, 1, 1, 1, 1], new byte[4]));
        w.AddTensor("a", DType.F32, [1], new byte[4]);
        Assert.Throws<ArgumentException>(() => w.AddTensor("a", DType.F32, [1], new byte[4]));
        Assert.Throws<ArgumentException>(() => w.Set("general.alignment", GgufValue.UInt32(64)));
    }

    sealed class SyncProgress(Action<WriteProgress> report) : IProgress<WriteProgress>
    {
        public void Report(WriteProgress value) => report(value);
    }

    // ---- golden files written by llama.cpp's tooling ----

    public static IEnumerable<object[]> GoldenGgufs() =>
        new[] { "qwen2-tiny-f32", "qwen2-tiny-q8_0", "llama-tiny-f32", "deepseek2-lite-tiny-f32", "deepseek2-lite-tiny-q8_0", "deepseek3-tiny-f32" }
            .Select(n => new object[] { n });

    [GoldenTheory]
    [MemberData(nameof(GoldenGgufs))]
    public void GoldenFilesMatchTheirManifests(string name)
    {
        using var manifest = JsonDocument.Parse(File.ReadAllText(Golden.File("llamacpp", name + ".json")!));
        var m = manifest.RootElement;
        using var g = GgufFile.Open(Golden.File("llamacpp", name + ".gguf")!);

        Assert.Equal(3u, g.Version);
        Assert.Equal(32u, g.Alignment);
        string arch = m.GetProperty("arch").GetString()!;
        Assert.Equal(arch, g.Metadata.GetString("general.architecture"));

        var hp = m.GetProperty("hparams");
        Assert.Equal(hp.GetProperty("n_embd").GetInt64(), g.Metadata.GetInt(arch + ".embedding_length"));
        Assert.Equal(hp.GetProperty("n_layer").GetInt64(), g.Metadata.GetInt(arch + ".block_count"));
        Assert.Equal(hp.GetProperty("n_head").GetInt64(), g.Metadata.GetInt(arch + ".attention.head_count"));
        Assert.Equal(hp.GetProperty("n_ctx_train").GetInt64(), g.Metadata.GetInt(arch + ".context_length"));
        Assert.Equal(hp.GetProperty("rope_theta").GetDouble(), g.Metadata.GetFloat(arch + ".rope.freq_base")!.Value, 3);
        Assert.Equal(hp.GetProperty("rms_eps").GetDouble(), g.Metadata.GetFloat(arch + ".attention.layer_norm_rms_epsilon")!.Value, 9);

        var tok = m.GetProperty("tokenizer");
        Assert.Equal(tok.GetProperty("n_vocab").GetInt32(), g.Metadata.GetStringArray("tokenizer.ggml.tokens")!.Length);
        Assert.Equal(tok.GetProperty("n_merges").GetInt32(), g.Metadata.GetStringArray("tokenizer.ggml.merges")!.Length);
        Assert.Equal(tok.GetProperty("bos_id").GetInt64(), g.Metadata.GetInt("tokenizer.ggml.bos_token_id"));
        Assert.Equal(tok.GetProperty("eos_id").GetInt64(), g.Metadata.GetInt("tokenizer.ggml.eos_token_id"));
        Assert.Equal(tok.GetProperty("add_bos").GetBoolean(), g.Metadata.GetBool("tokenizer.ggml.add_bos_token"));
        Assert.Equal(tok.GetProperty("pre").GetString(), g.Metadata.GetString("tokenizer.ggml.pre"));
        Assert.Equal(GgufType.Int32, g.Metadata["tokenizer.ggml.token_type"].ElementType);

        var expected = m.GetProperty("tensors").EnumerateArray().ToList();
        Assert.Equal(expected.Count, g.Tensors.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            var t = g.Tensors[i];
            Assert.Equal(expected[i].GetProperty("name").GetString(), t.Name);
            Assert.Equal(expected[i].GetProperty("type").GetString(), t.Type.Name());
            var ne = expected[i].GetProperty("ne").EnumerateArray().Select(e => e.GetInt64()).Reverse();
            Assert.Equal(ne, t.Shape);
        }
        Assert.Equal(m.GetProperty("model_bytes").GetInt64(), g.FileLength);
    }

    [GoldenFact]
    public unsafe void GoldenTensorDataIsTheExpectedFloats()
    {
        // The manifest says token_embd ~ N(0,1) and norms ~ 1 + N(0, 0.01): check the views point at real data.
        using var g = GgufFile.Open(Golden.File("llamacpp", "qwen2-tiny-f32.gguf")!);
        var embd = g.Get("token_embd.weight").ToFloatArray();
        Assert.Equal(2006 * 128, embd.Length);
        double mean = embd.Average(), var = embd.Select(x => (x - mean) * (x - mean)).Average();
        Assert.InRange(mean, -0.02, 0.02);
        Assert.InRange(var, 0.95, 1.05);
        var norm = g.Get("output_norm.weight").ToFloatArray();
        Assert.InRange(norm.Average(), 0.97, 1.03);
    }

    /// <summary>
    /// Copying every key and tensor of a llama.cpp-produced file through the writer reproduces the
    /// file byte for byte: the writer's layout is exactly the one llama.cpp reads.
    /// </summary>
    [GoldenTheory]
    [MemberData(nameof(GoldenGgufs))]
    public void RewritingAGoldenFileIsByteIdentical(string name)
    {
        using var dir = new TempDir();
        var source = Golden.File("llamacpp", name + ".gguf")!;
        using (var g = GgufFile.Open(source))
        {
            var w = new GgufWriter(g.Alignment);
            foreach (var (key, value) in g.Metadata) w.Set(key, value);
            foreach (var t in g.Tensors) w.AddTensor(t);
            w.Write(dir.File("copy.gguf"));
        }
        Assert.True(File.ReadAllBytes(source).AsSpan().SequenceEqual(File.ReadAllBytes(dir.File("copy.gguf"))));
    }

    [Fact]
    public void MetadataGettersConvertAndRejectWrongTypes()
    {
        using var dir = new TempDir();
        var w = new GgufWriter();
        foreach (var (k, v) in AllValues) w.Set(k, v);
        w.Write(dir.File("m.gguf"));
        using var g = GgufFile.Open(dir.File("m.gguf"));
        var m = g.Metadata;

        Assert.Equal(250, m.GetInt("t.u8"));
        Assert.Equal(-7, m.GetInt("t.i8"));
        Assert.Equal(4_000_000_000, m.GetInt("t.u32"));
        Assert.Equal(long.MinValue, m.GetInt("t.i64"));
        Assert.Equal(1e-6, m.GetFloat("t.f32")!.Value, 12);
        Assert.Equal(-2e9, m.GetFloat("t.i32"));
        Assert.Equal(Math.PI, m.GetFloat("t.f64"));
        Assert.True(m.GetBool("t.bool"));
        Assert.Equal("héllo wörld ✓ 𝄞", m.GetString("t.string"));
        Assert.Equal([1L, 3, 3, 6], m.GetIntArray("t.arr.i32")!);
        Assert.Equal([4_000_000_000L], m.GetIntArray("t.u32")!); // scalar reads as one element
        Assert.Equal([0.5, -0.0, double.NaN], m.GetFloatArray("t.arr.f32")!);
        Assert.Equal([3.0, 4, 5], m.GetFloatArray("t.arr.u32")!);
        Assert.Equal(["a b", "", "Ġthe"], m.GetStringArray("t.arr.string")!);
        Assert.Empty(m.GetIntArray("t.arr.empty")!);
        Assert.Null(m.GetInt("absent"));
        Assert.False(m.Has("absent"));

        var e = Assert.Throws<JevonsException>(() => m.GetInt("t.string"));
        Assert.Contains("m.gguf", e.Message);
        Assert.Contains("'t.string' is string, expected an integer", e.Message);
        Assert.Throws<JevonsException>(() => m.GetInt("t.f32"));
        Assert.Throws<JevonsException>(() => m.GetInt("t.u64")); // above long.MaxValue
        Assert.Throws<JevonsException>(() => m.GetBool("t.u8"));
        Assert.Throws<JevonsException>(() => m.GetIntArray("t.arr.nested"));
        Assert.Throws<JevonsException>(() => m.GetStringArray("t.arr.i32"));

        var missing = Assert.Throws<JevonsException>(() => g.Get("nope.weight"));
        Assert.Contains("m.gguf", missing.Message);
        Assert.Contains("'nope.weight'", missing.Message);
        Assert.Null(g.TryGet("nope.weight"));
    }

    // ---- bad input: each case names the file and the problem in one line ----

    /// <summary>Builds raw GGUF bytes by hand, to craft corrupt files.</summary>
    sealed class RawGguf
    {
        readonly MemoryStream _ms = new();
        readonly BinaryWriter _w;
        public RawGguf(uint version = 3, ulong tensors = 0, ulong kvs = 0, uint magic = GgufFile.Magic)
        {
            _w = new BinaryWriter(_ms);
            _w.Write(magic);
            _w.Write(version);
            _w.Write(tensors);
            _w.Write(kvs);
        }
        public RawGguf Str(string s) { var b = Encoding.UTF8.GetBytes(s); _w.Write((ulong)b.Length); _w.Write(b); return this; }
        public RawGguf U32(uint v) { _w.Write(v); return this; }
        public RawGguf U64(ulong v) { _w.Write(v); return this; }
        public RawGguf I64(long v) { _w.Write(v); return this; }
        public RawGguf Tensor(string name, DType type, ulong offset, params long[] ne)
        {
            Str(name).U32((uint)ne.Length);
            foreach (var d in ne) I64(d);
            return U32((uint)type).U64(offset);
        }
        public RawGguf PadTo(int alignment) { while (_ms.Length % alignment != 0) _w.Write((byte)0); return this; }
        public RawGguf Data(int n) { _w.Write(new byte[n]); return this; }
        public string Save(TempDir dir, string name) { _w.Flush(); File.WriteAllBytes(dir.File(name), _ms.ToArray()); return dir.File(name); }
    }

    static JevonsException OpenFails(string path, params string[] expected)
    {
        var e = Assert.Throws<JevonsException>(() => GgufFile.Open(path).Dispose());
        Assert.Contains(Path.GetFileName(path), e.Message);
        foreach (var s in expected) Assert.Contains(s, e.Message);
        Assert.DoesNotContain("\n", e.Message);
        return e;
    }

    [Fact]
    public void BadMagic()
    {
        using var dir = new TempDir();
        OpenFails(new RawGguf(magic: 0x4C4C5547).Save(dir, "magic.gguf"), "bad magic");
    }

    [Fact]
    public void Version1IsRejectedClearly()
    {
        using var dir = new TempDir();
        OpenFails(new RawGguf(version: 1).Save(dir, "v1.gguf"), "version 1 is not supported");
        OpenFails(new RawGguf(version: 7).Save(dir, "v7.gguf"), "unsupported GGUF version 7");
        OpenFails(new RawGguf(version: 0x03000000).Save(dir, "be.gguf"), "big-endian");
    }

    [Fact]
    public void EmptyAndMissingFiles()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("empty.gguf"), []);
        OpenFails(dir.File("empty.gguf"), "truncated");
        OpenFails(dir.File("missing.gguf"), "not found");
    }

    /// <summary>Cutting a valid file at every length must give a "truncated" error, never another exception.</summary>
    [Fact]
    public void TruncatedAtEveryLengthSaysTruncated()
    {
        using var dir = new TempDir();
        var (writer, _) = SampleWriter();
        writer.Write(dir.File("full.gguf"));
        var bytes = File.ReadAllBytes(dir.File("full.gguf"));
        var cut = dir.File("cut.gguf");
        // The last tensor's trailing alignment padding is not required, so stop at its data end.
        long lastEnd;
        using (var g = GgufFile.Open(dir.File("full.gguf")))
        {
            lastEnd = 0;
            foreach (var t in g.TensorInfos) lastEnd = Math.Max(lastEnd, g.DataOffset + t.Offset + t.ByteLength);
        }
        for (int n = 0; n < lastEnd; n++)
        {
            File.WriteAllBytes(cut, bytes[..n]);
            var e = Assert.Throws<JevonsException>(() => GgufFile.Open(cut).Dispose());
            Assert.Contains("cut.gguf", e.Message);
            Assert.Contains("truncated", e.Message);
        }
    }

    [Fact]
    public void TruncatedDataNamesTheTensor()
    {
        using var dir = new TempDir();
        var path = new RawGguf(tensors: 1).Tensor("blk.0.ffn_up.weight", DType.F32, 0, 8, 4).PadTo(32).Data(100).Save(dir, "short.gguf");
        OpenFails(path, "tensor 'blk.0.ffn_up.weight'", "truncated", "128 bytes");
    }

    [Fact]
    public void SizeDisagreeingWithShapeOverlapsTheNextTensor()
    {
        using var dir = new TempDir();
        // "a" claims 16x4 F32 = 256 bytes but "b" starts at 128.
        var path = new RawGguf(tensors: 2)
            .Tensor("a", DType.F32, 0, 16, 4)
            .Tensor("b", DType.F32, 128, 32)
            .PadTo(32).Data(512).Save(dir, "overlap.gguf");
        OpenFails(path, "tensor 'a'", "overlaps tensor 'b'", "disagrees with its shape");
    }

    [Fact]
    public void UnknownAndUnsupportedGgmlTypes()
    {
        using var dir = new TempDir();
        OpenFails(new RawGguf(tensors: 1).Tensor("w", (DType)77, 0, 32).PadTo(32).Data(128).Save(dir, "t77.gguf"),
            "tensor 'w'", "unknown ggml type id 77");
        OpenFails(new RawGguf(tensors: 1).Tensor("w", (DType)16, 0, 256).PadTo(32).Data(128).Save(dir, "iq2.gguf"),
            "IQ2_XXS", "not supported");
        OpenFails(new RawGguf(tensors: 1).Tensor("w", DType.F8_E4M3, 0, 32).PadTo(32).Data(128).Save(dir, "f8.gguf"),
            "unknown ggml type id 100");
    }

    [Fact]
    public void AbsurdCountsAndLengthsFailFastWithoutAllocating()
    {
        using var dir = new TempDir();
        OpenFails(new RawGguf(kvs: 1UL << 60).Save(dir, "kv.gguf"), "1152921504606846976 metadata entries");
        OpenFails(new RawGguf(tensors: ulong.MaxValue).Save(dir, "tc.gguf"), "tensors");
        OpenFails(new RawGguf(kvs: 1).U64(1UL << 62).Data(64).Save(dir, "keylen.gguf"), "truncated", "metadata key 0", "4611686018427387904 bytes");
        OpenFails(new RawGguf(kvs: 1).Str("k").U32((uint)GgufType.Array).U32((uint)GgufType.UInt64).U64(1UL << 61).Save(dir, "arr.gguf"),
            "array of metadata key 'k'", "2305843009213693952 elements");
        OpenFails(new RawGguf(kvs: 1).Str("k").U32((uint)GgufType.String).U64(ulong.MaxValue).Save(dir, "strlen.gguf"), "truncated", "'k'");
        OpenFails(new RawGguf(tensors: 1).Tensor("w", DType.F32, 0, long.MaxValue, 4).Save(dir, "ne.gguf"), "tensor 'w'", "overflows");
        OpenFails(new RawGguf(tensors: 1).Tensor("w", DType.F32, 0, -1).Save(dir, "neg.gguf"), "tensor 'w'", "negative");
        OpenFails(new RawGguf(tensors: 1).Tensor("w", DType.F32, 0, 1, 1, 1, 1, 1).Save(dir, "dims.gguf"), "5 dimensions");
    }

    [Fact]
    public void DuplicatesAndBadValuesInTheHeader()
    {
        using var dir = new TempDir();
        OpenFails(new RawGguf(tensors: 2).Tensor("w", DType.F32, 0, 8).Tensor("w", DType.F32, 32, 8).PadTo(32).Data(64).Save(dir, "dup.gguf"),
            "tensor 'w'", "duplicate tensor name");
        OpenFails(new RawGguf(kvs: 2).Str("k").U32((uint)GgufType.UInt32).U32(1).Str("k").U32((uint)GgufType.UInt32).U32(2).Save(dir, "dupkey.gguf"),
            "duplicate metadata key 'k'");
        OpenFails(new RawGguf(kvs: 1).Str("k").U32(13).U32(0).Save(dir, "vtype.gguf"), "'k'", "unknown value type 13");
        OpenFails(new RawGguf(kvs: 1).Str("general.alignment").U32((uint)GgufType.UInt32).U32(24).Save(dir, "align.gguf"),
            "general.alignment must be a power of two");
        OpenFails(new RawGguf(tensors: 1).Tensor("w", DType.F32, 4, 8).PadTo(32).Data(64).Save(dir, "misaligned.gguf"),
            "tensor 'w'", "not a multiple of the alignment");
        OpenFails(new RawGguf(tensors: 1).Tensor("w", DType.Q4_K, 0, 100).PadTo(32).Data(512).Save(dir, "block.gguf"),
            "tensor 'w'", "not a multiple of the Q4_K block size 256");
    }

    /// <summary>Random byte flips in the header: the reader either opens the file or throws a JevonsException.</summary>
    [Fact]
    public void CorruptHeadersNeverCrashOrHang()
    {
        using var dir = new TempDir();
        var (writer, _) = SampleWriter();
        writer.Write(dir.File("full.gguf"));
        var original = File.ReadAllBytes(dir.File("full.gguf"));
        long headerEnd;
        using (var g = GgufFile.Open(dir.File("full.gguf"))) headerEnd = g.DataOffset;
        var rng = new Random(1234);
        var path = dir.File("fuzz.gguf");
        for (int iter = 0; iter < 300; iter++)
        {
            var bytes = (byte[])original.Clone();
            for (int k = 0; k < 3; k++) bytes[rng.Next(4, (int)headerEnd)] = (byte)rng.Next(256);
            File.WriteAllBytes(path, bytes);
            try
            {
                using var g = GgufFile.Open(path);
            }
            catch (JevonsException e)
            {
                Assert.Contains("fuzz.gguf", e.Message);
            }
        }
    }
}

using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Jevons.Formats;
using Jevons.Numerics;
using Jevons.Tests.Support;
using Xunit;

namespace Jevons.Tests.Formats;

public class SafetensorsTests
{
    static byte[] RandomBytes(long n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>One tensor of every supported dtype, with random contents.</summary>
    static readonly (string Name, DType Type, long[] Shape)[] AllTypes =
    [
        ("z.f32", DType.F32, [3, 5]),
        ("a.f16", DType.F16, [7]),
        ("m.bf16", DType.BF16, [2, 3, 4]),
        ("w.fp8", DType.F8_E4M3, [4, 4]),
        ("w.fp8_scale_inv", DType.F32, [1, 1]),
        ("ids.i64", DType.I64, [3]),
        ("ids.i32", DType.I32, [2]),
        ("ids.i16", DType.I16, [5]),
        ("ids.i8", DType.I8, [3]),
        ("bytes.u8", DType.U8, [9]),
        ("mask.bool", DType.Bool, [2, 2]),
        ("x.f64", DType.F64, [2]),
        ("empty", DType.F32, [0, 4]),
        ("scalar", DType.F32, []),
    ];

    static Dictionary<string, byte[]> WriteAllTypes(string path)
    {
        var w = new SafetensorsWriter();
        var data = new Dictionary<string, byte[]>();
        int seed = 0;
        foreach (var (name, type, shape) in AllTypes)
        {
            long elements = 1;
            foreach (var d in shape) elements *= d;
            var bytes = RandomBytes(type.ByteCount(elements), ++seed);
            data[name] = bytes;
            w.AddTensor(name, type, shape, s => s.Write(bytes));
        }
        w.Write(path);
        return data;
    }

    [Fact]
    public void RoundTripEveryDType()
    {
        using var dir = new TempDir();
        var path = dir.File("all.safetensors");
        var data = WriteAllTypes(path);

        using var f = SafetensorsFile.Open(path);
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal(0, f.DataOffset % 8);
        Assert.Equal(AllTypes.Length, f.Tensors.Count);
        foreach (var (name, type, shape) in AllTypes)
        {
            var v = f.Get(name);
            Assert.Equal(type, v.Type);
            Assert.Equal(shape, v.Shape);
            Assert.Equal(data[name], v.Bytes.ToArray());
        }
        // Name order, contiguous, no gaps: the header order is sorted and data fills the file.
        var names = f.TensorNames.ToArray();
        Assert.Equal(names.OrderBy(n => n, StringComparer.Ordinal), names);
        Assert.Equal(f.FileLength, f.DataOffset + data.Values.Sum(b => (long)b.Length));
    }

    [Fact]
    public void HeaderIsCompactJsonPaddedWithSpaces()
    {
        using var dir = new TempDir();
        var path = dir.File("h.safetensors");
        var w = new SafetensorsWriter();
        w.AddTensor("b", DType.BF16, [1, 2], new byte[4]);
        w.AddTensor("a", DType.F32, [1], new byte[4]);
        w.Write(path);
        var bytes = File.ReadAllBytes(path);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var header = Encoding.UTF8.GetString(bytes, 8, (int)n);
        Assert.Equal(0, n % 8);
        Assert.Equal("""{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[4,8]}}""",
            header.TrimEnd(' '));
        Assert.Equal(8 + n + 8, bytes.Length);
    }

    public static IEnumerable<object[]> GoldenVariants() => new[] { "v2lite_bf16", "v3_bf16", "v3_fp8" }.Select(v => new object[] { v });

    /// <summary>The reader agrees with an independent parse of the golden headers (System.Text.Json).</summary>
    [GoldenTheory]
    [MemberData(nameof(GoldenVariants))]
    public void GoldenCheckpointsListEveryTensor(string variant)
    {
        var path = Golden.File("hf", variant, "model.safetensors")!;
        var raw = File.ReadAllBytes(path);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(raw);
        using var header = JsonDocument.Parse(raw.AsMemory(8, (int)n));

        using var f = SafetensorsFile.Open(path);
        int count = 0;
        foreach (var entry in header.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__") continue;
            count++;
            var v = f.Get(entry.Name);
            Assert.Equal(entry.Value.GetProperty("dtype").GetString(), v.Type.Name());
            Assert.Equal(entry.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()), v.Shape);
            var offsets = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            Assert.Equal(offsets[1] - offsets[0], v.ByteLength);
            unsafe
            {
                Assert.Equal(raw[8 + n + offsets[0]], v.Data[0]);
            }
        }
        Assert.Equal(count, f.Tensors.Count);
        Assert.Equal(DType.BF16, f.Get("model.embed_tokens.weight").Type);
        if (variant != "v2lite_bf16")
            Assert.Equal(DType.F32, f.Get("model.layers.1.mlp.gate.e_score_correction_bias").Type);
        if (variant == "v3_fp8")
        {
            var q = f.Get("model.layers.0.self_attn.q_b_proj.weight");
            Assert.Equal(DType.F8_E4M3, q.Type);
            Assert.Equal([320L, 144], q.Shape);
            var scale = f.Get("model.layers.0.self_attn.q_b_proj.weight_scale_inv");
            Assert.Equal(DType.F32, scale.Type);
            Assert.Equal([3L, 2], scale.Shape);
        }
    }

    /// <summary>The golden files were written by the reference library: rewriting them reproduces every byte.</summary>
    [GoldenTheory]
    [MemberData(nameof(GoldenVariants))]
    public void RewritingAGoldenCheckpointIsByteIdentical(string variant)
    {
        using var dir = new TempDir();
        var path = Golden.File("hf", variant, "model.safetensors")!;
        using (var f = SafetensorsFile.Open(path))
        {
            var w = new SafetensorsWriter();
            foreach (var t in f.Tensors) w.AddTensor(t);
            w.Write(dir.File("copy.safetensors"));
        }
        Assert.True(File.ReadAllBytes(path).AsSpan().SequenceEqual(File.ReadAllBytes(dir.File("copy.safetensors"))));
    }

    [Fact]
    public void ShardedCheckpointThroughIndex()
    {
        using var dir = new TempDir();
        var shard1 = new SafetensorsWriter();
        var shard2 = new SafetensorsWriter();
        var data = new Dictionary<string, byte[]>();
        var map = new Dictionary<string, string>();
        for (int i = 0; i < 6; i++)
        {
            var name = $"model.layers.{i}.mlp.down_proj.weight";
            data[name] = RandomBytes(4 * 8 * 2, i);
            (i < 3 ? shard1 : shard2).AddTensor(name, DType.BF16, [4, 8], data[name]);
            map[name] = i < 3 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
        }
        shard1.Write(dir.File("model-00001-of-00002.safetensors"));
        shard2.Write(dir.File("model-00002-of-00002.safetensors"));
        SafetensorsWriter.WriteIndex(dir.File(SafetensorsCheckpoint.IndexFileName), map, data.Values.Sum(b => (long)b.Length));

        using var ckpt = SafetensorsCheckpoint.Open(dir.Path);
        Assert.Equal(2, ckpt.Files.Count);
        Assert.Equal(dir.File(SafetensorsCheckpoint.IndexFileName), ckpt.IndexPath);
        Assert.Equal(6, ckpt.TensorCount);
        foreach (var (name, bytes) in data)
        {
            var v = ckpt.Get(name);
            Assert.Equal(bytes, v.Bytes.ToArray());
            Assert.EndsWith(map[name], v.File);
        }

        // Without the index, all *.safetensors of the directory are opened in name order.
        File.Delete(dir.File(SafetensorsCheckpoint.IndexFileName));
        using var all = SafetensorsCheckpoint.Open(dir.Path);
        Assert.Equal(data.Keys.OrderBy(k => k, StringComparer.Ordinal), all.TensorNames);
    }

    [GoldenFact]
    public void SingleFileAndDirectoryOpenTheSameTensors()
    {
        var dir = Golden.File("hf", "v3_fp8")!;
        using var byDir = SafetensorsCheckpoint.Open(dir);
        using var byFile = SafetensorsCheckpoint.Open(Path.Combine(dir, "model.safetensors"));
        Assert.Equal(byFile.TensorNames, byDir.TensorNames);
        Assert.Null(byDir.IndexPath);
    }

    // ---- bad input ----

    static string WriteRaw(TempDir dir, string name, string header, int dataBytes, ulong? declaredLength = null)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredLength ?? (ulong)json.Length);
        json.CopyTo(bytes, 8);
        File.WriteAllBytes(dir.File(name), bytes);
        return dir.File(name);
    }

    static void OpenFails(string path, params string[] expected)
    {
        var e = Assert.Throws<JevonsException>(() => SafetensorsCheckpoint.Open(path).Dispose());
        Assert.Contains(Path.GetFileName(path), e.Message);
        foreach (var s in expected) Assert.Contains(s, e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }

    [Fact]
    public void AbsurdOrTruncatedHeaderLength()
    {
        using var dir = new TempDir();
        OpenFails(WriteRaw(dir, "absurd.safetensors", "{}", 0, declaredLength: 1UL << 40), "header length 1099511627776 is absurd");
        OpenFails(WriteRaw(dir, "trunc.safetensors", "{}", 0, declaredLength: 1000), "truncated", "1000 bytes");
        File.WriteAllBytes(dir.File("tiny.safetensors"), [1, 0, 0]);
        OpenFails(dir.File("tiny.safetensors"), "truncated");
        File.WriteAllBytes(dir.File("zero.safetensors"), []);
        OpenFails(dir.File("zero.safetensors"), "truncated");
    }

    [Fact]
    public void InvalidJson()
    {
        using var dir = new TempDir();
        OpenFails(WriteRaw(dir, "json.safetensors", """{"a": {"dtype": "F32", """, 0), "invalid JSON header");
        OpenFails(WriteRaw(dir, "notobj.safetensors", "[1, 2]", 0), "invalid JSON header");
        OpenFails(WriteRaw(dir, "trailing.safetensors", "{} x", 0), "invalid JSON header");
        OpenFails(WriteRaw(dir, "missing.safetensors", """{"w": {"dtype": "F32", "shape": [2]}}""", 8), "tensor 'w'", "lacks data_offsets");
        OpenFails(WriteRaw(dir, "negshape.safetensors", """{"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}""", 8), "tensor 'w'", "shape");
    }

    [Fact]
    public void OffsetsOutOfRangeOrDisagreeingWithShape()
    {
        using var dir = new TempDir();
        OpenFails(WriteRaw(dir, "range.safetensors", """{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}""", 8),
            "tensor 'w'", "truncated", "past the end");
        OpenFails(WriteRaw(dir, "size.safetensors", """{"w": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 8]}}""", 16),
            "tensor 'w'", "hold 8 bytes but BF16 [2, 3] needs 12");
        OpenFails(WriteRaw(dir, "overlap.safetensors", """{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}""", 16),
            "tensor 'a'", "overlap tensor 'b'");
        OpenFails(WriteRaw(dir, "dup.safetensors", """{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}""", 8),
            "tensor 'a'", "duplicate");
    }

    [Fact]
    public void UnknownDType()
    {
        using var dir = new TempDir();
        OpenFails(WriteRaw(dir, "dtype.safetensors", """{"w": {"dtype": "F8_E5M2", "shape": [4], "data_offsets": [0, 4]}}""", 4),
            "tensor 'w'", "unsupported dtype 'F8_E5M2'");
    }

    [Fact]
    public void BrokenShardedCheckpoints()
    {
        using var dir = new TempDir();
        var w = new SafetensorsWriter();
        w.AddTensor("a", DType.F32, [1], new byte[4]);
        w.Write(dir.File("s1.safetensors"));
        w.Write(dir.File("s2.safetensors"));

        // Same tensor in two files without an index.
        OpenFails(dir.Path, "s2.safetensors", "tensor 'a'", "two files", "s1.safetensors");

        var index = dir.File(SafetensorsCheckpoint.IndexFileName);
        SafetensorsWriter.WriteIndex(index, [new("a", "s1.safetensors"), new("b", "s3.safetensors")], 8);
        OpenFails(index, "tensor 'b'", "shard 's3.safetensors'", "does not exist");
        SafetensorsWriter.WriteIndex(index, [new("a", "s1.safetensors"), new("b", "s2.safetensors")], 8);
        OpenFails(index, "tensor 'b'", "does not contain it");
        File.WriteAllText(index, "{\"metadata\": {}}");
        OpenFails(index, "no 'weight_map'");
        File.WriteAllText(index, "{\"weight_map\": ");
        OpenFails(index, "invalid JSON");

        using var empty = new TempDir();
        var e = Assert.Throws<JevonsException>(() => SafetensorsCheckpoint.Open(empty.Path));
        Assert.Contains("no .safetensors files", e.Message);
    }

    [Fact]
    public void TruncatedAtEveryLengthNeverCrashes()
    {
        using var dir = new TempDir();
        WriteAllTypes(dir.File("full.safetensors"));
        var bytes = File.ReadAllBytes(dir.File("full.safetensors"));
        var cut = dir.File("cut.safetensors");
        for (int n = 0; n < bytes.Length; n++)
        {
            File.WriteAllBytes(cut, bytes[..n]);
            var e = Assert.Throws<JevonsException>(() => SafetensorsFile.Open(cut).Dispose());
            Assert.Contains("cut.safetensors", e.Message);
            Assert.Contains("truncated", e.Message);
        }
    }
}

using System.Text.Json;
using System.Text.Json.Nodes;
using Jevons.Formats;
using Jevons.Numerics;

namespace Jevons.Models.Synthesis;

/// <summary>The two file layouts `jevons synth` writes.</summary>
public enum SynthFormat { Gguf, HuggingFace }

/// <summary>How to write: worker threads for generation and progress of the bytes written.</summary>
public sealed record SynthWriteOptions
{
    /// <summary>Generation threads; 0 = all cores.</summary>
    public int Threads { get; init; }
    public IProgress<WriteProgress>? Progress { get; init; }
    /// <summary>HF layout: the largest shard; a bigger model is split into model-0000i-of-0000N.safetensors with an index (transformers' default 5 GB).</summary>
    public long MaxShardBytes { get; init; } = 5_000_000_000;
}

public sealed partial class Synthesis
{
    /// <summary>DeepSeek-V3's FP8 block: one weight_scale_inv per 128 × 128 weights.</summary>
    public const int Fp8Block = 128;

    /// <summary>The types <see cref="WriteGguf"/> writes (weights; norms, biases and routers stay F32).</summary>
    public static readonly DType[] GgufTypes =
        [DType.F32, DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0, DType.Q4_1, DType.Q5_0, DType.Q5_1, DType.Q2_K, DType.Q3_K, DType.Q4_K, DType.Q5_K, DType.Q6_K];

    /// <summary>The types <see cref="WriteHuggingFace"/> writes (F8_E4M3 where the architecture reads it).</summary>
    public static readonly DType[] HfTypes = [DType.F32, DType.BF16, DType.F8_E4M3];

    /// <summary>Null when this model can be written in <paramref name="format"/> as <paramref name="type"/>, else why not (one line).</summary>
    public string? CheckType(SynthFormat format, DType type)
    {
        if (format == SynthFormat.Gguf)
            return GgufTypes.Contains(type) ? null
                : $"type {type.Name()} cannot be written to GGUF (types: {string.Join(", ", GgufTypes.Select(t => t.Name()))})";
        if (Plan.HfConfig is null)
            return $"preset '{Plan.Preset}' is synthesized as GGUF only";
        if (!HfTypes.Contains(type))
            return $"type {type.Name()} cannot be written to the Hugging Face layout (types: F32, BF16, F8_E4M3)";
        if (type == DType.F8_E4M3 && !Plan.HfFp8)
            return $"the {Plan.Architecture} architecture has no native FP8 layout (use BF16 or F32)";
        return null;
    }

    /// <summary>GGUF storage of a tensor kind: weight matrices take the requested type, the rest F32 (as llama-quantize leaves them).</summary>
    public static DType GgufTypeOf(SynthKind kind, DType type) => kind is SynthKind.Embedding or SynthKind.Matrix or SynthKind.Output ? type : DType.F32;

    /// <summary>HF storage of a tensor kind: F32 everywhere in an F32 file; else BF16, with FP8 projections and an F32 router bias as DeepSeek-V3 ships.</summary>
    public static DType HfTypeOf(SynthKind kind, DType type) =>
        type == DType.F32 || kind is SynthKind.RouterBias or SynthKind.Fixed ? DType.F32
        : type == DType.F8_E4M3 && kind == SynthKind.Matrix ? DType.F8_E4M3
        : DType.BF16;

    /// <summary>
    /// llama-quantize's fallback for rows that are not a whole number of 256-value k-quant blocks
    /// (V2-Lite's 10944-wide dense and 1408-wide expert down projections): Q4_K→Q5_0, Q5_K→Q5_1, Q6_K→Q8_0,
    /// Q2_K/Q3_K→Q4_0.
    /// </summary>
    public static DType FallbackFor(DType type, long columns) =>
        columns % type.BlockSize() == 0 ? type : type switch
        {
            DType.Q4_K => DType.Q5_0,
            DType.Q5_K => DType.Q5_1,
            DType.Q6_K => DType.Q8_0,
            DType.Q2_K or DType.Q3_K => DType.Q4_0,
            _ => type,
        };

    /// <summary>
    /// Streams the model into a GGUF file that llama.cpp loads: the plan's metadata, general.file_type,
    /// tokenizer.ggml.* from <see cref="Vocabulary"/>, and every tensor generated in parallel blocks of about 4 MB of floats.
    /// </summary>
    public void WriteGguf(string path, DType type, SynthWriteOptions? options = null)
    {
        options ??= new();
        if (CheckType(SynthFormat.Gguf, type) is { } problem) JevonsException.Throw(problem, path);
        var writer = new GgufWriter();
        foreach (var (key, value) in Plan.GgufMetadata) writer.Set(key, value);
        writer.Set("general.file_type", GgufValue.UInt32(FileType(type)));
        if (type.BlockSize() > 1) writer.Set("general.quantization_version", GgufValue.UInt32(2));
        Vocabulary.WriteTo(writer);
        var parallel = Parallelism(options);
        foreach (var t in Plan.GgufTensors)
        {
            var tensorType = FallbackFor(GgufTypeOf(t.Kind, type), t.Columns);
            if (t.Columns % tensorType.BlockSize() != 0)
                JevonsException.Throw($"{t.Columns} columns is not a multiple of the {tensorType.Name()} block size {tensorType.BlockSize()}", path, t.Name);
            writer.AddTensor(t.Name, tensorType, t.Shape, stream => StreamRows(t, tensorType, stream, parallel));
        }
        writer.Write(path, options.Progress);
    }

    /// <summary>
    /// Writes a self-contained Hugging Face directory: config.json, model.safetensors (or shards with
    /// model.safetensors.index.json), tokenizer.json and tokenizer_config.json. <paramref name="type"/> F32, BF16, or
    /// F8_E4M3: projections in FP8 with weight_scale_inv [ceil(out/128), ceil(in/128)] = max|w|/448 per block.
    /// </summary>
    public void WriteHuggingFace(string directory, DType type, SynthWriteOptions? options = null)
    {
        options ??= new();
        if (CheckType(SynthFormat.HuggingFace, type) is { } problem) JevonsException.Throw(problem, directory);
        var parallel = Parallelism(options);
        var scales = new Dictionary<string, float[]>(StringComparer.Ordinal);
        var entries = new List<(string Name, DType Type, long[] Shape, long Bytes, Action<Stream> Write)>();
        foreach (var t in Plan.HfTensors)
        {
            var tensorType = HfTypeOf(t.Kind, type);
            if (tensorType != DType.F8_E4M3)
            {
                entries.Add((t.Name, tensorType, t.Shape, tensorType.ByteCount(t.ElementCount), s => StreamRows(t, tensorType, s, parallel)));
                continue;
            }
            long[] scaleShape = [(t.Rows + Fp8Block - 1) / Fp8Block, (t.Columns + Fp8Block - 1) / Fp8Block];
            entries.Add((t.Name, DType.F8_E4M3, t.Shape, t.ElementCount, s => scales[t.Name] = StreamFp8(t, s, parallel)));
            entries.Add((t.Name + "_scale_inv", DType.F32, scaleShape, scaleShape[0] * scaleShape[1] * 4, s =>
            {
                // The weight precedes its scales in name order; regenerate only if a caller reorders.
                if (!scales.Remove(t.Name, out var sc)) sc = StreamFp8(t, Stream.Null, parallel);
                s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(sc.AsSpan()));
            }));
        }
        entries.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));

        var shards = new List<List<int>> { new() };
        long shardBytes = 0, total = 0;
        for (int i = 0; i < entries.Count; i++)
        {
            if (shardBytes > 0 && shardBytes + entries[i].Bytes > options.MaxShardBytes)
            {
                shards.Add([]);
                shardBytes = 0;
            }
            shards[^1].Add(i);
            shardBytes += entries[i].Bytes;
            total += entries[i].Bytes;
        }

        Directory.CreateDirectory(directory);
        foreach (var stale in Directory.GetFiles(directory, "model*.safetensors").Append(Path.Combine(directory, "model.safetensors.index.json")))
            File.Delete(stale);
        WriteJson(Path.Combine(directory, "config.json"), HfConfigFor(type));
        Vocabulary.WriteHuggingFace(directory);

        var weightMap = new List<KeyValuePair<string, string>>();
        long done = 0;
        for (int s = 0; s < shards.Count; s++)
        {
            string file = shards.Count == 1 ? "model.safetensors" : $"model-{s + 1:D5}-of-{shards.Count:D5}.safetensors";
            var writer = new SafetensorsWriter();
            long bytes = 0;
            foreach (var i in shards[s])
            {
                var e = entries[i];
                writer.AddTensor(e.Name, e.Type, e.Shape, e.Write);
                weightMap.Add(new(e.Name, file));
                bytes += e.Bytes;
            }
            long offset = done;
            var progress = options.Progress is { } p ? new ShiftedProgress(p, offset, total) : null;
            writer.Write(Path.Combine(directory, file), progress);
            done += bytes;
        }
        if (shards.Count > 1)
            SafetensorsWriter.WriteIndex(Path.Combine(directory, "model.safetensors.index.json"), weightMap, total);
    }

    /// <summary>config.json of the HF layout as written for <paramref name="type"/>: the plan's, plus token ids, torch_dtype and FP8 quantization_config.</summary>
    public JsonObject HfConfigFor(DType type)
    {
        var config = (JsonObject)(Plan.HfConfig ?? JevonsException.Throw<JsonObject>($"preset '{Plan.Preset}' is synthesized as GGUF only")).DeepClone();
        config["bos_token_id"] = Vocabulary.BosId;
        config["eos_token_id"] = Vocabulary.EosId;
        config["torch_dtype"] = type == DType.F32 ? "float32" : "bfloat16";
        if (type == DType.F8_E4M3)
            config["quantization_config"] = new JsonObject
            {
                ["activation_scheme"] = "dynamic",
                ["fmt"] = "e4m3",
                ["quant_method"] = "fp8",
                ["weight_block_size"] = new JsonArray(Fp8Block, Fp8Block),
            };
        return config;
    }

    static void WriteJson(string path, JsonNode node) =>
        File.WriteAllText(path, node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");

    static ParallelOptions Parallelism(SynthWriteOptions o) =>
        new() { MaxDegreeOfParallelism = o.Threads > 0 ? o.Threads : Environment.ProcessorCount };

    /// <summary>Generates and stores a tensor in blocks of rows (about 4 MB of floats), rows in parallel.</summary>
    void StreamRows(SynthTensor t, DType type, Stream stream, ParallelOptions parallel)
    {
        int cols = checked((int)t.Columns);
        int rowBytes = checked((int)type.ByteCount(cols));
        int block = (int)Math.Clamp((1 << 20) / cols, 1, t.Rows);
        var values = new float[block * cols];
        var bytes = new byte[block * rowBytes];
        for (long first = 0; first < t.Rows; first += block)
        {
            int n = (int)Math.Min(block, t.Rows - first);
            Parallel.For(0, n, parallel, r =>
            {
                var row = values.AsSpan(r * cols, cols);
                FillRows(t, first + r, row);
                Quantization.QuantizeRow(type, row, bytes.AsSpan(r * rowBytes, rowBytes));
            });
            stream.Write(bytes, 0, n * rowBytes);
        }
    }

    /// <summary>Generates a weight as FP8 E4M3 in 128-row bands; returns its weight_scale_inv [bands, column blocks] row-major.</summary>
    float[] StreamFp8(SynthTensor t, Stream stream, ParallelOptions parallel)
    {
        int cols = checked((int)t.Columns);
        long rows = t.Rows, bands = (rows + Fp8Block - 1) / Fp8Block;
        int blocks = (cols + Fp8Block - 1) / Fp8Block;
        var scales = new float[bands * blocks];
        int bandsPerChunk = Math.Max(1, (1 << 20) / (Fp8Block * cols));
        var values = new float[bandsPerChunk * Fp8Block * cols];
        var bytes = new byte[values.Length];
        for (long band0 = 0; band0 < bands; band0 += bandsPerChunk)
        {
            long row0 = band0 * Fp8Block;
            int n = (int)Math.Min(bandsPerChunk * (long)Fp8Block, rows - row0);
            Parallel.For(0, n, parallel, r => FillRows(t, row0 + r, values.AsSpan(r * cols, cols)));
            int nBands = (n + Fp8Block - 1) / Fp8Block;
            Parallel.For(0, nBands, parallel, b =>
            {
                int r0 = b * Fp8Block, count = Math.Min(Fp8Block, n - r0) * cols;
                QuantizeFp8Band(values.AsSpan(r0 * cols, count), cols, bytes.AsSpan(r0 * cols, count), scales.AsSpan((int)((band0 + b) * blocks), blocks));
            });
            stream.Write(bytes, 0, n * cols);
        }
        return scales;
    }

    /// <summary>
    /// Quantises a band of up to 128 rows [rows, cols] to FP8 E4M3 as DeepSeek-V3's checkpoints are made: per
    /// 128 × 128 block scale_inv = max|w| / 448, fp8 = round-to-nearest-even(w / scale_inv).
    /// <paramref name="scales"/> receives ceil(cols/128) values (one scale row).
    /// </summary>
    public static void QuantizeFp8Band(ReadOnlySpan<float> rows, int cols, Span<byte> fp8, Span<float> scales)
    {
        int nRows = rows.Length / cols, nBlocks = (cols + Fp8Block - 1) / Fp8Block;
        for (int b = 0; b < nBlocks; b++)
        {
            int c0 = b * Fp8Block, c1 = Math.Min(cols, c0 + Fp8Block);
            float amax = 0;
            for (int r = 0; r < nRows; r++)
                for (int c = c0; c < c1; c++) amax = MathF.Max(amax, MathF.Abs(rows[r * cols + c]));
            float scale = amax == 0 ? 1f : amax / 448f;
            scales[b] = scale;
            for (int r = 0; r < nRows; r++)
                for (int c = c0; c < c1; c++) fp8[r * cols + c] = Quantization.FloatToF8E4M3(rows[r * cols + c] / scale);
        }
    }

    /// <summary>llama.cpp's general.file_type (LLAMA_FTYPE_*) for a file whose matrices are all <paramref name="type"/>.</summary>
    static uint FileType(DType type) => type switch
    {
        DType.F32 => 0,
        DType.F16 => 1,
        DType.Q4_0 => 2,
        DType.Q4_1 => 3,
        DType.Q8_0 => 7,
        DType.Q5_0 => 8,
        DType.Q5_1 => 9,
        DType.Q2_K => 10,
        DType.Q3_K => 11,  // Q3_K_S
        DType.Q4_K => 14,  // Q4_K_S
        DType.Q5_K => 16,  // Q5_K_S
        DType.Q6_K => 18,
        DType.BF16 => 32,
        _ => 0,
    };

    /// <summary>Reports one file's progress as part of a multi-file total.</summary>
    sealed class ShiftedProgress(IProgress<WriteProgress> inner, long offset, long total) : IProgress<WriteProgress>
    {
        public void Report(WriteProgress value) => inner.Report(new WriteProgress(Math.Min(offset + value.BytesWritten, total), total));
    }
}

using Jevons.Formats;
using Jevons.Fuzz;

namespace Jevons.Tests.Fuzz;

/// <summary>The fuzzer's synthesized seed models (built once per test run), and ways to write patched copies.</summary>
public static class TinyModels
{
    static readonly Lazy<IReadOnlyList<Seed>> GgufSeeds = new(() => Seeds.Gguf());
    static readonly Lazy<IReadOnlyList<Seed>> HfSeeds = new(() => Seeds.HuggingFace());

    public static IReadOnlyList<Seed> Gguf => GgufSeeds.Value;
    public static IReadOnlyList<Seed> HuggingFace => HfSeeds.Value;

    public static Seed Find(string name) => Gguf.Concat(HuggingFace).Single(s => s.Name == name);

    /// <summary>Writes the seed into <paramref name="dir"/>: the .gguf path, or the directory for HF seeds.</summary>
    public static string Write(string name, string dir, string? file = null, byte[]? bytes = null)
    {
        var seed = Find(name);
        return Campaign.Materialize(new Campaign.Case(seed, file ?? Seed.GgufFileName, bytes ?? seed.Files[file ?? Seed.GgufFileName]), dir);
    }

    /// <summary>A copy of a GGUF seed with metadata changed (null value: removed) and tensors optionally patched.</summary>
    public static string RewriteGguf(string name, string path, Func<string, GgufValue, GgufValue?>? metadata = null,
        Func<string, byte[], byte[]>? tensorBytes = null)
    {
        var src = Path.Combine(Path.GetDirectoryName(path)!, "seed-" + Path.GetFileName(path));
        File.WriteAllBytes(src, Find(name).Files[Seed.GgufFileName]);
        using (var gguf = GgufFile.Open(src))
        {
            var w = new GgufWriter(gguf.Alignment);
            foreach (var key in gguf.Metadata.Keys)
                if ((metadata?.Invoke(key, gguf.Metadata[key]) ?? (metadata is null ? gguf.Metadata[key] : null)) is { } v)
                    w.Set(key, v);
            foreach (var t in gguf.Tensors)
            {
                var info = gguf.TensorInfos.Single(i => i.Name == t.Name);
                var bytes = t.Bytes.ToArray();
                w.AddTensor(t.Name, t.Type, info.Shape, tensorBytes?.Invoke(t.Name, bytes) ?? bytes);
            }
            w.Write(path);
        }
        File.Delete(src);
        return path;
    }
}

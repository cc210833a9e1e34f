using System.Text.Json;
using Jevons.Numerics;

namespace Jevons.Formats;

/// <summary>
/// A Hugging Face checkpoint's weights: one safetensors file, or shards tied together by
/// <c>model.safetensors.index.json</c> (its <c>weight_map</c> names the shard of every tensor), or
/// every <c>*.safetensors</c> file of a directory. Each shard is mapped once; tensors are views.
/// </summary>
public sealed class SafetensorsCheckpoint : IWeightSource
{
    /// <summary>The index file name transformers writes for sharded checkpoints.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    readonly List<SafetensorsFile> _files;
    readonly Dictionary<string, TensorView> _byName;
    readonly List<string> _names;

    SafetensorsCheckpoint(string path, string? indexPath, List<SafetensorsFile> files, Dictionary<string, TensorView> byName, List<string> names)
    {
        Path = path;
        IndexPath = indexPath;
        _files = files;
        _byName = byName;
        _names = names;
    }

    /// <summary>The file or directory the checkpoint was opened from.</summary>
    public string Path { get; }

    /// <summary>The index file, when the checkpoint is sharded through one.</summary>
    public string? IndexPath { get; }

    /// <summary>The mapped shards (one for an unsharded checkpoint).</summary>
    public IReadOnlyList<SafetensorsFile> Files => _files;

    public IEnumerable<string> TensorNames => _names;

    public int TensorCount => _names.Count;

    public bool Contains(string name) => _byName.ContainsKey(name);

    public TensorView Get(string name) => _byName.TryGetValue(name, out var v) ? v
        : JevonsException.Throw<TensorView>("tensor not found in the checkpoint", IndexPath ?? Path, name);

    public TensorView? TryGet(string name) => _byName.GetValueOrDefault(name);

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }

    /// <summary>
    /// Opens a <c>.safetensors</c> file, an <c>*.index.json</c> file, or a directory (its index if
    /// present, else <c>model.safetensors</c>, else all <c>*.safetensors</c> files in name order).
    /// </summary>
    public static SafetensorsCheckpoint Open(string fileOrDir)
    {
        if (Directory.Exists(fileOrDir))
        {
            var index = System.IO.Path.Combine(fileOrDir, IndexFileName);
            if (File.Exists(index)) return OpenIndex(fileOrDir, index);
            var indexes = Directory.GetFiles(fileOrDir, "*.safetensors.index.json");
            if (indexes.Length == 1) return OpenIndex(fileOrDir, indexes[0]);
            var single = System.IO.Path.Combine(fileOrDir, "model.safetensors");
            if (File.Exists(single)) return OpenFiles(fileOrDir, [single]);
            var all = Directory.GetFiles(fileOrDir, "*.safetensors");
            if (all.Length == 0)
                JevonsException.Throw("no .safetensors files in the directory", fileOrDir);
            Array.Sort(all, StringComparer.Ordinal);
            return OpenFiles(fileOrDir, all);
        }
        if (!File.Exists(fileOrDir))
            JevonsException.Throw("path does not exist", fileOrDir);
        if (fileOrDir.EndsWith(".index.json", StringComparison.OrdinalIgnoreCase))
            return OpenIndex(fileOrDir, fileOrDir);
        return OpenFiles(fileOrDir, [fileOrDir]);
    }

    static SafetensorsCheckpoint OpenFiles(string path, string[] files)
    {
        var opened = new List<SafetensorsFile>(files.Length);
        try
        {
            var byName = new Dictionary<string, TensorView>(StringComparer.Ordinal);
            var names = new List<string>();
            foreach (var f in files)
            {
                var file = SafetensorsFile.Open(f);
                opened.Add(file);
                foreach (var view in file.Tensors)
                {
                    if (byName.TryGetValue(view.Name, out var other))
                        JevonsException.Throw($"tensor is in two files, also in '{other.File}'", file.Path, view.Name);
                    byName.Add(view.Name, view);
                    names.Add(view.Name);
                }
            }
            return new SafetensorsCheckpoint(path, null, opened, byName, names);
        }
        catch
        {
            foreach (var f in opened) f.Dispose();
            throw;
        }
    }

    static SafetensorsCheckpoint OpenIndex(string path, string indexPath)
    {
        var weightMap = ReadWeightMap(indexPath);
        var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(indexPath))!;
        var opened = new List<SafetensorsFile>();
        try
        {
            var shards = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            var byName = new Dictionary<string, TensorView>(weightMap.Count, StringComparer.Ordinal);
            var names = new List<string>(weightMap.Count);
            foreach (var (tensor, shardName) in weightMap)
            {
                if (!shards.TryGetValue(shardName, out var shard))
                {
                    var shardPath = System.IO.Path.Combine(dir, shardName);
                    if (!File.Exists(shardPath))
                        JevonsException.Throw($"shard '{shardName}' listed in the index does not exist", indexPath, tensor);
                    shard = SafetensorsFile.Open(shardPath);
                    opened.Add(shard);
                    shards.Add(shardName, shard);
                }
                var view = shard.TryGet(tensor)
                    ?? JevonsException.Throw<TensorView>($"the index puts this tensor in '{shardName}', which does not contain it", indexPath, tensor);
                byName.Add(tensor, view);
                names.Add(tensor);
            }
            // Tensors a shard holds beyond the index (rare) are still reachable.
            foreach (var shard in opened)
                foreach (var view in shard.Tensors)
                    if (byName.TryAdd(view.Name, view))
                        names.Add(view.Name);
            return new SafetensorsCheckpoint(path, indexPath, opened, byName, names);
        }
        catch
        {
            foreach (var f in opened) f.Dispose();
            throw;
        }
    }

    /// <summary>An index of a 10^5-tensor checkpoint is a few MB; refuse anything absurd before reading it.</summary>
    const long MaxIndexBytes = 256L << 20;

    static byte[] ReadBounded(string path)
    {
        try
        {
            long length = new FileInfo(path).Length;
            if (length > MaxIndexBytes)
                JevonsException.Throw($"index file is {length} bytes, more than the {MaxIndexBytes} this reader accepts", path);
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new JevonsException("cannot read: " + e.Message, path, inner: e);
        }
    }

    /// <summary>The index's weight_map (tensor → shard file name), in file order.</summary>
    static List<KeyValuePair<string, string>> ReadWeightMap(string indexPath)
    {
        JsonDocument doc;
        try
        {
            var bytes = ReadBounded(indexPath);
            doc = JsonDocument.Parse(bytes);
            JsonText.CheckStrings(bytes, indexPath, default);
        }
        catch (JsonException e)
        {
            throw new JevonsException($"invalid JSON: {e.Message}", indexPath, inner: e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                return JevonsException.Throw<List<KeyValuePair<string, string>>>("index has no 'weight_map' object", indexPath);
            var result = new List<KeyValuePair<string, string>>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    JevonsException.Throw("weight_map value is not a file name", indexPath, entry.Name);
                var shard = entry.Value.GetString()!;
                if (shard.Length == 0 || System.IO.Path.IsPathRooted(shard) || shard.Contains("..", StringComparison.Ordinal))
                    JevonsException.Throw($"weight_map names '{shard}', which is not a file beside the index", indexPath, entry.Name);
                if (!seen.Add(entry.Name))
                    JevonsException.Throw("tensor listed twice in weight_map", indexPath, entry.Name);
                result.Add(new(entry.Name, shard));
            }
            return result;
        }
    }
}

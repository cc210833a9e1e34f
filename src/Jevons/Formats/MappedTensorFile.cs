using Jevons.Numerics;

namespace Jevons.Formats;

/// <summary>
/// A weight file mapped once whose tensors are views of the mapping (<see cref="GgufFile"/>,
/// <see cref="SafetensorsFile"/>): holds the mapping and the name → view map and implements
/// <see cref="IWeightSource"/> over them; each format only parses its header. Dispose unmaps the
/// file; views must not outlive it.
/// </summary>
public abstract class MappedTensorFile : IWeightSource
{
    readonly MappedFile _file;
    readonly List<TensorView> _views;
    readonly Dictionary<string, TensorView> _byName;

    /// <param name="views">Tensor views in file order.</param>
    /// <param name="byName">The same views by name (ordinal).</param>
    private protected MappedTensorFile(MappedFile file, List<TensorView> views, Dictionary<string, TensorView> byName)
    {
        _file = file;
        _views = views;
        _byName = byName;
    }

    public string Path => _file.Path;

    /// <summary>File length in bytes.</summary>
    public long FileLength => _file.Length;

    /// <summary>Tensor views in file order.</summary>
    public IReadOnlyList<TensorView> Tensors => _views;

    /// <summary>Tensor names in file order.</summary>
    public IEnumerable<string> TensorNames
    {
        get
        {
            foreach (var v in _views) yield return v.Name;
        }
    }

    public bool Contains(string name) => _byName.ContainsKey(name);

    public TensorView Get(string name) => _byName.TryGetValue(name, out var v) ? v
        : JevonsException.Throw<TensorView>("tensor not found in the file", Path, name);

    public TensorView? TryGet(string name) => _byName.GetValueOrDefault(name);

    public void Dispose() => _file.Dispose();

    /// <summary>Maps <paramref name="path"/> and hands it to <paramref name="parse"/>; unmaps it again when parsing throws.</summary>
    private protected static T Open<T>(string path, Func<MappedFile, T> parse) where T : MappedTensorFile
    {
        var file = MappedFile.Open(path);
        try
        {
            return parse(file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private protected static string FormatShape(long[] shape) => "[" + string.Join(", ", shape) + "]";
}

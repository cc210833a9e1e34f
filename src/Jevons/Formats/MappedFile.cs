using System.IO.MemoryMappedFiles;

namespace Jevons.Formats;

/// <summary>
/// A whole file mapped read-only into memory once. Readers parse headers straight from
/// <see cref="Pointer"/> and hand out tensor views into the mapping; nothing is copied, and
/// pages are only read when something touches them.
/// </summary>
internal sealed unsafe class MappedFile : IDisposable
{
    readonly MemoryMappedFile? _map;
    readonly MemoryMappedViewAccessor? _view;
    byte* _acquired;

    MappedFile(string path, long length, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* acquired)
    {
        Path = path;
        Length = length;
        _map = map;
        _view = view;
        _acquired = acquired;
        Pointer = acquired is null ? null : acquired + (view?.PointerOffset ?? 0);
    }

    /// <summary>The path as given, for messages.</summary>
    public string Path { get; }

    /// <summary>File length in bytes.</summary>
    public long Length { get; }

    /// <summary>First byte of the file; null for an empty file.</summary>
    public byte* Pointer { get; }

    /// <summary>Maps <paramref name="path"/>; a missing or unreadable file is a <see cref="JevonsException"/>.</summary>
    public static MappedFile Open(string path)
    {
        if (!BitConverter.IsLittleEndian)
            JevonsException.Throw("model files are little-endian and this machine is not", path);
        if (Directory.Exists(path))
            JevonsException.Throw("is a directory, expected a file", path);
        if (!File.Exists(path))
            JevonsException.Throw("file not found", path);

        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.RandomAccess);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new JevonsException("cannot open: " + e.Message, path, inner: e);
        }

        long length = stream.Length;
        if (length == 0)
        {
            // A zero-length file cannot be mapped; the format reader reports it as truncated.
            stream.Dispose();
            return new MappedFile(path, 0, null, null, null);
        }

        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        try
        {
            map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            return new MappedFile(path, length, map, view, p);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            view?.Dispose();
            map?.Dispose();
            stream.Dispose();
            throw new JevonsException("cannot map: " + e.Message, path, inner: e);
        }
    }

    public void Dispose()
    {
        if (_acquired is not null)
        {
            _view!.SafeMemoryMappedViewHandle.ReleasePointer();
            _acquired = null;
        }
        _view?.Dispose();
        _map?.Dispose();
    }
}

/// <summary>
/// A bounds-checked little-endian reader over a mapped file's header region. Every read names
/// what it was reading so a truncated or corrupt file produces a precise one-line message.
/// </summary>
internal unsafe struct HeaderCursor
{
    readonly byte* _base;
    readonly long _length;
    readonly string _file;

    public HeaderCursor(MappedFile file, long start = 0)
    {
        _base = file.Pointer;
        _length = file.Length;
        _file = file.Path;
        Position = start;
    }

    public long Position;

    /// <summary>The file being read, for messages.</summary>
    public readonly string File => _file;

    public readonly long Remaining => _length - Position;

    /// <summary>Ensures <paramref name="count"/> bytes can be read at the current position.</summary>
    public readonly void Need(long count, string what)
    {
        if (count < 0 || count > _length - Position)
            Truncated(what, count);
    }

    readonly void Truncated(string what, long count) =>
        JevonsException.Throw($"truncated file: {what} needs {count} bytes but the file ends at byte {_length}", _file, offset: Position);

    public T Read<T>(string what) where T : unmanaged
    {
        Need(sizeof(T), what);
        var v = System.Runtime.CompilerServices.Unsafe.ReadUnaligned<T>(_base + Position);
        Position += sizeof(T);
        return v;
    }

    /// <summary>The value at the current position, without advancing; the caller has checked the length.</summary>
    public readonly T Peek<T>() where T : unmanaged => System.Runtime.CompilerServices.Unsafe.ReadUnaligned<T>(_base + Position);

    /// <summary>Reads <paramref name="count"/> values into a new array; the caller has bounded count.</summary>
    public T[] ReadArray<T>(long count, string what) where T : unmanaged
    {
        long bytes = count * sizeof(T);
        Need(bytes, what);
        var result = new ReadOnlySpan<T>(_base + Position, checked((int)count)).ToArray();
        Position += bytes;
        return result;
    }

    public string ReadUtf8(long byteCount, string what)
    {
        Need(byteCount, what);
        if (byteCount > int.MaxValue)
            JevonsException.Throw($"{what} is {byteCount} bytes long, which is absurd", _file, offset: Position);
        var s = System.Text.Encoding.UTF8.GetString(_base + Position, (int)byteCount);
        Position += byteCount;
        return s;
    }

    public readonly ReadOnlySpan<byte> Span(long byteCount)
    {
        Need(byteCount, "header");
        return new ReadOnlySpan<byte>(_base + Position, checked((int)byteCount));
    }
}

using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;

namespace Jevons.Inference;

/// <summary>
/// The prefix cache's disk tier (--cache-dir): every full cached block is written to
/// <c>&lt;hash&gt;.kvblock</c>, so after a restart a prompt whose hash chain matches a file imports the
/// block instead of recomputing it. A file is trusted only when everything in its header matches —
/// magic, version, the runner's fingerprint (model + KV layout), block size, payload size, the chain
/// hash recomputed from the stored parent hash and token ids, the requested tokens — and the payload's
/// XxHash3 checksum is right; otherwise it is ignored with one warning line. The directory is kept
/// under <see cref="MaxBytes"/> by deleting the least recently used files.
/// </summary>
/// <remarks>
/// Layout, little-endian: "JVKV", u32 version, u32 fingerprint length, fingerprint UTF-8, u32 block
/// size, i64 payload bytes, u128 hash, u128 parent hash, i32[block size] token ids, u64 payload
/// checksum, payload.
/// </remarks>
public sealed class PrefixDiskCache
{
    const uint Version = 1;
    static ReadOnlySpan<byte> Magic => "JVKV"u8;
    const string Extension = ".kvblock";

    readonly byte[] _fingerprint;
    readonly int _blockSize;
    readonly long _payloadBytes;
    readonly TextWriter? _log;
    readonly Dictionary<UInt128, Entry> _files = new();
    long _clock;

    sealed class Entry
    {
        public long Bytes;
        public long LastUse;
    }

    public PrefixDiskCache(string directory, long maxBytes, IModelRunner runner, TextWriter? log = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxBytes);
        Directory = directory;
        MaxBytes = maxBytes;
        _fingerprint = Encoding.UTF8.GetBytes(runner.Fingerprint);
        _blockSize = runner.BlockSize;
        _payloadBytes = runner.BytesPerBlock;
        _log = log;
        try
        {
            System.IO.Directory.CreateDirectory(directory);
            // Oldest first, so the clock orders them by their last write.
            var found = new DirectoryInfo(directory).GetFiles("*" + Extension).OrderBy(f => f.LastWriteTimeUtc);
            foreach (var file in found)
                if (TryParseName(file.Name, out var hash))
                {
                    _files[hash] = new Entry { Bytes = file.Length, LastUse = ++_clock };
                    Bytes += file.Length;
                }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            JevonsException.Throw($"cache directory '{directory}' cannot be used: {e.Message}");
        }
        Trim();
    }

    public string Directory { get; }
    public long MaxBytes { get; }
    /// <summary>Bytes of the block files the directory holds.</summary>
    public long Bytes { get; private set; }
    public int Files => _files.Count;
    /// <summary>Files ignored because they failed a check.</summary>
    public int Rejected { get; private set; }

    public bool Contains(UInt128 hash) => _files.ContainsKey(hash);

    string PathOf(UInt128 hash) => Path.Combine(Directory, hash.ToString("x32") + Extension);

    static bool TryParseName(string name, out UInt128 hash)
    {
        hash = default;
        return name.Length == 32 + Extension.Length
            && UInt128.TryParse(name.AsSpan(0, 32), System.Globalization.NumberStyles.HexNumber, null, out hash);
    }

    /// <summary>
    /// Reads the file of <paramref name="hash"/> into block <paramref name="block"/> when every check
    /// passes; otherwise warns once, forgets the file and returns false.
    /// </summary>
    public bool TryRead(UInt128 hash, UInt128 parent, ReadOnlySpan<int> tokens, int block, IModelRunner runner)
    {
        var path = PathOf(hash);
        string? problem;
        byte[] data = [];
        try
        {
            data = File.ReadAllBytes(path);
            problem = Check(data, hash, parent, tokens, out int payloadAt);
            if (problem is null)
            {
                runner.ImportBlock(block, data.AsSpan(payloadAt, checked((int)_payloadBytes)));
                _files[hash].LastUse = ++_clock;
                File.SetLastWriteTimeUtc(path, DateTime.UtcNow);
                return true;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problem = e.Message;
        }
        Rejected++;
        _log?.WriteLine($"warning: prefix cache: ignoring {path}: {problem}");
        if (_files.Remove(hash, out var entry)) Bytes -= entry.Bytes;
        return false;
    }

    string? Check(ReadOnlySpan<byte> d, UInt128 hash, UInt128 parent, ReadOnlySpan<int> tokens, out int payloadAt)
    {
        payloadAt = 0;
        int headerBytes = 4 + 4 + 4 + _fingerprint.Length + 4 + 8 + 16 + 16 + 4 * _blockSize + 8;
        if (d.Length < 12 || !d[..4].SequenceEqual(Magic)) return "not a KV block file (bad magic)";
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(d[4..]);
        if (version != Version) return $"version {version}, expected {Version}";
        int fpLength = BinaryPrimitives.ReadInt32LittleEndian(d[8..]);
        if (fpLength < 0 || 12 + (long)fpLength > d.Length) return "truncated header";
        if (!d.Slice(12, fpLength).SequenceEqual(_fingerprint))
            return $"written for another model or KV layout ({Encoding.UTF8.GetString(d.Slice(12, fpLength))})";
        if (d.Length < headerBytes) return "truncated header";
        int at = 12 + fpLength;
        int blockSize = BinaryPrimitives.ReadInt32LittleEndian(d[at..]); at += 4;
        if (blockSize != _blockSize) return $"block size {blockSize}, expected {_blockSize}";
        long payload = BinaryPrimitives.ReadInt64LittleEndian(d[at..]); at += 8;
        if (payload != _payloadBytes) return $"payload of {payload} bytes, the KV layout has {_payloadBytes}";
        var storedHash = BinaryPrimitives.ReadUInt128LittleEndian(d[at..]); at += 16;
        var storedParent = BinaryPrimitives.ReadUInt128LittleEndian(d[at..]); at += 16;
        Span<int> stored = _blockSize <= 1024 ? stackalloc int[_blockSize] : new int[_blockSize];
        for (int i = 0; i < _blockSize; i++, at += 4) stored[i] = BinaryPrimitives.ReadInt32LittleEndian(d[at..]);
        ulong checksum = BinaryPrimitives.ReadUInt64LittleEndian(d[at..]); at += 8;
        if (storedHash != hash || storedParent != parent || BlockPool.ChainHash(storedParent, stored) != storedHash)
            return "hash chain does not match its name or its token ids";
        if (!stored.SequenceEqual(tokens)) return "token ids differ from the prompt's";
        if (d.Length != at + payload) return $"{d.Length} bytes, expected {at + payload} (truncated or padded)";
        if (XxHash3.HashToUInt64(d[at..]) != checksum) return "payload checksum mismatch";
        payloadAt = at;
        return null;
    }

    /// <summary>Writes one block's file (through a temporary name, so a crash leaves no half file under the real one).</summary>
    public void Write(UInt128 hash, UInt128 parent, ReadOnlySpan<int> tokens, ReadOnlySpan<byte> payload)
    {
        if (_files.ContainsKey(hash)) return;
        int headerBytes = 4 + 4 + 4 + _fingerprint.Length + 4 + 8 + 16 + 16 + 4 * _blockSize + 8;
        var data = new byte[headerBytes + payload.Length];
        var d = data.AsSpan();
        Magic.CopyTo(d);
        BinaryPrimitives.WriteUInt32LittleEndian(d[4..], Version);
        BinaryPrimitives.WriteInt32LittleEndian(d[8..], _fingerprint.Length);
        _fingerprint.CopyTo(d[12..]);
        int at = 12 + _fingerprint.Length;
        BinaryPrimitives.WriteInt32LittleEndian(d[at..], _blockSize); at += 4;
        BinaryPrimitives.WriteInt64LittleEndian(d[at..], payload.Length); at += 8;
        BinaryPrimitives.WriteUInt128LittleEndian(d[at..], hash); at += 16;
        BinaryPrimitives.WriteUInt128LittleEndian(d[at..], parent); at += 16;
        foreach (var t in tokens) { BinaryPrimitives.WriteInt32LittleEndian(d[at..], t); at += 4; }
        BinaryPrimitives.WriteUInt64LittleEndian(d[at..], XxHash3.HashToUInt64(payload)); at += 8;
        payload.CopyTo(d[at..]);
        var path = PathOf(hash);
        try
        {
            var temp = path + ".tmp";
            File.WriteAllBytes(temp, data);
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log?.WriteLine($"warning: prefix cache: cannot write {path}: {e.Message}");
            return;
        }
        _files[hash] = new Entry { Bytes = data.Length, LastUse = ++_clock };
        Bytes += data.Length;
        Trim();
    }

    void Trim()
    {
        if (Bytes <= MaxBytes) return;
        foreach (var (hash, entry) in _files.OrderBy(kv => kv.Value.LastUse).ToList())
        {
            if (Bytes <= MaxBytes) break;
            try { File.Delete(PathOf(hash)); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            _files.Remove(hash);
            Bytes -= entry.Bytes;
        }
    }
}

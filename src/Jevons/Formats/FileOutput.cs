namespace Jevons.Formats;

/// <summary>How far a writer has got: bytes written so far out of the file's total.</summary>
public readonly record struct WriteProgress(long BytesWritten, long TotalBytes)
{
    public double Fraction => TotalBytes == 0 ? 1 : (double)BytesWritten / TotalBytes;
}

/// <summary>
/// Streams a file into place: it is written to a temporary name beside the target and renamed on
/// success, so an interrupted write never leaves a half-written model under the real name.
/// </summary>
internal static class FileOutput
{
    public static void WriteAtomically(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        var temp = full + ".partial";
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1 << 20))
            {
                write(stream);
                stream.Flush(flushToDisk: false);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>Writes <paramref name="count"/> zero bytes.</summary>
    public static void Pad(Stream stream, long count)
    {
        Span<byte> zeros = stackalloc byte[64];
        zeros.Clear();
        while (count > 0)
        {
            int n = (int)Math.Min(count, zeros.Length);
            stream.Write(zeros[..n]);
            count -= n;
        }
    }

    /// <summary>Copies <paramref name="length"/> bytes from unmanaged memory (a mapped tensor) in chunks.</summary>
    public static unsafe void CopyFrom(Stream stream, byte* data, long length)
    {
        const int chunk = 1 << 24;
        for (long done = 0; done < length; done += chunk)
            stream.Write(new ReadOnlySpan<byte>(data + done, (int)Math.Min(chunk, length - done)));
    }
}

/// <summary>
/// The stream a tensor callback writes into: forwards to the file, counts bytes so the writer can
/// check the callback wrote exactly the tensor's size, and reports progress every 16 MiB.
/// </summary>
internal sealed class TensorDataStream : Stream
{
    const long ReportEvery = 16 << 20;
    readonly Stream _inner;
    readonly IProgress<WriteProgress>? _progress;
    readonly long _total;
    long _fileBase;
    long _nextReport;

    public TensorDataStream(Stream inner, long total, IProgress<WriteProgress>? progress)
    {
        _inner = inner;
        _total = total;
        _progress = progress;
    }

    /// <summary>Bytes written since <see cref="Begin"/>.</summary>
    public long Written { get; private set; }

    /// <summary>Starts counting a new tensor whose data begins at absolute file offset <paramref name="fileOffset"/>.</summary>
    public void Begin(long fileOffset)
    {
        _fileBase = fileOffset;
        Written = 0;
    }

    public void Report() => _progress?.Report(new WriteProgress(Math.Min(_fileBase + Written, _total), _total));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _inner.Write(buffer);
        Written += buffer.Length;
        if (_progress is not null && _fileBase + Written >= _nextReport)
        {
            _nextReport = _fileBase + Written + ReportEvery;
            Report();
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
    public override void WriteByte(byte value) => Write([value]);
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => Written; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}

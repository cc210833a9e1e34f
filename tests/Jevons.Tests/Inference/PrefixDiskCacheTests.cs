using Jevons.Inference;
using Jevons.Tests.Formats;
using Xunit;

namespace Jevons.Tests.Inference;

public class PrefixDiskCacheTests
{
    static readonly int[] Prompt = [7, 3, 9, 1, 4, 4, 8, 2, 6, 5, 1, 3, 2];   // 13 tokens: 3 full blocks of 4

    /// <summary>A "process": a fresh fake runner (empty KV), pool and scheduler over the same directory.</summary>
    static (Sequence Seq, FakeRunner Runner, BlockPool Pool, StringWriter Log) Run(string dir, int[] prompt, string fingerprint = "fake", long maxBytes = 1 << 20)
    {
        var runner = new FakeRunner(blocks: 32, blockSize: 4, fingerprint: fingerprint);
        var log = new StringWriter();
        var pool = new BlockPool(runner, new PrefixDiskCache(dir, maxBytes, runner, log));
        var scheduler = new Scheduler(runner, pool);
        var seq = new Sequence(0, prompt, new SequenceOptions { MaxTokens = 3 });
        scheduler.Add(seq);
        while (scheduler.HasWork) scheduler.Step();
        Assert.Equal(FakeRunner.Reference(prompt, seq.Options, 32), seq.Generated.ToArray());
        Assert.Equal(0, pool.Used);
        return (seq, runner, pool, log);
    }

    static string[] Files(string dir) => Directory.GetFiles(dir, "*.kvblock").Order().ToArray();

    [Fact]
    public void AHitSurvivesARestart()
    {
        using var dir = new TempDir();
        var (first, _, _, log1) = Run(dir.Path, Prompt);
        Assert.Equal(0, first.CachedPromptTokens);
        // 13 prompt + 2 evaluated generated tokens = 15 positions: 3 full blocks.
        Assert.Equal(3, Files(dir.Path).Length);
        var (second, runner, pool, log2) = Run(dir.Path, Prompt);
        Assert.Equal(12, second.CachedPromptTokens);
        Assert.Equal(3, pool.DiskHits);
        Assert.Equal(3, runner.Imports);
        Assert.Equal("", log1.ToString() + log2.ToString());
        // Only the uncached token was evaluated for the prompt.
        Assert.Single(runner.Batches[0].Single().Tokens);
    }

    [Theory]
    [InlineData("payload", "payload checksum mismatch")]
    [InlineData("truncate", "truncated")]
    [InlineData("magic", "bad magic")]
    [InlineData("tokens", "hash chain does not match")]
    public void ADamagedFileIsSkippedWithOneWarning(string damage, string expected)
    {
        using var dir = new TempDir();
        Run(dir.Path, Prompt);
        // The first block's file is the one a prompt reaches first: find it by its 4 token ids.
        var file = Files(dir.Path).Single(f => ReadTokens(f).SequenceEqual(Prompt[..4]));
        var bytes = File.ReadAllBytes(file);
        switch (damage)
        {
            case "payload": bytes[^3] ^= 0x40; break;
            case "truncate": bytes = bytes[..(bytes.Length - 5)]; break;
            case "magic": bytes[0] = (byte)'X'; break;
            case "tokens": bytes[TokensAt(bytes)] ^= 1; break;
        }
        File.WriteAllBytes(file, bytes);

        var (second, runner, pool, log) = Run(dir.Path, Prompt);
        var lines = log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("warning: prefix cache: ignoring ", lines[0]);
        Assert.Contains(Path.GetFileName(file), lines[0]);
        Assert.Contains(expected, lines[0]);
        // The chain breaks at its first block: nothing is imported, everything recomputed (and right).
        Assert.Equal(0, second.CachedPromptTokens);
        Assert.Equal(0, runner.Imports);
        // The block was recomputed and its file written anew: the next start hits again.
        var (third, _, _, log3) = Run(dir.Path, Prompt);
        Assert.Equal(12, third.CachedPromptTokens);
        Assert.Equal("", log3.ToString());
    }

    [Fact]
    public void AFileOfAnotherModelIsNeverTrusted()
    {
        using var dir = new TempDir();
        // Another model's file under the very name our chain asks for.
        var ours = new FakeRunner(blocks: 8);
        var hash = BlockPool.ChainHash(new BlockPool(ours).Root, Prompt.AsSpan(0, 4));
        var other = new FakeRunner(blocks: 8, fingerprint: "other-model");
        var foreign = new PrefixDiskCache(dir.Path, 1 << 20, other);
        foreign.Write(hash, new BlockPool(ours).Root, Prompt.AsSpan(0, 4), new byte[other.BytesPerBlock]);

        var (seq, runner, _, log) = Run(dir.Path, Prompt);
        Assert.Equal(0, seq.CachedPromptTokens);
        Assert.Equal(0, runner.Imports);
        var text = log.ToString();
        Assert.Single(text.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("written for another model or KV layout (other-model|bs4)", text);
    }

    [Fact]
    public void TheDirectoryStaysUnderItsBound()
    {
        using var dir = new TempDir();
        Run(dir.Path, Prompt);
        long fileBytes = new FileInfo(Files(dir.Path)[0]).Length;
        // Room for two files: the third write drops the least recently used one.
        var runner = new FakeRunner(blocks: 8);
        var cache = new PrefixDiskCache(dir.Path, 2 * fileBytes, runner);
        Assert.Equal(2, cache.Files);
        Assert.Equal(2, Files(dir.Path).Length);
        Assert.True(cache.Bytes <= 2 * fileBytes);
    }

    static int TokensAt(byte[] b)
    {
        int fp = BitConverter.ToInt32(b, 8);
        return 12 + fp + 4 + 8 + 16 + 16;
    }

    static int[] ReadTokens(string file)
    {
        var b = File.ReadAllBytes(file);
        int at = TokensAt(b);
        return Enumerable.Range(0, 4).Select(i => BitConverter.ToInt32(b, at + 4 * i)).ToArray();
    }
}

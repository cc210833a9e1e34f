namespace Jevons.Cli.Commands;

/// <summary>`jevons eval-logits`: logits of every position, float32 LE [n_tokens, n_vocab], row-major.</summary>
sealed class EvalLogitsCommand : ICommand
{
    public CommandSpec Spec { get; } = new("eval-logits",
        "write the logits of every position as float32 little-endian [n_tokens, n_vocab], row-major",
    [
        Common.Model,
        new("--ids", "token ids, evaluated as one batch from position 0: 1,2,3", "IDS"),
        new("--out", "output file", "FILE", "-o"),
        Common.Threads,
    ]);

    public int Run(ParsedArgs a, CliContext c)
    {
        var ids = a.GetIds("--ids") ?? throw new JevonsException("jevons eval-logits: option '--ids' is required");
        var outPath = a.Require("--out");
        using var loaded = Common.Load(a, c, tokenizer: false);
        var model = loaded.Model;
        int vocab = model.VocabSize;
        foreach (var id in ids)
            if ((uint)id >= (uint)vocab)
                throw new JevonsException($"token id {id} is out of vocabulary (the model has {vocab} tokens)", loaded.Source.Path);
        var state = model.CreateState(Common.ContextFor(a, model, ids.Length));
        var logits = new float[(long)ids.Length * vocab];
        model.Forward(state, ids, logits);
        using (var f = File.Create(outPath))
        {
            var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(logits.AsSpan());
            if (!BitConverter.IsLittleEndian)
                throw new JevonsException("eval-logits writes little-endian floats; this machine is big-endian");
            f.Write(bytes);
        }
        c.Error.WriteLine($"wrote {ids.Length} x {vocab} logits to {outPath}");
        return 0;
    }
}

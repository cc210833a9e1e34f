using System.Text;
using System.Text.Json;
using Jevons.Models;
using Jevons.Tokenization;

namespace Jevons.Cli.Commands;

/// <summary>`jevons tokenize`: text to token ids (text from the argument, or stdin byte for byte).</summary>
sealed class TokenizeCommand : ICommand
{
    public CommandSpec Spec { get; } = new("tokenize", "turn text into token ids (reads stdin when no text is given)",
    [
        Common.Model,
        new("--tokenizer", "a tokenizer.json file (or a directory holding one) instead of a model", "FILE"),
        new("--json", "print the ids as one JSON array"),
        new("--add-special", "add BOS/EOS as the tokenizer config asks (as transformers does)"),
    ], "TEXT");

    public int Run(ParsedArgs a, CliContext c)
    {
        var modelPath = a.Get("--model");
        var tokPath = a.Get("--tokenizer");
        if ((modelPath is null) == (tokPath is null))
            throw new JevonsException("jevons tokenize: give exactly one of --model or --tokenizer");
        var tokenizer = tokPath is not null ? Tokenizer.Load(tokPath) : LoadedModel.LoadTokenizer(modelPath!);

        string text;
        if (a.Positionals.Count > 0) text = string.Join(" ", a.Positionals);
        else
        {
            using var ms = new MemoryStream();
            c.In.CopyTo(ms);
            text = new UTF8Encoding(false, throwOnInvalidBytes: false).GetString(ms.ToArray());
        }
        var ids = tokenizer.Encode(text, a.Has("--add-special"));
        if (a.Has("--json"))
        {
            c.Out.WriteLine(JsonSerializer.Serialize(ids));
        }
        else
        {
            foreach (var id in ids)
                c.Out.WriteLine($"{id,8} -> '{tokenizer.Decode([id], skipSpecialTokens: false)}'");
            c.Out.WriteLine($"{ids.Length} tokens");
        }
        return 0;
    }
}

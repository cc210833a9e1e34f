using System.Text;
using Jevons.Inference;
using Jevons.Tokenization;

namespace Jevons.Cli.Commands;

/// <summary>`jevons chat`: an interactive conversation with the model's chat format applied.</summary>
sealed class ChatCommand : ICommand
{
    public CommandSpec Spec { get; } = new("chat",
        "talk to a model interactively (one message per line; /reset starts over, /exit or end of input quits)",
    [
        Common.Model,
        new("--system", "a system message that opens the conversation", "TEXT"),
        new("--n-predict", "most tokens per reply (default 512)", "N", "-n"),
        .. Common.Sampling,
        Common.Threads,
        Common.Context,
        .. Common.Engine,
    ]);

    public int Run(ParsedArgs a, CliContext c)
    {
        int n = a.GetInt("--n-predict", 512, 1);
        var sampling = Common.SamplerOptions(a);
        using var loaded = Common.Load(a, c);
        var tokenizer = loaded.RequireTokenizer();
        var model = loaded.Model;
        var format = ChatPrompt.For(tokenizer);
        if (format.Notice is not null) c.Error.WriteLine(format.Notice);
        int ctx = Common.ContextFor(a, model, Math.Min(model.Description.ContextLength > 0 ? model.Description.ContextLength : 4096, 4096));
        // One engine for the session: each turn sends the whole conversation, and the prefix cache
        // gives back the blocks of the part that did not change.
        using var engine = Common.CreateEngine(a, c, loaded, ctx);
        var messages = new List<ChatMessage>();
        var system = a.Get("--system");
        if (system is not null) messages.Add(new ChatMessage("system", system));
        c.Error.WriteLine($"chat format: {format.Description}; context {ctx} tokens. Type a message; /reset starts over, /exit quits.");

        using var input = new StreamReader(c.In, new UTF8Encoding(false));
        while (true)
        {
            c.Out.Write("> ");
            c.Out.Flush();
            var line = input.ReadLine();
            if (line is null || line.Trim() == "/exit") break;
            if (line.Trim() == "/reset")
            {
                messages.RemoveAll(m => m.Role != "system");
                c.Error.WriteLine("(conversation cleared)");
                continue;
            }
            if (line.Length == 0) continue;
            messages.Add(new ChatMessage("user", line));
            var prompt = tokenizer.Encode(format.Render(messages, addGenerationPrompt: true), addSpecialTokens: false);
            if (prompt.Length + 1 >= ctx)
            {
                c.Error.WriteLine($"error: the conversation ({prompt.Length} tokens) no longer fits the context ({ctx}); /reset to start over");
                messages.RemoveAt(messages.Count - 1);
                continue;
            }
            var reply = new StringBuilder();
            var request = new GenerationRequest { Prompt = prompt, MaxTokens = Math.Min(n, ctx - prompt.Length - 1), Sampling = sampling };
            Common.Consume(engine.GenerateAsync(request, c.Cancel), token =>
            {
                reply.Append(token.Text);
                c.Out.Write(token.Text);
                c.Out.Flush();
                if (token.Finish != FinishReason.None && c.Verbose)
                    c.Error.WriteLine($"\n({token.Usage.PromptTokens} prompt tokens, {token.Usage.CachedPromptTokens} from the prefix cache; {token.Usage.CompletionTokens} generated)");
            });
            c.Out.WriteLine();
            messages.Add(new ChatMessage("assistant", reply.ToString()));
        }
        return 0;
    }
}

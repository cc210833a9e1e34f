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
        var state = model.CreateState(ctx);
        var generator = new Generator(model, tokenizer);
        var messages = new List<ChatMessage>();
        var system = a.Get("--system");
        if (system is not null) messages.Add(new ChatMessage("system", system));
        var cached = new List<int>();
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
            // Keep the cache for the part of the conversation that is unchanged.
            int common = 0;
            while (common < cached.Count && common < prompt.Length && cached[common] == prompt[common]) common++;
            state.Truncate(common);
            var reply = new StringBuilder();
            var ids = new List<int>(prompt);
            var options = new GenerationOptions { MaxTokens = Math.Min(n, ctx - prompt.Length - 1), Sampling = sampling };
            foreach (var token in generator.Generate(state, prompt, options, cancel: c.Cancel))
            {
                ids.Add(token.Id);
                reply.Append(token.Text);
                c.Out.Write(token.Text);
                c.Out.Flush();
            }
            c.Out.WriteLine();
            // The state holds the prompt and every generated token but the last.
            cached = ids.GetRange(0, state.Length);
            messages.Add(new ChatMessage("assistant", reply.ToString()));
        }
        return 0;
    }
}

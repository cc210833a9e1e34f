namespace Jevons.Inference;

/// <summary>
/// Budget forcing (s1, "wait"/"stop" at a token count): a <see cref="GenerationRequest.TokenHook"/> that counts
/// each choice's tokens inside &lt;think&gt; and, once <c>budget</c> are spent with the block still open,
/// forces the close ids ("&lt;/think&gt;\n") once. The server's max_reasoning_tokens and `jevons eval
/// --budget` use it. Runs on the engine thread, so it needs no locks.
/// </summary>
public static class ThinkingBudget
{
    public static Func<int, string, IReadOnlyList<int>?> Hook(int choices, bool promptOpens, int budget, int[] close)
    {
        var parsers = Enumerable.Range(0, choices).Select(_ => new ReasoningParser(promptOpens)).ToArray();
        var spent = new int[choices];
        var forced = new bool[choices];
        return (choice, text) =>
        {
            if (forced[choice]) return null;
            var p = parsers[choice];
            bool before = p.InReasoning;
            p.Push(text);
            if (before || p.InReasoning) spent[choice]++;
            if (!p.InReasoning || spent[choice] < budget) return null;
            forced[choice] = true;
            return close;
        };
    }
}

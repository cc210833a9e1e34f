using Jevons.Inference;
using Xunit;

namespace Jevons.Tests.Inference;

public class ToolCallParserTests
{
    sealed record Result(string Content, List<(string Id, string Name, string Arguments)> Calls);

    static Result Run(IEnumerable<string> pieces)
    {
        var p = new ToolCallParser();
        var content = "";
        var calls = new List<(string Id, string Name, string Arguments)>();
        void Apply(ToolCallChunk chunk)
        {
            content += chunk.Content;
            foreach (var d in chunk.ToolCalls)
            {
                if (d.Id is not null)
                {
                    Assert.Equal(calls.Count, d.Index);
                    Assert.NotNull(d.Name);
                    calls.Add((d.Id, d.Name!, d.Arguments));
                }
                else calls[d.Index] = calls[d.Index] with { Arguments = calls[d.Index].Arguments + d.Arguments };
            }
        }
        foreach (var piece in pieces) Apply(p.Push(piece));
        Apply(p.Flush());
        // The streamed deltas add up to what the parser reports as its calls.
        Assert.Equal(calls, p.Calls.Select(c => (c.Id, c.Name, c.Arguments)).ToList());
        return new Result(content, calls);
    }

    static Result RunEverySplit(string text)
    {
        var whole = Run([text]);
        for (int i = 0; i <= text.Length; i++)
        {
            var split = Run([text[..i], text[i..]]);
            Assert.Equal(whole.Content, split.Content);
            Assert.Equal(whole.Calls, split.Calls);
        }
        var chars = Run(text.Select(c => c.ToString()));
        Assert.Equal(whole.Content, chars.Content);
        Assert.Equal(whole.Calls, chars.Calls);
        return whole;
    }

    [Fact]
    public void DeepSeekV3Calls()
    {
        // The form the DeepSeek-V3 chat template writes (golden tokenizer_config.json), as the model emits it.
        var text = "Let me check.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Hangzhou\"}\n```<｜tool▁call▁end｜>\n" +
                   "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{\"tz\": \"Asia/Shanghai\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
        var r = RunEverySplit(text);
        Assert.Equal("Let me check.", r.Content);
        Assert.Equal([("call_0", "get_weather", "{\"city\": \"Hangzhou\"}"), ("call_1", "get_time", "{\"tz\": \"Asia/Shanghai\"}")], r.Calls);
    }

    [Fact]
    public void DeepSeekV31Call()
    {
        var r = RunEverySplit("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>search<｜tool▁sep｜>{\"q\": \"x\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>done");
        Assert.Equal("done", r.Content);
        Assert.Equal([("call_0", "search", "{\"q\": \"x\"}")], r.Calls);
    }

    [Fact]
    public void QwenCalls()
    {
        var text = "Sure.\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"Asia/Tokyo\", \"fmt\": [1, {\"a\": \"}\"}]}}\n</tool_call>\n" +
                   "<tool_call>\n{\"arguments\": {}, \"name\": \"noop\"}\n</tool_call>";
        var r = RunEverySplit(text);
        Assert.Equal("Sure.\n\n", r.Content);
        Assert.Equal([("call_0", "get_time", "{\"tz\": \"Asia/Tokyo\", \"fmt\": [1, {\"a\": \"}\"}]}"), ("call_1", "noop", "{}")], r.Calls);
    }

    [Fact]
    public void QwenCallWithScalarArgumentsAndEscapes()
    {
        var r = RunEverySplit("<tool_call>{\"name\": \"f\\\"q\", \"arguments\": 42 }</tool_call>tail");
        Assert.Equal("tail", r.Content);
        Assert.Equal([("call_0", "f\"q", "42")], r.Calls);
    }

    [Theory]
    [InlineData("No tools here, just < and <tool and <｜tool text.")]
    [InlineData("Ends with a partial marker <tool_ca")]
    [InlineData("<tool_call>not json at all</tool_call>")]
    public void TextWithoutCallsIsContent(string text)
    {
        var r = RunEverySplit(text);
        Assert.Equal(text, r.Content);
        Assert.Empty(r.Calls);
    }

    [Fact]
    public void UnterminatedCallIsClosedAtTheEnd()
    {
        var r = RunEverySplit("<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1");
        Assert.Equal("", r.Content);
        Assert.Equal([("call_0", "f", "{\"a\": 1")], r.Calls);
    }

    [Fact]
    public void ArgumentsStreamBeforeTheCallEnds()
    {
        var p = new ToolCallParser("id");
        var first = p.Push("<tool_call>{\"name\": \"f\", \"arguments\": {\"long\": \"abc");
        Assert.Equal([new ToolCallDelta(0, "id0", "f", ""), new ToolCallDelta(0, null, null, "{\"long\": \"abc")], first.ToolCalls);
        var second = p.Push("def\"}}</tool_call>");
        Assert.Equal([new ToolCallDelta(0, null, null, "def\"}")], second.ToolCalls);
    }
}

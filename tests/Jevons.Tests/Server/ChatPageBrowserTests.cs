using Microsoft.Playwright;
using Xunit;

namespace Jevons.Tests.Server;

/// <summary>Skipped, with the reason, where no Chromium is installed (Debian: apt-get install chromium; or set JEVONS_CHROMIUM).</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public ChromiumFactAttribute()
    {
        if (ChatPageBrowserTests.Chromium is null)
            Skip = "no Chromium browser found (JEVONS_CHROMIUM, /usr/lib/chromium/chromium, or chromium on PATH): apt-get install chromium to run the chat-page test";
    }
}

/// <summary>
/// The chat page at / in a real headless browser: Debian's Chromium driven by Playwright for .NET
/// (its own browser download is not used). A scripted model thinks, then answers token by token.
/// </summary>
public sealed class ChatPageBrowserTests
{
    /// <summary>The Chromium executable, or null.</summary>
    public static readonly string? Chromium = FindChromium();

    static string? FindChromium()
    {
        if (Environment.GetEnvironmentVariable("JEVONS_CHROMIUM") is { Length: > 0 } set) return File.Exists(set) ? set : null;
        // Debian's /usr/bin/chromium is a shell wrapper around this binary.
        if (File.Exists("/usr/lib/chromium/chromium")) return "/usr/lib/chromium/chromium";
        return NodeClientTests.Which("chromium") ?? NodeClientTests.Which("chromium-browser");
    }

    [ChromiumFact]
    public async Task ThePageStreamsTheAnswerShowsReasoningAndStatsAndStops()
    {
        var runner = ServerHarness.Scripted("<think>\nthe user greets me</think>\n\nhello there, my good friend, how are you today");
        // Paced so the polling below sees the answer grow even on a loaded machine (40 ms was seen as one step).
        runner.StepDelay = TimeSpan.FromMilliseconds(150);
        await using var t = await ServerHarness.Start(ServerHarness.ScriptedEngine(runner));

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        });
        var page = await browser.NewPageAsync();
        var errors = new List<string>();
        page.PageError += (_, e) => errors.Add(e);
        await page.GotoAsync(t.Address.ToString());
        await Assertions.Expect(page.Locator("#model option")).ToHaveTextAsync("tiny");

        // Streamed: the answer grows in steps before it is complete. A MutationObserver in the page records every
        // text the answer shows, so a loaded test process polling late cannot miss the steps.
        await page.EvaluateAsync(@"() => {
            window.__answers = [];
            new MutationObserver(() => {
                const all = document.querySelectorAll('.assistant .answer');
                const text = all.length ? all[all.length - 1].textContent : '';
                if (text && window.__answers[window.__answers.length - 1] !== text) window.__answers.push(text);
            }).observe(document.body, { subtree: true, childList: true, characterData: true });
        }");
        await page.FillAsync("#input", "hi");
        await page.PressAsync("#input", "Enter");
        var answer = page.Locator(".assistant .answer").Last;
        await Assertions.Expect(answer).ToHaveTextAsync("hello there, my good friend, how are you today", new() { Timeout = 30_000 });
        var seen = await page.EvaluateAsync<string[]>("() => window.__answers");
        Assert.True(seen.Length >= 3, $"the answer came in {seen.Length} steps: {string.Join(" | ", seen)}");
        for (int i = 1; i < seen.Length; i++)
            Assert.True(seen[i].StartsWith(seen[i - 1], StringComparison.Ordinal), $"the answer shrank or changed: '{seen[i - 1]}' then '{seen[i]}'");
        // The reasoning is its own collapsible block, not part of the answer.
        var reasoning = page.Locator(".assistant details.reasoning").Last;
        await Assertions.Expect(reasoning).ToBeVisibleAsync();
        Assert.Equal("the user greets me", await reasoning.Locator("div").TextContentAsync());
        Assert.Null(await reasoning.GetAttributeAsync("open"));
        await reasoning.Locator("summary").ClickAsync();
        Assert.NotNull(await reasoning.GetAttributeAsync("open"));
        await Assertions.Expect(page.Locator(".assistant .stats").Last).ToContainTextAsync("tokens/s");
        await Assertions.Expect(page.Locator(".assistant .stats").Last).ToContainTextAsync("prompt tokens from the cache");
        await Assertions.Expect(page.Locator("#stop")).ToBeHiddenAsync();
        var shots = Path.Combine(AppContext.BaseDirectory, "screenshots");
        Directory.CreateDirectory(shots);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(shots, "chat-page.png"), FullPage = true });

        // Stop: a slow answer, stopped part way; the server cancels the sequence.
        runner.StepDelay = TimeSpan.FromMilliseconds(300);
        await page.FillAsync("#input", "again");
        await page.ClickAsync("#send");
        await Assertions.Expect(page.Locator("#stop")).ToBeVisibleAsync();
        var second = page.Locator(".assistant .answer").Nth(1);
        await Assertions.Expect(second).ToContainTextAsync("hello", new() { Timeout = 30_000 });
        await page.ClickAsync("#stop");
        await Assertions.Expect(page.Locator(".assistant .error").Last).ToHaveTextAsync("stopped");
        await Assertions.Expect(page.Locator("#send")).ToBeVisibleAsync();
        Assert.DoesNotContain("today", await second.TextContentAsync());
        var stopped = System.Diagnostics.Stopwatch.StartNew();
        while (t.Engine.Metrics.Running > 0 && stopped.Elapsed < TimeSpan.FromSeconds(20)) await Task.Delay(20);
        Assert.Equal(0, t.Engine.Metrics.Running);
        Assert.Empty(errors);
    }
}

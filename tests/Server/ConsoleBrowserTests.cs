using System.Net.Http.Json;
using System.Text.Json;
using CowWasm.Server;
using CowWasm.Tests.Prolog;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace CowWasm.Tests.Server;

/// <summary>
/// The browser console (GET /) in a real headless Chromium — Debian's <c>chromium</c>, which test.sh installs — driven
/// through Playwright, against a real Kestrel: load, type the token, query and see the answers as a table, write, and
/// watch the commit counter move. <c>COWWASM_CONSOLE_SCREENSHOT=FILE</c> saves what the page looks like at the end
/// (docs/images/console.png was made so).
/// </summary>
[Collection(TreallaCollection.Name)]
public sealed class ConsoleBrowserTests(TreallaFixture trealla)
{
    private static readonly LocatorAssertionsToHaveTextOptions s_wait = new() { Timeout = 20_000 };

    private static string ChromiumPath =>
        Environment.GetEnvironmentVariable("COWWASM_CHROMIUM") is { Length: > 0 } path ? path : "/usr/bin/chromium";

    private static async Task<IBrowser> LaunchAsync(IPlaywright playwright)
    {
        Assert.True(File.Exists(ChromiumPath), $"No Chromium at {ChromiumPath}: test.sh installs Debian's chromium (or set COWWASM_CHROMIUM).");
        return await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"], // root in CI; small /dev/shm in containers
        });
    }

    private static async Task<long> SequenceAsync(RunningServer s) =>
        (await s.Http.GetFromJsonAsync<JsonElement>("/stats")).GetProperty("sequence").GetInt64();

    [Fact]
    public async Task TheConsole_StreamsAnswersIntoATable_WritesWithTheToken_AndShowsTheCommitsMove()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla, new ServerOptions { Port = 0, Replicas = 2 });
        using IPlaywright playwright = await Playwright.CreateAsync();
        await using IBrowser browser = await LaunchAsync(playwright);
        IPage page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1100, Height = 640 } });
        var pageErrors = new List<string>();
        page.PageError += (_, error) => pageErrors.Add(error);

        IResponse? loaded = await page.GotoAsync(s.Server.HttpAddress.ToString());
        Assert.Equal(200, loaded!.Status);
        await Expect(page).ToHaveTitleAsync("CowWasm console");
        // Without the token the page says so; nothing else is shown.
        await Expect(page.Locator("#connection")).ToContainTextAsync("enter the token", new() { Timeout = 20_000 });

        // A write without the token is refused with the service's own message.
        await page.FillAsync("#program", ":- dynamic(visit/1). visit(rome). visit(paris).");
        await page.ClickAsync("#consult");
        await Expect(page.Locator("#write-status")).ToContainTextAsync("401 unauthorized", new() { Timeout = 20_000 });

        await page.FillAsync("#token", RunningServer.TestToken);
        await page.Locator("#token").PressAsync("Enter"); // commits the field (change event)
        await Expect(page.Locator("#connection")).ToHaveTextAsync("connected", s_wait);
        await Expect(page.Locator("#role")).ToHaveTextAsync("leader · pool", s_wait);

        await page.ClickAsync("#consult");
        await Expect(page.Locator("#write-status")).ToHaveTextAsync("consult committed", s_wait);

        // A query: its answers arrive as rows of a table, one column per variable.
        await page.FillAsync("#goal", "visit(X)");
        await page.ClickAsync("#run");
        await Expect(page.Locator("#query-status")).ToContainTextAsync("2 answers", new() { Timeout = 20_000 });
        await Expect(page.Locator("#answers thead th")).ToHaveTextAsync(["X"]);
        await Expect(page.Locator("#answers tbody td")).ToHaveTextAsync(["rome", "paris"]);

        // A longer stream, and terms that need quoting and structure.
        await page.FillAsync("#goal", "between(1, 60, N), format(atom(A), \"Item ~d\", [N]), T = f(N, \"s\", [A])");
        await page.ClickAsync("#run");
        await Expect(page.Locator("#query-status")).ToContainTextAsync("60 answers", new() { Timeout = 20_000 });
        await Expect(page.Locator("#answers tbody tr")).ToHaveCountAsync(60);
        await Expect(page.Locator("#answers tbody tr").Nth(59).Locator("td")).ToHaveTextAsync(["60", "'Item 60'", "f(60, \"s\", ['Item 60'])"]);

        // An error from the guest: its term, written back as Prolog.
        await page.FillAsync("#goal", "X is foo + 1");
        await page.ClickAsync("#run");
        await Expect(page.Locator("#query-status")).ToContainTextAsync("error after 0 answers: error(type_error(evaluable, foo/0), ", new() { Timeout = 20_000 });

        // A goal that does not parse: a stream reports it in its final line, which the page shows.
        await page.FillAsync("#goal", "visit(");
        await page.ClickAsync("#run");
        await Expect(page.Locator("#query-status")).ToContainTextAsync("error(syntax_error(", new() { Timeout = 20_000 });

        // Writes move the commit counter the page shows.
        long before = await SequenceAsync(s);
        await Expect(page.Locator("#stat-sequence")).ToHaveTextAsync(before.ToString(System.Globalization.CultureInfo.InvariantCulture), s_wait);
        for (int i = 0; i < 3; i++)
        {
            await page.FillAsync("#program", $"visit(city{i})");
            await page.ClickAsync("#assert");
            await Expect(page.Locator("#write-status")).ToHaveTextAsync("assert committed", s_wait);
        }

        Assert.Equal(before + 3, await SequenceAsync(s));
        await Expect(page.Locator("#stat-sequence")).ToHaveTextAsync((before + 3).ToString(System.Globalization.CultureInfo.InvariantCulture), s_wait);
        await page.FillAsync("#program", "visit(rome)");
        await page.ClickAsync("#retract");
        await Expect(page.Locator("#write-status")).ToHaveTextAsync("retract committed: retracted", s_wait);
        await page.FillAsync("#goal", "visit(X)");
        await page.ClickAsync("#run");
        await Expect(page.Locator("#answers tbody td")).ToHaveTextAsync(["paris", "city0", "city1", "city2"], s_wait);
        await Expect(page.Locator("#stat-pages")).Not.ToHaveTextAsync("–", s_wait); // pages per commit, once commits were seen between polls

        if (Environment.GetEnvironmentVariable("COWWASM_CONSOLE_SCREENSHOT") is { Length: > 0 } screenshot)
        {
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = screenshot, FullPage = true });
        }

        Assert.Empty(pageErrors);
    }

    [Fact]
    public async Task TheConsolesFiles_NeedNoToken_AndCarryHeadersThatKeepOtherPagesOut()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla, new ServerOptions { Port = 0, Replicas = 1 });
        using var anonymous = new HttpClient { BaseAddress = s.Server.HttpAddress };
        foreach ((string path, string type) in new[] { ("/", "text/html"), ("/console.js", "text/javascript"), ("/console.css", "text/css") })
        {
            using HttpResponseMessage response = await anonymous.GetAsync(path);
            Assert.True(response.IsSuccessStatusCode, $"{path}: {response.StatusCode}");
            Assert.Equal(type, response.Content.Headers.ContentType?.MediaType);
            Assert.Contains("frame-ancestors 'none'", response.Headers.GetValues("Content-Security-Policy").Single());
            Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
        }

        // The data behind the console still needs the token.
        using HttpResponseMessage stats = await anonymous.GetAsync("/stats");
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, stats.StatusCode);
        using HttpResponseMessage missing = await anonymous.GetAsync("/nothing-here.js");
        Assert.Equal(System.Net.HttpStatusCode.NotFound, missing.StatusCode);
    }
}

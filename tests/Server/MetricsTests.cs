using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using CowWasm.Server;
using CowWasm.Tests.Prolog;

namespace CowWasm.Tests.Server;

/// <summary>GET /metrics on a real Kestrel, scraped as a Prometheus server would: the names, and counters that move.</summary>
[Collection(TreallaCollection.Name)]
public sealed partial class MetricsTests(TreallaFixture trealla)
{
    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (?<value>\S+)", RegexOptions.Multiline)]
    private static partial Regex Sample();

    /// <summary>The sum of a metric's samples over all its label sets, or null when the scrape lacks it.</summary>
    private static double? Sum(string scrape, string name)
    {
        double? sum = null;
        foreach (Match m in Sample().Matches(scrape))
        {
            if (m.Groups["name"].Value == name)
            {
                sum = (sum ?? 0) + double.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture);
            }
        }

        return sum;
    }

    private static async Task<string> ScrapeAsync(HttpClient http)
    {
        using HttpResponseMessage response = await http.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        return await response.Content.ReadAsStringAsync();
    }

    [Fact]
    public async Task AScrape_CarriesThePoolsTheServicesAndAspNetCoresMetrics_AndTheCountersMove()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla, new ServerOptions { Port = 0, Replicas = 2 });
        await s.PostAsync("/consult", new { text = ":- dynamic(m/1)." });
        string before = await ScrapeAsync(s.Http);

        for (int i = 0; i < 5; i++)
        {
            await s.PostAsync("/assert", new { clause = $"m({i})" });
            await s.XsAsync("m(X)");
        }

        await s.PostAsync("/query", new { goal = "foo(" }); // a 400: counted as refused
        await s.PostAsync("/assert", new { clause = "atom_length(a, 1)" }); // a built-in cannot be changed: 422, rolled back
        // The exporter caches a scrape briefly (against scrape floods): scrape until the commits show.
        string after = await ScrapeAsync(s.Http);
        for (int i = 0; i < 50 && (Sum(after, "cowwasm_pool_commits_total") ?? 0) < (Sum(before, "cowwasm_pool_commits_total") ?? 0) + 5; i++)
        {
            await Task.Delay(100);
            after = await ScrapeAsync(s.Http);
        }

        foreach (string name in new[]
        {
            "cowwasm_pool_commits_total", "cowwasm_pool_reads_total", "cowwasm_pool_rollbacks_total",
            "cowwasm_pool_commit_unchanged_pages_total", "cowwasm_pool_reads_waiting", "cowwasm_pool_faulted",
            "cowwasm_server_requests_queued", "cowwasm_server_requests_refused_total",
        })
        {
            Assert.True(Sum(after, name) is not null, $"{name} is not in the scrape:\n{after}");
        }

        Assert.Contains("cowwasm_pool_commit_dirty_pages", after, StringComparison.Ordinal);
        Assert.Contains("cowwasm_pool_reset_pages", after, StringComparison.Ordinal);
        Assert.Contains("http_server_request_duration_seconds", after, StringComparison.Ordinal); // ASP.NET Core's own
        Assert.Contains("kestrel_", after, StringComparison.Ordinal);

        Assert.True(Sum(after, "cowwasm_pool_commits_total") - (Sum(before, "cowwasm_pool_commits_total") ?? 0) >= 5, after);
        Assert.True(Sum(after, "cowwasm_pool_reads_total") - (Sum(before, "cowwasm_pool_reads_total") ?? 0) >= 5, after);
        Assert.True(Sum(after, "cowwasm_server_requests_refused_total") >= 1, after);
        Assert.Equal(0, Sum(after, "cowwasm_pool_faulted"));
    }

    [Fact]
    public async Task AScrape_NeedsTheToken_UnlessReadsAreAnonymous()
    {
        await using (RunningServer s = await RunningServer.StartAsync(trealla, new ServerOptions { Port = 0, Replicas = 1 }))
        {
            using var bare = new HttpClient { BaseAddress = s.Server.HttpAddress };
            Assert.Equal(HttpStatusCode.Unauthorized, (await bare.GetAsync("/metrics")).StatusCode);
        }

        await using (RunningServer open = await RunningServer.StartAsync(trealla, new ServerOptions { Port = 0, Replicas = 1, AnonymousReads = true }))
        {
            using var bare = new HttpClient { BaseAddress = open.Server.HttpAddress };
            Assert.Equal(HttpStatusCode.OK, (await bare.GetAsync("/metrics")).StatusCode);
        }
    }
}

using CowWasm.Bench.Comparison;

namespace CowWasm.Bench.Tests;

/// <summary>The comparison's results table on a console narrower than it (piped output is 80 columns).</summary>
public sealed class FoldedTableTests
{
    [Fact]
    public void Folded_KeepsEveryLineWithinTheWidth_AndEveryValue()
    {
        Row[] rows =
        [
            new("commit", "SharedBase", "StoreBarrier", 256, 16, 4096, TimeSpan.FromMilliseconds(1.5), 123L << 20, 45L << 20, null, 366.2),
            new("commit", "FullCopy", "AllPages", 1024, 64, 1, null,
                Skipped: "FullCopy: 64 private replicas of 1024 MiB exceed the 8 GiB budget, which is more than this machine should give"),
        ];
        string[] lines = ComparisonRunner.Folded(rows, 80).ToArray();
        Assert.All(lines, l => Assert.True(l.Length <= 80, $"{l.Length}: {l}"));
        string text = System.Text.RegularExpressions.Regex.Replace(string.Join(" ", lines), @"\s+", " "); // folds join with spaces
        foreach (string expected in new[] { "SharedBase", "StoreBarrier", "256 MiB", "16 replicas", "4096 pages", "366.2 ns/page", "private 123.0 MiB",
            "Pss 45.0 MiB", "note: FullCopy", "should give" })
        {
            Assert.Contains(expected, text, StringComparison.Ordinal);
        }

        Assert.True(ComparisonRunner.WideTable > 80); // piped output (80 columns) is folded
    }

    [Fact]
    public void ProgressLines_OnOneLineWhenTheyFit_ElseFoldedWithinTheWidth_KeepingEveryPart()
    {
        string[] parts = ["  pool/per-read    tcp  writes   0 % clients  64:     7441 req/s", "p50    8.21 ms  p99   15.10 ms  p99.9   21.07 ms",
            "CPU/req service  208 µs client   24 µs  errors 0"];
        string wide = CowWasm.Bench.Reporting.TerminalText.Fold(200, parts);
        Assert.Single(wide.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries));
        string[] narrow = CowWasm.Bench.Reporting.TerminalText.Fold(80, parts).Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.True(narrow.Length > 1);
        Assert.All(narrow, l => Assert.True(l.Length <= 80, $"{l.Length}: {l}"));
        Assert.All(parts, p => Assert.Contains(p.Trim(), string.Join("  ", narrow.Select(l => l.Trim())), StringComparison.Ordinal));
    }
}

using System.Diagnostics;

namespace CowWasm.Tests.Pooling;

/// <summary>
/// The cowwasm command (System.CommandLine) in child processes: help for every verb, errors that name the bad argument,
/// and the documented exit codes (0 done, 1 failed, 2 bad usage).
/// </summary>
public sealed class CommandLineTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = AppContext.BaseDirectory };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "cowwasm.dll"));
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["COLUMNS"] = "200";
        using Process process = Process.Start(start)!;
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        string errors = process.StandardError.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(2)), "cowwasm did not finish");
        return (process.ExitCode, output.Result, errors);
    }

    [Fact]
    public void Help_ListsEveryVerb_AndEachVerbHasItsOwn()
    {
        (int code, string text, _) = Run("--help");
        Assert.Equal(0, code);
        string[] verbs = ["serve", "prolog", "call", "snapshot-info", "compile", "trealla-setup"];
        Assert.All(verbs, verb => Assert.Contains(verb, text, StringComparison.Ordinal));
        Assert.Contains("2 bad usage", text, StringComparison.Ordinal);
        foreach (string verb in verbs)
        {
            (int verbCode, string verbHelp, _) = Run(verb, "--help");
            Assert.Equal(0, verbCode);
            Assert.Contains($"cowwasm {verb}", verbHelp, StringComparison.Ordinal);
        }

        (_, string serve, _) = Run("serve", "--help");
        Assert.Contains("--max-memory-mb", serve, StringComparison.Ordinal);
        Assert.Contains("--durability <log|replicated|none>", serve, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "frobnicate" }, "frobnicate")]
    [InlineData(new[] { "serve", "--port", "http" }, "--port: \"http\"")]
    [InlineData(new[] { "serve", "--replicas", "0" }, "--replicas must be at least 1")]
    [InlineData(new[] { "serve", "--no-such-option", "1" }, "--no-such-option")]
    [InlineData(new[] { "prolog", "--runtime", "v8", "X = 1" }, "--runtime: \"v8\"")]
    [InlineData(new[] { "prolog" }, "at least one goal")]
    [InlineData(new[] { "call", "Guests/kv.wat", "get:five" }, "\"get:five\": \"five\" is not an integer")]
    [InlineData(new[] { "call", "no-such-module.wat", "get:1" }, "no-such-module.wat")]
    [InlineData(new[] { "snapshot-info" }, "FILE")]
    public void BadUsage_Exits2_NamingTheArgument(string[] args, string named)
    {
        (int code, string output, string errors) = Run(args);
        Assert.True(code == 2, $"exit {code}; stderr: {errors}");
        Assert.Contains(named, errors, StringComparison.Ordinal);
        Assert.Equal("", output);
    }

    [Fact]
    public void AFailure_Exits1_WithOneLineAndNoStackTrace()
    {
        string notASnapshot = Path.GetTempFileName();
        try
        {
            File.WriteAllText(notASnapshot, "not a snapshot");
            (int code, _, string errors) = Run("snapshot-info", notASnapshot);
            Assert.Equal(1, code);
            Assert.Contains("shorter than the", errors, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", errors, StringComparison.Ordinal);

            (code, _, errors) = Run("call", Path.Combine(AppContext.BaseDirectory, "Guests", "kv.wat"), "nosuchexport:1");
            Assert.Equal(1, code);
            Assert.Contains("exports no function \"nosuchexport\"", errors, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(notASnapshot);
        }
    }

    [Fact]
    public void Call_RunsExports_AndSaysSo()
    {
        (int code, string output, string errors) = Run("call", Path.Combine(AppContext.BaseDirectory, "Guests", "kv.wat"), "put:5,500", "get:5");
        Assert.True(code == 0, errors);
        Assert.Contains("get(5) = 500", output, StringComparison.Ordinal);
    }
}

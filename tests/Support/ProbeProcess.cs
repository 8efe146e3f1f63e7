using System.Diagnostics;

namespace CowWasm.Tests.Support;

/// <summary>
/// A tests/CrashProbe scenario running in a child process that talks in lines: the first line it prints must start
/// with <c>hello</c>; then the test writes lines to it and reads its answers. <see cref="Kill"/> is SIGKILL;
/// <see cref="Dispose"/> asks it to exit.
/// </summary>
internal sealed class ProbeProcess : IDisposable
{
    private readonly Process _process;

    public ProbeProcess(string hello, params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "CowWasm.CrashProbe.dll"));
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        _process = Process.Start(start)!;
        string? first = _process.StandardOutput.ReadLine();
        if (first?.StartsWith(hello, StringComparison.Ordinal) != true)
        {
            _process.WaitForExit(TimeSpan.FromSeconds(10));
            Assert.Fail($"The {arguments[0]} process did not start: {first} {_process.StandardError.ReadToEnd()}");
        }

        Hello = first;
    }

    /// <summary>The first line it printed.</summary>
    public string Hello { get; }

    public void WriteLine(string line)
    {
        _process.StandardInput.WriteLine(line);
        _process.StandardInput.Flush();
    }

    /// <summary>The next line that starts with <paramref name="prefix"/> (others are skipped).</summary>
    /// <exception cref="InvalidOperationException">The process ended first (its standard error is the message).</exception>
    public string ReadLine(string prefix = "")
    {
        while (_process.StandardOutput.ReadLine() is { } line)
        {
            if (line.StartsWith(prefix, StringComparison.Ordinal))
            {
                return line;
            }
        }

        throw new InvalidOperationException($"The process ended: {_process.StandardError.ReadToEnd()}");
    }

    /// <summary>SIGKILL: nothing runs in the child after this.</summary>
    public void Kill()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.StandardInput.WriteLine("exit");
            if (!_process.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                _process.Kill(entireProcessTree: true);
            }
        }

        _process.Dispose();
    }
}

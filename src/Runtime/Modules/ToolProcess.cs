using System.Diagnostics;

namespace CowWasm.Runtime;

/// <summary>Runs an external tool with its output captured and a heartbeat while it runs.</summary>
public static class ToolProcess
{
    /// <summary>Runs <paramref name="tool"/>; returns its exit code and stdout followed by stderr.</summary>
    /// <exception cref="ToolNotFoundException">The tool is not installed.</exception>
    public static async Task<(int Code, string Output)> RunAsync(string tool, string[] args, string directory,
        Action<TimeSpan>? heartbeat, CancellationToken cancellationToken, string? notFoundHint = null)
    {
        var start = new ProcessStartInfo(tool)
        {
            WorkingDirectory = directory,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new ToolNotFoundException($"Could not start {tool}.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new ToolNotFoundException($"{tool} was not found ({e.Message}).{(notFoundHint is null ? "" : " " + notFoundHint)}");
        }

        using (process)
        {
            Task<string> stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            Task<string> stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var clock = Stopwatch.StartNew();
            try
            {
                Task exited = process.WaitForExitAsync(cancellationToken);
                while (await Task.WhenAny(exited, Task.Delay(TimeSpan.FromSeconds(15), cancellationToken)).ConfigureAwait(false) != exited)
                {
                    heartbeat?.Invoke(clock.Elapsed);
                }

                await exited.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw;
            }

            return (process.ExitCode, (await stdout.ConfigureAwait(false)) + (await stderr.ConfigureAwait(false)));
        }
    }

}

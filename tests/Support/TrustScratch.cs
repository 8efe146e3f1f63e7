using System.Diagnostics;

namespace CowWasm.Tests.Support;

/// <summary>
/// A temporary cache directory for trust tests, which chmod and chown what is in it: disposal gives everything back to
/// this user before deleting it. <see cref="Run"/> runs a tool and requires success; <see cref="Mode"/> is a path's mode
/// in octal.
/// </summary>
internal sealed class TrustScratch : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("cowwasm-trust-test-").FullName;

    public void Dispose()
    {
        Run("chmod", "-R", "u+rwx", Path);
        if (Environment.UserName == "root")
        {
            Run("chown", "-R", "0", Path);
        }

        Directory.Delete(Path, recursive: true);
    }

    public static void Run(string tool, params string[] args)
    {
        using Process process = Process.Start(new ProcessStartInfo(tool, args) { UseShellExecute = false })!;
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
    }

    public static string Mode(string path) =>
        OperatingSystem.IsLinux() ? Convert.ToString((int)File.GetUnixFileMode(path), 8) : throw new PlatformNotSupportedException();
}

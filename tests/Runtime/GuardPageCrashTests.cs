using CowWasm.Runtime.Native;
using System.Diagnostics;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Runtime;

/// <summary>
/// With the guard-page handler installed, a native fault that is not a guest's still crashes the process the way the
/// .NET runtime reports it — outside guest calls and inside a host function a guest called. Child processes
/// (tests/CrashProbe).
/// </summary>
public sealed class GuardPageCrashTests
{
    private static (int ExitCode, string Stdout, string Stderr) Probe(string scenario)
    {
        string probe = Path.Combine(AppContext.BaseDirectory, "CowWasm.CrashProbe.dll");
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in new[] { probe, scenario, Path.Combine(AppContext.BaseDirectory, "Guests", "bounds.wat"), TestModules.Cache.CacheDirectory! })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["DOTNET_DbgEnableMiniDump"] = "0"; // no core files from the crashes we cause
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"The probe ({scenario}) did not finish.");
        }

        return (process.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
    }

    [Fact]
    public void AGuestWithA320KBFrame_RecursingPastTheStack_TrapsWithStackExhaustion_OnBigAndSmallStacks()
    {
        (int code, string stdout, string stderr) = Probe("big-frames");
        Assert.True(code == 0, $"exit {code}: {stdout} {stderr}");
        Assert.Contains("default thread: StackExhaustion", stdout);
        Assert.Contains("256 KiB thread: StackExhaustion", stdout);
        Assert.Contains("default thread again: StackExhaustion", stdout);
    }

    [Fact]
    public void ACacheHitWithoutFileDescriptors_FailsWithEmfile_AndTheEntrySurvives()
    {
        (int code, string stdout, string stderr) = Probe("emfile");
        Assert.True(code == 0, $"exit {code}: {stdout} {stderr}");
        Assert.Contains("0 free: load failed: ", stdout);
        Assert.Contains("Too many open files", stdout);
        Assert.Contains("1 free: load succeeded", stdout);
        Assert.DoesNotContain("entry deleted", stdout);
        Assert.Contains("from cache afterwards: True", stdout);
    }

    [Fact]
    public void AGuestFunctionWithAFrameOverTheLimit_IsRefusedAtBuildTime()
    {
        string wat = CowWasm.CrashProbe.Probe.BigFrameWat(70_000); // 560 KB > 512 KiB
        var e = Assert.Throws<CowWasm.Runtime.Native.ArtifactCompilationException>(() =>
            CowWasm.Runtime.Native.ArtifactCompiler.Compile(TestModules.Assemble(wat), TestModules.Cache with { OptimizationFlag = "-O0" }));
        Assert.Contains("w2c_big needs a 560", e.Message);
        Assert.Contains("refuses frames over 524,288 bytes", e.Message);
    }

    [Fact]
    public void ANativeFault_CrashesTheProcessAsWithoutTheHandler_OutsideGuestCallsAndInsideHostFunctions()
    {
        (int controlCode, string controlOut, _) = Probe("control");
        Assert.Contains("before native fault", controlOut);
        Assert.NotEqual(0, controlCode);

        (int normalCode, string normalOut, string normalErr) = Probe("guest-trap");
        Assert.True(normalCode == 0, $"exit {normalCode}: {normalOut} {normalErr}");
        Assert.Contains("guest fault trapped", normalOut);
        Assert.Contains("null reference caught", normalOut);
        Assert.Contains("survived", normalOut);

        foreach (string scenario in new[] { "outside-guest", "in-host-call" })
        {
            (int code, string stdout, string stderr) = Probe(scenario);
            Assert.Contains("guest fault trapped", stdout);
            Assert.Contains("null reference caught", stdout);
            Assert.Contains("before native fault", stdout);
            Assert.DoesNotContain("survived", stdout);
            Assert.True(code == controlCode, $"{scenario}: exit {code}, the control crashed with {controlCode}; stderr: {stderr}");
        }
    }

    [Fact]
    public void BothBackendsInOneProcess_TrapGuestFaults_LetNullReferencesThrough_AndANativeFaultStillCrashes()
    {
        (int controlCode, _, _) = Probe("control");
        (int code, string stdout, string stderr) = Probe("mixed-traps");
        Assert.True(code == 0, $"exit {code}: {stdout} {stderr}");
        Assert.Contains("mixed traps and null references on 4 threads", stdout);
        Assert.Contains("survived", stdout);

        foreach (string scenario in new[] { "mixed-outside", "mixed-in-wasmtime-host-call" })
        {
            (code, stdout, stderr) = Probe(scenario);
            Assert.Contains("mixed traps and null references on 4 threads", stdout);
            Assert.Contains("before native fault", stdout);
            Assert.DoesNotContain("survived", stdout);
            Assert.True(code == controlCode, $"{scenario}: exit {code}, the control crashed with {controlCode}; stderr: {stderr}");
        }
    }
}

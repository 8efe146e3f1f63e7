using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Runtime.Wasmtime;

namespace CowWasm.CrashProbe;

public static partial class Probe
{
    /// <summary>The mixed-* scenarios (see Program.cs): both backends' fault handlers and .NET's in one process.</summary>
    public static int Mixed(string scenario, string boundsWat, string cacheDir)
    {
        byte[] wasm = WatAssembler.Assemble(File.ReadAllText(boundsWat));
        using WasmModule native = WasmModule.Load(wasm, new ArtifactOptions { CacheDirectory = cacheDir, BoundsChecks = BoundsChecks.GuardPages });
        using WasmtimeModule wasmtime = WasmtimeModule.Load(wasm, new WasmtimeOptions { CacheDirectory = cacheDir });
        Linker linker = new Linker()
            .Define("env", "reenter", [], [WasmValueKind.I32], (caller, a, r) => r[0] = 0)
            .Define("env", "native_fault", [], [], (caller, a, r) => NativeFault());
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        Thread[] threads = [.. Enumerable.Range(0, 4).Select(t => new Thread(() =>
        {
            try
            {
                using IGuestInstance a = native.Instantiate(linker);
                using IGuestInstance b = wasmtime.Instantiate(linker);
                var result = new ulong[1];
                for (int round = 0; round < 300; round++)
                {
                    foreach (IGuestInstance guest in new[] { a, b })
                    {
                        try
                        {
                            guest.GetFunction("load8").Invoke([65536u + (uint)round], result);
                            failures.Enqueue($"thread {t}: no trap");
                        }
                        catch (WasmTrapException trap) when (trap.Kind == TrapKind.OutOfBounds)
                        {
                        }
                    }

                    try
                    {
                        string? nothing = round < 0 ? "never" : null;
                        failures.Enqueue($"length {nothing!.Length}");
                    }
                    catch (NullReferenceException)
                    {
                    }
                }
            }
            catch (Exception e)
            {
                failures.Enqueue($"thread {t}: {e}");
            }
        }))];
        foreach (Thread thread in threads)
        {
            thread.Start();
        }

        foreach (Thread thread in threads)
        {
            thread.Join();
        }

        if (!failures.IsEmpty)
        {
            Console.Error.WriteLine(string.Join("\n", failures.Take(5)));
            return 5;
        }

        Say($"mixed traps and null references on 4 threads (native handler claimed {GuardPages.ClaimedFaults})");
        using IGuestInstance host = wasmtime.Instantiate(linker);
        switch (scenario)
        {
            case "mixed-traps":
                break;
            case "mixed-outside":
                Say("before native fault");
                NativeFault();
                break;
            case "mixed-in-wasmtime-host-call":
                Say("before native fault");
                host.GetFunction("call_native_fault").Invoke([], []);
                break;
            default:
                Console.Error.WriteLine($"unknown scenario {scenario}");
                return 2;
        }

        Say("survived");
        return 0;
    }
}

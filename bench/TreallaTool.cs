using System.Diagnostics;
using CowWasm.Pool.Prolog;
using CowWasm.Pool.Wasm;

namespace CowWasm.Bench;

/// <summary>
/// <c>trealla-setup</c>: fetch, verify and compile the Trealla guest (cached), with progress.
/// <c>prolog [--consult TEXT] GOAL…</c>: run goals on a plain instance and print every answer with its latency.
/// </summary>
internal static class TreallaTool
{
    public static async Task<int> SetupAsync()
    {
        var clock = Stopwatch.StartNew();
        using WasmModule module = await TreallaGuest.LoadAsync(new ConsoleProgress()).ConfigureAwait(false);
        Console.WriteLine($"trealla ready in {clock.Elapsed.TotalSeconds:F1} s: {module.Artifact.LibraryPath} " +
                          $"({module.Artifact.LibraryBytes:N0} B, {(module.Artifact.FromCache ? "cached" : $"compiled in {module.Artifact.CompileTime.TotalSeconds:F0} s")})");
        return 0;
    }

    public static async Task<int> QueryAsync(string[] args)
    {
        using WasmModule module = await TreallaGuest.LoadAsync(new ConsoleProgress()).ConfigureAwait(false);
        using WasmInstance guest = module.Instantiate(TreallaGuest.CreateLinker(module.Info), TreallaGuest.DefaultInstanceOptions);
        PrologInterpreter prolog = PrologInterpreter.Initialize(guest);
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--consult" && i + 1 < args.Length)
            {
                prolog.Consult(args[++i]);
                Console.WriteLine($"consulted {args[i]}");
                continue;
            }

            var clock = Stopwatch.StartNew();
            foreach (PrologAnswer answer in prolog.Query(args[i]))
            {
                Console.WriteLine($"{args[i]} -> {answer} [{answer.Kind}] output='{answer.Output}' ({clock.Elapsed.TotalMicroseconds:F0} us)");
                clock.Restart();
            }
        }

        return 0;
    }

    private sealed class ConsoleProgress : IProgress<string>
    {
        public void Report(string value) => Console.Error.WriteLine($"[trealla] {value}");
    }
}

using System.Diagnostics;
using CowWasm.Prolog;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Cli;

/// <summary>
/// <c>trealla-setup [variant flags]</c>: fetch, verify and compile the Trealla guest (cached), with progress; the flags
/// (<see cref="ArtifactFlags"/>) build the variants benchmarks compare against.
/// <c>prolog [--runtime wasmtime|native] [--snapshot FILE] [--consult TEXT]... GOAL...</c>: every answer of each goal, one line per goal
/// (<c>GOAL -> A1 ; A2</c>), on a plain instance or on a pool started from a snapshot.
/// </summary>
internal static class PrologCommands
{
    public static async Task<int> SetupAsync(string[] args)
    {
        (ArtifactOptions options, string[] rest) = ArtifactFlags.Parse(args);
        if (rest.Length != 0)
        {
            return Usage.Error($"trealla-setup takes only {ArtifactFlags.Help}.");
        }

        var clock = Stopwatch.StartNew();
        using WasmModule module = await TreallaGuest.LoadAsync(options, new ConsoleProgress()).ConfigureAwait(false);
        Artifact artifact = module.Artifact!; // loaded through the compiler, so it has one
        Console.WriteLine($"trealla ready in {clock.Elapsed.TotalSeconds:F1} s: {artifact.LibraryPath} " +
                          $"({artifact.LibraryBytes:N0} B, {(artifact.FromCache ? "cached" : $"compiled in {artifact.CompileTime.TotalSeconds:F0} s")})");
        return 0;
    }

    public static async Task<int> QueryAsync(string[] args)
    {
        GuestRuntime runtime;
        try
        {
            (runtime, args) = RuntimeFlag.Parse(args);
        }
        catch (ArgumentException e)
        {
            return Usage.Error(e.Message);
        }

        string? snapshot = null;
        var consults = new List<string>();
        var goals = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--snapshot" when i + 1 < args.Length:
                    snapshot = args[++i];
                    break;
                case "--consult" when i + 1 < args.Length:
                    consults.Add(args[++i]);
                    break;
                default:
                    goals.Add(args[i]);
                    break;
            }
        }

        if (goals.Count == 0 && consults.Count == 0)
        {
            return Usage.Error("prolog takes at least one goal.");
        }

        using IGuestModule module = await TreallaGuest.LoadAsync(runtime, new ConsoleProgress()).ConfigureAwait(false);
        await using PrologPool pool = snapshot is null
            ? PrologPool.Create(module, PrologPool.DefaultOptions with { ReplicaCount = 1 })
            : PrologPool.CreateFromSnapshot(module, snapshot, PrologPool.DefaultOptions with { ReplicaCount = 1 });
        foreach (string text in consults)
        {
            await pool.ConsultAsync(text).ConfigureAwait(false);
        }

        foreach (string goal in goals)
        {
            IReadOnlyList<PrologAnswer> answers = await pool.QueryAllAsync(goal).ConfigureAwait(false);
            Console.WriteLine($"{goal} -> {string.Join(" ; ", answers)}");
        }

        return 0;
    }

    private sealed class ConsoleProgress : IProgress<string>
    {
        public void Report(string value) => Console.Error.WriteLine($"[trealla] {value}");
    }
}

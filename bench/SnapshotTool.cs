using CowWasm.Pool.Pooling;
using CowWasm.Pool.Prolog;
using CowWasm.Pool.Wasm;

namespace CowWasm.Bench;

/// <summary>
/// Loading snapshots in a fresh process (the tests run these to check that a snapshot carries state across processes):
/// <list type="bullet">
/// <item><c>snapshot-get WAT SNAPSHOT KEY…</c>: a pool of the key-value test guest (tests/Guests/kv.wat) from the
/// snapshot; prints <c>KEY=VALUE</c> per key (the guest's <c>get</c>) and <c>sp=…</c> (its global), read on replicas.</item>
/// <item><c>prolog-snapshot SNAPSHOT GOAL…</c>: a Trealla pool from the snapshot; prints one answer line per goal.</item>
/// </list>
/// </summary>
internal static class SnapshotTool
{
    public static int Get(string[] args)
    {
        if (args.Length < 2)
        {
            Console.Error.WriteLine("Usage: snapshot-get WAT SNAPSHOT KEY...");
            return 2;
        }

        using WasmModule module = BenchGuests.Load(File.ReadAllText(args[0]));
        Linker linker = new Linker().Define("env", "fail", [], [], (_, _, _) => throw new InvalidOperationException("the host refused"));
        using GuestPool pool = GuestPool.CreateFromSnapshot(module, linker, args[1], new PoolOptions { ReplicaCount = 2 });
        foreach (string key in args[2..])
        {
            long value = pool.Read(g => g.GetFunction<int, long>("get")(int.Parse(key, System.Globalization.CultureInfo.InvariantCulture)));
            Console.WriteLine($"{key}={value}");
        }

        Console.WriteLine($"sp={pool.Read(g => g.GetFunction<int>("sp")())}");
        return 0;
    }

    public static async Task<int> PrologAsync(string[] args)
    {
        if (args.Length < 1)
        {
            Console.Error.WriteLine("Usage: prolog-snapshot SNAPSHOT GOAL...");
            return 2;
        }

        using WasmModule module = await TreallaGuest.LoadAsync().ConfigureAwait(false);
        using PrologPool pool = PrologPool.CreateFromSnapshot(module, args[0]);
        foreach (string goal in args[1..])
        {
            IReadOnlyList<PrologAnswer> answers = await pool.QueryAllAsync(goal).ConfigureAwait(false);
            Console.WriteLine($"{goal} -> {string.Join(" ; ", answers)}");
        }

        return 0;
    }
}

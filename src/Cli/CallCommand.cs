using System.Globalization;
using CowWasm.Pool;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Runtime.Wasi;

namespace CowWasm.Cli;

/// <summary>
/// <c>call MODULE [--runtime wasmtime|native] [--snapshot FILE] EXPORT[:ARG,ARG...]...</c>: calls integer exports and prints
/// <c>EXPORT(ARGS) = RESULT</c> per call. With a snapshot the calls are reads on a one-replica pool started from it
/// (so each sees the committed state); without, they run one after another on a plain instance.
/// </summary>
internal static class CallCommand
{
    public static int Run(string[] args)
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

        if (args.Length < 2)
        {
            return Usage.Error("call takes a module and at least one EXPORT[:ARGS].");
        }

        string? snapshot = null;
        var calls = new List<(string Export, ulong[] Args)>();
        for (int i = 1; i < args.Length; i++)
        {
            if (args[i] == "--snapshot" && i + 1 < args.Length)
            {
                snapshot = args[++i];
                continue;
            }

            string[] parts = args[i].Split(':', 2);
            ulong[] values = parts.Length == 1 || parts[1].Length == 0
                ? []
                : [.. parts[1].Split(',').Select(a => unchecked((ulong)long.Parse(a, CultureInfo.InvariantCulture)))];
            calls.Add((parts[0], values));
        }

        using IGuestModule module = RuntimeFlag.Load(WatAssembler.ReadModule(args[0]), runtime);
        Linker linker = Linkers.WasiWith(module.Info, Linkers.Trap);
        var options = new InstanceOptions { Wasi = new WasiConfiguration() };
        if (snapshot is null)
        {
            using IGuestInstance instance = module.Instantiate(linker, options);
            foreach ((string export, ulong[] values) in calls)
            {
                Console.WriteLine(Call(instance, export, values));
            }

            return 0;
        }

        using GuestPool pool = GuestPool.CreateFromSnapshot(module, linker, snapshot, new PoolOptions { ReplicaCount = 1, Instance = options });
        foreach ((string export, ulong[] values) in calls)
        {
            Console.WriteLine(pool.Read(g => Call(g, export, values)));
        }

        return 0;
    }

    private static string Call(IGuestInstance instance, string export, ulong[] args)
    {
        IGuestFunction function = instance.GetFunction(export);
        var results = new ulong[function.Type.Results.Count];
        function.Invoke(args, results);
        string shown = string.Join(", ", results.Select((r, i) => Format(r, function.Type.Results[i])));
        return $"{export}({string.Join(", ", args.Select((a, i) => Format(a, function.Type.Parameters[i])))}) = {shown}";
    }

    private static string Format(ulong slot, WasmValueKind kind) => kind switch
    {
        WasmValueKind.I32 => ((int)(uint)slot).ToString(CultureInfo.InvariantCulture),
        WasmValueKind.I64 => ((long)slot).ToString(CultureInfo.InvariantCulture),
        WasmValueKind.F32 => BitConverter.Int32BitsToSingle((int)(uint)slot).ToString(CultureInfo.InvariantCulture),
        WasmValueKind.F64 => BitConverter.Int64BitsToDouble((long)slot).ToString(CultureInfo.InvariantCulture),
        _ => $"0x{slot:x}",
    };
}

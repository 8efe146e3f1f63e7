using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using CowWasm.Pool;
using CowWasm.Runtime;
using CowWasm.Runtime.Wasi;

namespace CowWasm.Cli;

/// <summary>
/// <c>call MODULE [--runtime wasmtime|native] [--snapshot FILE] EXPORT[:ARG,ARG...]...</c>: calls integer exports and prints
/// <c>EXPORT(ARGS) = RESULT</c> per call. With a snapshot the calls are reads on a one-replica pool started from it
/// (so each sees the committed state); without, they run one after another on a plain instance.
/// </summary>
internal static class CallCommand
{
    private sealed record Call(string Export, ulong[] Args);

    public static Command Create()
    {
        var module = new Argument<FileInfo>("MODULE") { Description = "a .wasm or .wat file" };
        module.AcceptExistingOnly();
        var calls = new Argument<Call[]>("EXPORT[:ARG,ARG...]")
        {
            Description = "an export to call and its integer arguments, e.g. get:5 or put:5,500",
            Arity = ArgumentArity.OneOrMore,
            CustomParser = ParseCalls,
        };
        Option<GuestRuntime> runtime = RuntimeFlag.Create();
        var snapshot = new Option<FileInfo>("--snapshot")
        {
            Description = "run each call as a read on a one-replica pool started from this snapshot",
            HelpName = "FILE",
        };
        snapshot.AcceptExistingOnly();
        var command = new Command("call",
            "Call a module's integer exports and print EXPORT(ARGS) = RESULT per call: on a plain instance, or on a pool's replica " +
            "started from a snapshot. Imports other than WASI trap when called.")
        {
            module, calls, runtime, snapshot,
        };
        command.SetAction(parsed => Run(parsed.GetRequiredValue(module).FullName, parsed.GetRequiredValue(calls),
            parsed.GetValue(runtime), parsed.GetValue(snapshot)?.FullName));
        return command;
    }

    private static Call[] ParseCalls(ArgumentResult result)
    {
        var calls = new List<Call>();
        foreach (Token token in result.Tokens)
        {
            string[] parts = token.Value.Split(':', 2);
            var values = new List<ulong>();
            foreach (string arg in parts.Length == 1 || parts[1].Length == 0 ? [] : parts[1].Split(','))
            {
                if (!long.TryParse(arg, NumberStyles.Integer, CultureInfo.InvariantCulture, out long value))
                {
                    result.AddError($"\"{token.Value}\": \"{arg}\" is not an integer argument.");
                    return [];
                }

                values.Add(unchecked((ulong)value));
            }

            if (parts[0].Length == 0)
            {
                result.AddError($"\"{token.Value}\" names no export.");
                return [];
            }

            calls.Add(new Call(parts[0], [.. values]));
        }

        return [.. calls];
    }

    private static int Run(string path, Call[] calls, GuestRuntime runtime, string? snapshot)
    {
        using IGuestModule module = RuntimeFlag.Load(WatAssembler.ReadModule(path), runtime);
        foreach (Call call in calls)
        {
            // Checked before anything runs, so a typo does not leave half the calls done.
            WasmFunctionType type = module.Info.Exports.FirstOrDefault(e => e.Name == call.Export && e.Kind == WasmExternKind.Function)?.FunctionType
                ?? throw new ArgumentException($"{Path.GetFileName(path)} exports no function \"{call.Export}\".");
            if (type.Parameters.Count != call.Args.Length)
            {
                throw new ArgumentException($"{call.Export} takes {type.Parameters.Count} arguments; {call.Args.Length} given.");
            }
        }

        Linker linker = Linkers.WasiWith(module.Info, Linkers.Trap);
        var options = new InstanceOptions { Wasi = new WasiConfiguration() };
        if (snapshot is null)
        {
            using IGuestInstance instance = module.Instantiate(linker, options);
            foreach (Call call in calls)
            {
                Console.WriteLine(Invoke(instance, call));
            }

            return 0;
        }

        using GuestPool pool = GuestPool.CreateFromSnapshot(module, linker, snapshot, new PoolOptions { ReplicaCount = 1, Instance = options });
        foreach (Call call in calls)
        {
            Console.WriteLine(pool.Read(g => Invoke(g, call)));
        }

        return 0;
    }

    private static string Invoke(IGuestInstance instance, Call call)
    {
        IGuestFunction function = instance.GetFunction(call.Export);
        var results = new ulong[function.Type.Results.Count];
        function.Invoke(call.Args, results);
        string shown = string.Join(", ", results.Select((r, i) => Format(r, function.Type.Results[i])));
        return $"{call.Export}({string.Join(", ", call.Args.Select((a, i) => Format(a, function.Type.Parameters[i])))}) = {shown}";
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

namespace CowWasm.Runtime;

/// <summary>The host functions offered to modules, by module and field name. Thread-safe for reading once built.</summary>
public sealed class Linker
{
    private readonly Dictionary<(string Module, string Name), (WasmFunctionType Type, HostFunction Function)> _functions = [];

    /// <summary>Defines (or replaces) <paramref name="module"/>.<paramref name="name"/>.</summary>
    public Linker Define(string module, string name, WasmFunctionType type, HostFunction function)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(type);
        ArgumentNullException.ThrowIfNull(function);
        _functions[(module, name)] = (type, function);
        return this;
    }

    /// <summary>Defines a function from a signature written as value kinds.</summary>
    public Linker Define(string module, string name, WasmValueKind[] parameters, WasmValueKind[] results, HostFunction function) =>
        Define(module, name, new WasmFunctionType(parameters, results), function);

    /// <summary>Whether a function is defined.</summary>
    public bool IsDefined(string module, string name) => _functions.ContainsKey((module, name));

    /// <summary>Resolves every function import of <paramref name="info"/>, in import order.</summary>
    /// <exception cref="WasmLinkException">Some imports are missing or mistyped; the message names each.</exception>
    internal (HostFunction Function, WasmFunctionType Type)[] Resolve(WasmModuleInfo info)
    {
        var problems = new List<string>();
        var resolved = new List<(HostFunction, WasmFunctionType)>();
        foreach (WasmImport import in info.Imports.Where(i => i.Kind == WasmExternKind.Function))
        {
            if (!_functions.TryGetValue((import.Module, import.Name), out var entry))
            {
                problems.Add($"missing import {import.Module}.{import.Name} {import.FunctionType}");
                continue;
            }

            if (!entry.Type.Parameters.SequenceEqual(import.FunctionType!.Parameters) ||
                !entry.Type.Results.SequenceEqual(import.FunctionType.Results))
            {
                problems.Add($"import {import.Module}.{import.Name} expects {import.FunctionType} but the host defines {entry.Type}");
                continue;
            }

            resolved.Add((entry.Function, entry.Type));
        }

        if (problems.Count > 0)
        {
            throw new WasmLinkException($"Cannot instantiate: {problems.Count} import problem(s):\n  " + string.Join("\n  ", problems));
        }

        return [.. resolved];
    }
}

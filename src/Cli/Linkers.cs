using CowWasm.Runtime;
using CowWasm.Runtime.Wasi;

namespace CowWasm.Cli;

/// <summary>Linkers for modules the command knows nothing about.</summary>
internal static class Linkers
{
    /// <summary>WASI preview1, and <paramref name="other"/>'s function for every other function import.</summary>
    public static Linker WasiWith(WasmModuleInfo info, Func<WasmImport, HostFunction> other)
    {
        Linker linker = WasiPreview1.AddTo(new Linker(), info);
        foreach (WasmImport import in info.Imports.Where(i => i.Kind == WasmExternKind.Function && !linker.IsDefined(i.Module, i.Name)))
        {
            linker.Define(import.Module, import.Name, import.FunctionType!, other(import));
        }

        return linker;
    }

    /// <summary>A host function that traps, naming the import (for modules whose imports the command cannot provide).</summary>
    public static HostFunction Trap(WasmImport import) =>
        (_, _, _) => throw new InvalidOperationException($"cowwasm provides no import {import.Module}.{import.Name}.");
}

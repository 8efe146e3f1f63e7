namespace CowWasm.Runtime;

/// <summary>What an import or export refers to.</summary>
public enum WasmExternKind : byte
{
    /// <summary>A function.</summary>
    Function = 0,

    /// <summary>A table.</summary>
    Table = 1,

    /// <summary>A linear memory.</summary>
    Memory = 2,

    /// <summary>A global.</summary>
    Global = 3,
}

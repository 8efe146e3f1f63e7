namespace CowWasm.Runtime;

/// <summary>A WebAssembly value type.</summary>
public enum WasmValueKind : byte
{
    /// <summary>32-bit integer.</summary>
    I32 = 0x7F,

    /// <summary>64-bit integer.</summary>
    I64 = 0x7E,

    /// <summary>32-bit float.</summary>
    F32 = 0x7D,

    /// <summary>64-bit float.</summary>
    F64 = 0x7C,

    /// <summary>128-bit vector (not supported by the artifact ABI).</summary>
    V128 = 0x7B,

    /// <summary>Function reference.</summary>
    FuncRef = 0x70,

    /// <summary>External reference.</summary>
    ExternRef = 0x6F,
}

namespace CowWasm.Runtime;

/// <summary>Which backend compiles and runs a guest module. Both meet <see cref="IGuestModule"/> and <see cref="IGuestInstance"/>.</summary>
public enum GuestRuntime
{
    /// <summary>
    /// Wasmtime (Cranelift, through wasmtime-dotnet; the <c>CowWasm.Runtime.Wasmtime</c> project): compiles a module in
    /// seconds, the store barrier carried into its code by rewriting the module.
    /// </summary>
    Wasmtime,

    /// <summary>Our own runtime: wasm2c + gcc, one shared object per module (minutes to build a large guest).</summary>
    Native,
}

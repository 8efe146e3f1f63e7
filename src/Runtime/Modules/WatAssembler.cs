namespace CowWasm.Runtime;

/// <summary>Assembles the WebAssembly text format with <c>wat2wasm</c> (Debian's wabt, which the scripts install).</summary>
public static class WatAssembler
{
    /// <summary>Returns the binary module for <paramref name="wat"/>.</summary>
    /// <exception cref="WasmFormatException">wat2wasm rejected the text (its message is included).</exception>
    /// <exception cref="ToolNotFoundException">wat2wasm is not installed.</exception>
    public static byte[] Assemble(string wat)
    {
        ArgumentNullException.ThrowIfNull(wat);
        string dir = Directory.CreateTempSubdirectory("cowwasm-wat-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "m.wat"), wat);
            (int code, string output) = ToolProcess.RunAsync("wat2wasm", ["m.wat", "-o", "m.wasm"], dir, null, CancellationToken.None,
                "Install the Debian package wabt: apt-get install -y wabt.").GetAwaiter().GetResult();
            return code == 0
                ? File.ReadAllBytes(Path.Combine(dir, "m.wasm"))
                : throw new WasmFormatException($"wat2wasm rejected the text: {output.Trim()}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The module in <paramref name="path"/>: assembled if its name ends in <c>.wat</c>, read as binary otherwise.</summary>
    public static byte[] ReadModule(string path) =>
        path.EndsWith(".wat", StringComparison.OrdinalIgnoreCase) ? Assemble(File.ReadAllText(path)) : File.ReadAllBytes(path);
}

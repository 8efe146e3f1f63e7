using System.CommandLine;
using System.Diagnostics;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Runtime.Wasi;

namespace CowWasm.Cli;

/// <summary>
/// <c>compile MODULE [variant flags]</c> (<see cref="ArtifactFlags"/>): compiles (or finds cached) an artifact with progress, prints compile time and size, loads it
/// and instantiates it once with WASI and answer-0 stubs for any other imports.
/// </summary>
internal static class CompileCommand
{
    public static Command Create()
    {
        var module = new Argument<FileInfo>("MODULE") { Description = "a .wasm or .wat file" };
        module.AcceptExistingOnly();
        var flags = new ArtifactFlags();
        var command = new Command("compile",
            "Compile a module's native artifact ahead of time (or find it cached), load it and instantiate it once; prints where it is and the costs.")
        {
            module,
        };
        flags.AddTo(command);
        command.SetAction(parsed => Run(parsed.GetRequiredValue(module).FullName, flags.Read(parsed)));
        return command;
    }

    private static int Run(string path, ArtifactOptions options)
    {
        byte[] wasm = WatAssembler.ReadModule(path);
        WasmModuleInfo info = WasmBinaryReader.Read(wasm);
        Console.WriteLine($"{path}: {wasm.Length:N0} bytes, {info.Imports.Count} imports, {info.Exports.Count} exports, " +
                          $"memory {info.Memory?.Minimum} pages min / {info.Memory?.Maximum?.ToString() ?? "no"} max");
        var progress = new Progress<ArtifactProgress>(p => Console.WriteLine($"  [{p.Elapsed:mm\\:ss}] {p.Stage}: {p.Message}"));
        Artifact artifact = ArtifactCompiler.Compile(wasm, options, progress);
        Console.WriteLine($"artifact {artifact.LibraryPath}");
        Console.WriteLine($"  from cache: {artifact.FromCache}; compile time {artifact.CompileTime.TotalSeconds:F1} s; " +
                          $"size {artifact.LibraryBytes:N0} bytes");

        var clock = Stopwatch.StartNew();
        using WasmModule loaded = WasmModule.Open(artifact);
        TimeSpan open = clock.Elapsed;
        Linker linker = Linkers.WasiWith(info, _ => (caller, a, r) => r.Clear()); // answer 0
        clock.Restart();
        using WasmInstance instance = loaded.Instantiate(linker, new InstanceOptions { Wasi = new WasiConfiguration() });
        TimeSpan instantiate = clock.Elapsed;
        Console.WriteLine($"  dlopen+metadata {open.TotalMilliseconds:F2} ms; instantiate {instantiate.TotalMilliseconds:F2} ms; " +
                          $"memory {instance.MemorySize:N0} bytes");
        return 0;
    }
}

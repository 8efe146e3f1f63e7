using System.Security.Cryptography;
using System.Text;
using BenchmarkDotNet.Attributes;
using CowWasm.Prolog;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Bench;

/// <summary>
/// Where a loaded module's metadata (exports and signatures, imports, limits, globals, module hash) comes from.
/// <list type="bullet">
/// <item><see cref="RederiveFromWasm"/> (baseline): parse the wasm, already in memory, and hash it: what loading
/// cost before artifacts carried their metadata, on top of dlopen.</item>
/// <item><see cref="DecodeMappedBlock"/>: the artifact's metadata block, checked and read where dlopen mapped it.</item>
/// <item><see cref="OpenArtifact"/>: the whole open, <c>dlopen</c> + metadata + <c>cw_init_module</c>, then
/// <c>dlclose</c> (nothing else holds the library, so every iteration maps and relocates it afresh).</item>
/// <item><see cref="LoadThroughCache"/>: <c>WasmModule.Load(wasm)</c> on a cache hit: the cache key (SHA-256 of
/// the wasm), the manifest check (SHA-256 of the whole shared object), then <see cref="OpenArtifact"/>.</item>
/// </list>
/// Guests: a small generated module (24 exports, 4 imports) and Trealla (2.6 MB of wasm, 5.4 MB artifact).
/// The files are in the page cache.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ShortConfig))]
[BenchmarkCategory("artifact")]
public class ArtifactOpenBenchmarks
{
    private byte[] _wasm = null!;
    private string _library = null!;
    private WasmModule? _held;

    [Params("small", "trealla")]
    public string Guest { get; set; } = "small";

    [GlobalSetup(Targets = [nameof(RederiveFromWasm), nameof(HashWasmOnly), nameof(OpenArtifact), nameof(LoadThroughCache)])]
    public void Setup()
    {
        _wasm = Guest == "trealla"
            ? File.ReadAllBytes(TreallaPackage.FetchAsync().GetAwaiter().GetResult())
            : BenchGuests.Assemble(SmallModule());
        _library = ArtifactCompiler.Compile(_wasm).LibraryPath;
    }

    [GlobalSetup(Target = nameof(DecodeMappedBlock))]
    public void SetupMapped()
    {
        Setup();
        _held = WasmModule.Open(_library);
    }

    [Benchmark(Baseline = true)]
    public WasmModuleInfo RederiveFromWasm() => WasmBinaryReader.Read(_wasm);

    /// <summary>The part of <see cref="RederiveFromWasm"/> that is the module hash (SHA-256 of the wasm).</summary>
    [Benchmark]
    public byte[] HashWasmOnly() => SHA256.HashData(_wasm);

    [Benchmark]
    public unsafe WasmModuleInfo DecodeMappedBlock() =>
        // SAFETY: _held keeps the library, and so the block, mapped until cleanup.
        ArtifactMetadata.Decode(new ReadOnlySpan<byte>((void*)_held!.MetadataBlock, _held.MetadataLength), _library, WasmModule.AbiVersion);

    [Benchmark]
    public int OpenArtifact()
    {
        using WasmModule module = WasmModule.Open(_library);
        return module.Info.Exports.Count;
    }

    [Benchmark]
    public int LoadThroughCache()
    {
        using WasmModule module = WasmModule.Load(_wasm);
        return module.Info.Exports.Count;
    }

    [GlobalCleanup]
    public void Cleanup() => _held?.Dispose();

    /// <summary>20 exported functions of mixed signatures, 4 imports, a memory, a table and 2 globals.</summary>
    private static string SmallModule()
    {
        var wat = new StringBuilder("(module\n");
        string[] kinds = ["i32", "i64", "f32", "f64"];
        for (int i = 0; i < 4; i++)
        {
            wat.Append(System.Globalization.CultureInfo.InvariantCulture,
                $"  (import \"env\" \"host_{i}\" (func (param {kinds[i]} i32) (result {kinds[i]})))\n");
        }

        wat.Append("  (memory (export \"memory\") 2 64)\n  (table (export \"table\") 4 funcref)\n");
        wat.Append("  (global (export \"g0\") (mut i32) (i32.const 0))\n  (global (export \"g1\") i64 (i64.const 1))\n");
        for (int i = 0; i < 20; i++)
        {
            string k = kinds[i % 4];
            wat.Append(System.Globalization.CultureInfo.InvariantCulture,
                $"  (func (export \"function_{i}\") (param {k} i32) (result {k}) (local.get 0))\n");
        }

        return wat.Append(')').ToString();
    }
}

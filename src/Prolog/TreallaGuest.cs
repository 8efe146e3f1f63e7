using System.Buffers.Binary;
using CowWasm.Runtime.Wasi;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Prolog;

/// <summary>Loading and linking the Trealla guest.</summary>
public static class TreallaGuest
{
    private static readonly WasmValueKind[] s_i32x5 = [WasmValueKind.I32, WasmValueKind.I32, WasmValueKind.I32, WasmValueKind.I32, WasmValueKind.I32];
    private static readonly WasmValueKind[] s_i32x3 = [WasmValueKind.I32, WasmValueKind.I32, WasmValueKind.I32];
    private static readonly WasmValueKind[] s_i32 = [WasmValueKind.I32];

    /// <summary>
    /// Fetches (if needed) and verifies the pinned package's wasm, then compiles or loads its cached artifact.
    /// The first compile takes minutes (about 6–7 on a 2-vCPU VM, 9.4 GB peak RSS in gcc); progress is reported.
    /// </summary>
    public static Task<WasmModule> LoadAsync(IProgress<string>? progress = null, CancellationToken cancellationToken = default) =>
        LoadAsync(null, progress, cancellationToken);

    /// <summary>As <see cref="LoadAsync(IProgress{string}?, CancellationToken)"/>, built with <paramref name="artifactOptions"/>
    /// (default: <see cref="ArtifactOptions"/>' defaults), e.g. without the store barrier to measure what it costs.</summary>
    public static async Task<WasmModule> LoadAsync(ArtifactOptions? artifactOptions, IProgress<string>? progress = null,
        CancellationToken cancellationToken = default)
    {
        byte[] wasm = await ReadWasmAsync(progress, cancellationToken).ConfigureAwait(false);
        var artifactProgress = progress is null
            ? null
            : new Progress<ArtifactProgress>(p => progress.Report($"{p.Stage} ({p.Elapsed.TotalSeconds:F0} s): {p.Message}"));
        return await WasmModule.LoadAsync(wasm, artifactOptions, artifactProgress, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Fetches and verifies the pinned package's wasm, then loads it on <paramref name="runtime"/>: on Wasmtime, rewritten
    /// (store barrier) and compiled in seconds, or its compiled code loaded from the cache; on the native runtime, as
    /// <see cref="LoadAsync(ArtifactOptions?, IProgress{string}?, CancellationToken)"/>.
    /// </summary>
    public static async Task<IGuestModule> LoadAsync(GuestRuntime runtime, IProgress<string>? progress = null,
        CancellationToken cancellationToken = default)
    {
        if (runtime == GuestRuntime.Native)
        {
            return await LoadAsync(null, progress, cancellationToken).ConfigureAwait(false);
        }

        byte[] wasm = await ReadWasmAsync(progress, cancellationToken).ConfigureAwait(false);
        progress?.Report("Wasmtime: rewriting and compiling (or loading the cached compiled code)");
        return await Task.Run(() => CowWasm.Runtime.Wasmtime.WasmtimeModule.Load(wasm), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The pinned package's wasm, fetched if needed and verified.</summary>
    private static async Task<byte[]> ReadWasmAsync(IProgress<string>? progress, CancellationToken cancellationToken)
    {
        string path = await TreallaPackage.FetchAsync(progress: progress, cancellationToken: cancellationToken).ConfigureAwait(false);
        return await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false); // FetchAsync verified it
    }

    /// <summary>
    /// The imports Trealla needs: WASI preview1 (our subset; fd 3 has no preopen, so <c>fd_prestat_get</c> answers
    /// EBADF as the guest requires) and <c>trealla.host-call</c>/<c>host-resume</c>, which answer "no host" (the
    /// guest turns that into a Prolog error).
    /// </summary>
    public static Linker CreateLinker(WasmModuleInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        return WasiPreview1.AddTo(new Linker(), info)
            .Define("trealla", "host-call", s_i32x5, s_i32, static (_, _, results) => results[0] = 0)
            .Define("trealla", "host-resume", s_i32x3, s_i32, static (caller, args, results) =>
            {
                BinaryPrimitives.WriteUInt32LittleEndian(caller.GetMemory((uint)args[1], 4), 0);
                results[0] = 0;
            });
    }

    /// <summary>Instance options with a default WASI configuration (the guest's stdout is captured per instance and discarded per query).</summary>
    public static InstanceOptions DefaultInstanceOptions { get; } = new() { Wasi = new WasiConfiguration { Arguments = ["trealla"] } };
}

using System.Diagnostics;

namespace CowWasm.Runtime.Native;

/// <summary>
/// Turns wasm bytes into a native artifact: <c>wasm2c</c> → glue → <c>gcc -shared</c>, cached by content hash.
/// A lookup in the <see cref="ArtifactCache"/> first; on a miss the module is parsed, built by
/// <see cref="ArtifactBuilder"/> in a private work directory, and published atomically.
/// </summary>
/// <remarks>Thread-safe and process-safe (see <see cref="ArtifactCache"/> for publication and verification).</remarks>
public static class ArtifactCompiler
{
    /// <summary>The runtime version: a hash of the embedded C runtime sources. Part of every cache key.</summary>
    public static string RuntimeVersion => ArtifactBuilder.RuntimeVersion;

    /// <summary>Finds or builds the artifact for <paramref name="wasm"/>.</summary>
    /// <exception cref="WasmFormatException">The bytes are not a valid module (our reader or wasm2c rejected them).</exception>
    /// <exception cref="ArtifactCompilationException">wasm2c or gcc failed.</exception>
    /// <exception cref="ToolNotFoundException">wasm2c or gcc is not installed.</exception>
    public static async Task<Artifact> CompileAsync(byte[] wasm, ArtifactOptions? options = null,
        IProgress<ArtifactProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(wasm);
        options ??= new ArtifactOptions();
        var cache = ArtifactCache.For(options);
        string key = ArtifactCache.Key(wasm, options);
        var clock = Stopwatch.StartNew();

        if (cache.TryGet(key, options.VerifyLibraryHash, out string cached, out long size))
        {
            progress?.Report(new ArtifactProgress(ArtifactStage.CacheHit, clock.Elapsed, Path.GetDirectoryName(cached)!));
            return new Artifact(cached, key, true, TimeSpan.Zero, size);
        }

        // Parsed only when building: a cached artifact carries its metadata, and a malformed module never gets an entry.
        WasmModuleInfo info = WasmBinaryReader.Read(wasm);
        string work = cache.CreateWorkDirectory(key);
        try
        {
            await ArtifactBuilder.BuildAsync(wasm, info, options, work, clock, progress, cancellationToken).ConfigureAwait(false);
            TimeSpan compileTime = clock.Elapsed;
            string library = await cache.PublishAsync(work, key, options, cancellationToken).ConfigureAwait(false);
            long bytes = new FileInfo(library).Length;
            progress?.Report(new ArtifactProgress(ArtifactStage.Done, clock.Elapsed, Path.GetDirectoryName(library)!));
            return new Artifact(library, key, false, compileTime, bytes);
        }
        finally
        {
            if (Directory.Exists(work))
            {
                Directory.Delete(work, recursive: true);
            }
        }
    }

    /// <summary>Synchronous form of <see cref="CompileAsync"/>.</summary>
    public static Artifact Compile(byte[] wasm, ArtifactOptions? options = null, IProgress<ArtifactProgress>? progress = null) =>
        CompileAsync(wasm, options, progress).GetAwaiter().GetResult();
}

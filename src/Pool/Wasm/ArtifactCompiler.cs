using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace CowWasm.Pool.Wasm;

/// <summary>Where a compilation is.</summary>
public enum ArtifactStage
{
    /// <summary>A valid cached artifact was found; nothing was compiled.</summary>
    CacheHit,

    /// <summary>wasm2c is translating the module to C.</summary>
    Translating,

    /// <summary>gcc is compiling the C (minutes for large modules).</summary>
    Compiling,

    /// <summary>The artifact was published to the cache.</summary>
    Done,
}

/// <summary>A progress report: stage and time since the compilation started.</summary>
public readonly record struct ArtifactProgress(ArtifactStage Stage, TimeSpan Elapsed, string Message);

/// <summary>A compiled artifact on disk.</summary>
/// <param name="LibraryPath">The shared object.</param>
/// <param name="Key">The cache key (hash of wasm bytes, runtime version and compiler flags).</param>
/// <param name="FromCache">Whether it was found in the cache rather than compiled now.</param>
/// <param name="CompileTime">Time spent compiling (zero on a cache hit).</param>
/// <param name="LibraryBytes">Size of the shared object.</param>
public sealed record Artifact(string LibraryPath, string Key, bool FromCache, TimeSpan CompileTime, long LibraryBytes);

/// <summary>Compiling the artifact failed (the tool's output is in the message).</summary>
public sealed class ArtifactCompilationException(string message) : Exception(message);

/// <summary>Options for <see cref="ArtifactCompiler"/>.</summary>
public sealed record ArtifactOptions
{
    /// <summary>The cache directory. Default: $COWWASM_CACHE_DIR, else $XDG_CACHE_HOME/cowwasm, else ~/.cache/cowwasm.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>
    /// Re-hash the whole shared object on every cache hit. Default false: a cache hit checks that the library's
    /// size and last-write time are those recorded when it was hashed, and re-hashes only if either changed.
    /// A truncated, replaced or rewritten library is caught either way; only damage that keeps both is not.
    /// </summary>
    public bool VerifyLibraryHash { get; init; }

    /// <summary>gcc optimization flag. Part of the cache key.</summary>
    public string OptimizationFlag { get; init; } = "-O2";

    internal string ResolveCacheDirectory()
    {
        if (CacheDirectory is { Length: > 0 } explicitDir)
        {
            return explicitDir;
        }

        if (Environment.GetEnvironmentVariable("COWWASM_CACHE_DIR") is { Length: > 0 } fromEnv)
        {
            return fromEnv;
        }

        string xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x
            ? x
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(xdg, "cowwasm");
    }
}

/// <summary>
/// Turns wasm bytes into a native artifact: <c>wasm2c</c> → glue → <c>gcc -shared</c>, cached by content hash.
/// </summary>
/// <remarks>
/// Publication is atomic: the artifact is built in a private temporary directory and renamed into place, so a
/// concurrent process sees either nothing or a complete artifact; if two build the same key, the first rename
/// wins and the other's work is discarded. The manifest written with an artifact records its SHA-256, size and
/// write time; a load re-hashes it when the size or time differ (or always, with
/// <see cref="ArtifactOptions.VerifyLibraryHash"/>), and a truncated or corrupt entry is deleted and rebuilt. Thread-safe.
/// </remarks>
public static class ArtifactCompiler
{
    private const string LibraryName = "module.so";
    private const string ManifestName = "manifest.json";

    private static readonly Lazy<(string Version, Dictionary<string, byte[]> Files)> s_runtime = new(LoadRuntime);

    // The translator's version is part of the key: a wabt upgrade changes the generated C.
    private static readonly Lazy<string> s_wasm2cVersion = new(() =>
    {
        (int code, string output) = ToolProcess.RunAsync("wasm2c", ["--version"], Environment.CurrentDirectory, null, CancellationToken.None,
            "Install the Debian package wabt: apt-get install -y wabt.")
            .GetAwaiter().GetResult();
        return code == 0 ? output.Trim() : throw new ArtifactCompilationException($"wasm2c --version failed: {output}");
    });

    /// <summary>The runtime version: a hash of the embedded C runtime sources. Part of every cache key.</summary>
    public static string RuntimeVersion => s_runtime.Value.Version;

    /// <summary>Finds or builds the artifact for <paramref name="wasm"/>.</summary>
    /// <exception cref="WasmFormatException">The bytes are not a valid module (our reader or wasm2c rejected them).</exception>
    /// <exception cref="ArtifactCompilationException">wasm2c or gcc failed.</exception>
    /// <exception cref="ToolNotFoundException">wasm2c or gcc is not installed.</exception>
    public static async Task<Artifact> CompileAsync(byte[] wasm, ArtifactOptions? options = null,
        IProgress<ArtifactProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(wasm);
        options ??= new ArtifactOptions();
        string key = CacheKey(wasm, options);
        string root = options.ResolveCacheDirectory();
        string final = Path.Combine(root, "artifacts", key);
        var clock = Stopwatch.StartNew();

        if (TryUseCached(final, options.VerifyLibraryHash, out long size))
        {
            progress?.Report(new ArtifactProgress(ArtifactStage.CacheHit, clock.Elapsed, final));
            return new Artifact(Path.Combine(final, LibraryName), key, true, TimeSpan.Zero, size);
        }

        // Parsed only when building: a cached artifact carries its metadata, and a malformed module never gets an entry.
        WasmModuleInfo info = WasmBinaryReader.Read(wasm);
        Directory.CreateDirectory(Path.Combine(root, "tmp"));
        SweepAbandoned(Path.Combine(root, "tmp"));
        string work = Path.Combine(root, "tmp", $"{key}-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(work);
        try
        {
            await BuildAsync(wasm, info, options, work, clock, progress, cancellationToken).ConfigureAwait(false);
            TimeSpan compileTime = clock.Elapsed;
            Directory.CreateDirectory(Path.Combine(root, "artifacts"));
            try
            {
                Directory.Move(work, final);
            }
            catch (IOException) when (Directory.Exists(final))
            {
                // Another process published the same key first; use theirs if it is sound.
                if (!TryUseCached(final, verifyHash: true, out _))
                {
                    throw new ArtifactCompilationException($"A concurrent build left an unusable artifact at {final}.");
                }
            }

            long bytes = new FileInfo(Path.Combine(final, LibraryName)).Length;
            progress?.Report(new ArtifactProgress(ArtifactStage.Done, clock.Elapsed, final));
            return new Artifact(Path.Combine(final, LibraryName), key, false, compileTime, bytes);
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

    internal static string CacheKey(byte[] wasm, ArtifactOptions options)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(SHA256.HashData(wasm));
        hash.AppendData(Encoding.UTF8.GetBytes(
            $"|runtime={RuntimeVersion}|glue={GlueGenerator.Version}|wasm2c={s_wasm2cVersion.Value}|flags={CompilerFlags(options)}"));
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static string CompilerFlags(ArtifactOptions options) =>
        $"{options.OptimizationFlag} -fPIC -shared -fvisibility=hidden -w";

    /// <summary>
    /// Deletes build directories whose process died before finishing (killed mid-compile): their names carry
    /// the builder's pid. A Trealla build leaves ~28 MB of C behind otherwise.
    /// </summary>
    internal static void SweepAbandoned(string tmp)
    {
        foreach (string dir in Directory.EnumerateDirectories(tmp))
        {
            string[] parts = Path.GetFileName(dir).Split('-');
            bool alive = parts.Length == 3 && int.TryParse(parts[1], out int pid) && Directory.Exists($"/proc/{pid}");
            if (!alive)
            {
                try
                {
                    Directory.Delete(dir, recursive: true);
                }
                catch (IOException)
                {
                    // another sweeper got there first
                }
            }
        }
    }

    private static bool TryUseCached(string dir, bool verifyHash, out long size)
    {
        size = 0;
        string library = Path.Combine(dir, LibraryName);
        string manifest = Path.Combine(dir, ManifestName);
        if (!Directory.Exists(dir))
        {
            return false;
        }

        try
        {
            var recorded = JsonSerializer.Deserialize<Manifest>(File.ReadAllText(manifest));
            var file = new FileInfo(library);
            if (recorded is not null && !verifyHash && file.Exists && recorded.Matches(file))
            {
                // Unchanged since it was hashed. Hashing Trealla's 5.4 MB library on every load cost 3.5 of 6.9 ms
                // (bench ArtifactOpenBenchmarks.LoadThroughCache, 2026-11-21) against 0.15 ms for the open itself.
                size = file.Length;
                return true;
            }

            using FileStream stream = File.OpenRead(library);
            string actual = Convert.ToHexStringLower(SHA256.HashData(stream));
            if (recorded is not null && recorded.LibrarySha256 == actual)
            {
                size = stream.Length;
                if (!recorded.Matches(file))
                {
                    RefreshManifest(manifest, recorded with { LibraryBytes = file.Length, LibraryWriteTicks = file.LastWriteTimeUtc.Ticks });
                }

                return true;
            }
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            // fall through: unreadable entries are rebuilt
        }

        // Corrupt, truncated or half-deleted: remove it so the rebuild can publish.
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }

        return false;
    }

    /// <summary>
    /// Records the size and write time of a library whose hash was just confirmed (a copied cache, or a manifest
    /// from before they were recorded), so later loads skip the hash. Atomic; best effort.
    /// </summary>
    private static void RefreshManifest(string path, Manifest manifest)
    {
        string temp = $"{path}.{Environment.ProcessId}-{Guid.NewGuid():N}.tmp";
        try
        {
            File.WriteAllText(temp, JsonSerializer.Serialize(manifest));
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            File.Delete(temp); // a read-only cache keeps working; its loads just keep hashing
        }
    }

    private static async Task BuildAsync(byte[] wasm, WasmModuleInfo info, ArtifactOptions options, string work,
        Stopwatch clock, IProgress<ArtifactProgress>? progress, CancellationToken cancellationToken)
    {
        await File.WriteAllBytesAsync(Path.Combine(work, "module.wasm"), wasm, cancellationToken).ConfigureAwait(false);
        foreach ((string name, byte[] content) in s_runtime.Value.Files)
        {
            await File.WriteAllBytesAsync(Path.Combine(work, name), content, cancellationToken).ConfigureAwait(false);
        }

        progress?.Report(new ArtifactProgress(ArtifactStage.Translating, clock.Elapsed, "wasm2c"));
        (int code, string output) = await ToolProcess.RunAsync("wasm2c",
            ["module.wasm", "-n", GlueGenerator.ModuleName, "-o", $"{GlueGenerator.ModuleName}.c"], work, null, cancellationToken,
            "Install the Debian package wabt: apt-get install -y wabt.").ConfigureAwait(false);
        if (code != 0)
        {
            throw new WasmFormatException($"wasm2c rejected the module: {Tail(output)}");
        }

        string header = await File.ReadAllTextAsync(Path.Combine(work, $"{GlueGenerator.ModuleName}.h"), cancellationToken)
            .ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(work, "glue.c"), GlueGenerator.Generate(info, header), cancellationToken)
            .ConfigureAwait(false);

        progress?.Report(new ArtifactProgress(ArtifactStage.Compiling, clock.Elapsed, "gcc"));
        string[] gcc =
        [
            options.OptimizationFlag, "-fPIC", "-shared", "-fvisibility=hidden", "-w", "-I.", "-o", LibraryName,
            $"{GlueGenerator.ModuleName}.c", "glue.c", "cowwasm-rt.c", "-lm", "-lpthread",
        ];
        (code, output) = await ToolProcess.RunAsync("gcc", gcc, work,
            elapsed => progress?.Report(new ArtifactProgress(ArtifactStage.Compiling, clock.Elapsed, "gcc still running")),
            cancellationToken).ConfigureAwait(false);
        if (code != 0)
        {
            throw new ArtifactCompilationException($"gcc failed (exit {code}): {Tail(output)}");
        }

        await using (FileStream library = File.OpenRead(Path.Combine(work, LibraryName)))
        {
            var manifest = new Manifest(Convert.ToHexStringLower(await SHA256.HashDataAsync(library, cancellationToken).ConfigureAwait(false)),
                RuntimeVersion, CompilerFlags(options))
            {
                LibraryBytes = library.Length,
                LibraryWriteTicks = File.GetLastWriteTimeUtc(library.Name).Ticks, // a rename into the cache keeps it
            };
            await File.WriteAllTextAsync(Path.Combine(work, ManifestName), JsonSerializer.Serialize(manifest), cancellationToken)
                .ConfigureAwait(false);
        }

        foreach (string intermediate in new[] { "module.wasm", $"{GlueGenerator.ModuleName}.c" })
        {
            File.Delete(Path.Combine(work, intermediate)); // large (Trealla: 28 MB of C); the .h and glue stay for debugging
        }
    }

    private static string Tail(string output) => output.Length <= 2000 ? output.Trim() : "…" + output[^2000..].Trim();

    private static (string, Dictionary<string, byte[]>) LoadRuntime()
    {
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var assembly = typeof(ArtifactCompiler).Assembly;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (string resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith("cowwasm.native.", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            using Stream stream = assembly.GetManifestResourceStream(resource)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            string name = resource["cowwasm.native.".Length..];
            files[name] = copy.ToArray();
            hash.AppendData(Encoding.UTF8.GetBytes(name));
            hash.AppendData(files[name]);
        }

        return (Convert.ToHexStringLower(hash.GetHashAndReset())[..16], files);
    }

    private sealed record Manifest(string LibrarySha256, string RuntimeVersion, string Flags)
    {
        /// <summary>The library's size when it was hashed (0 in manifests written before this was recorded).</summary>
        public long LibraryBytes { get; init; }

        /// <summary>The library's last-write time (UTC ticks) when it was hashed.</summary>
        public long LibraryWriteTicks { get; init; }

        public bool Matches(FileInfo library) =>
            LibraryBytes > 0 && LibraryBytes == library.Length && LibraryWriteTicks == library.LastWriteTimeUtc.Ticks;
    }
}

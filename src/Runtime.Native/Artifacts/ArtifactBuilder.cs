using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;

namespace CowWasm.Runtime.Native;

/// <summary>
/// Builds an artifact in a work directory: <c>wasm2c</c> → glue (<see cref="GlueGenerator"/>) → <c>gcc -shared</c>
/// with the embedded C runtime. Knows nothing of the cache; <see cref="ArtifactCache"/> keys and publishes what it builds.
/// </summary>
internal static class ArtifactBuilder
{
    /// <summary>The shared object a build produces.</summary>
    public const string LibraryName = "module.so";

    private static readonly Lazy<(string Version, Dictionary<string, byte[]> Files)> s_runtime = new(LoadRuntime);

    // The translator's version is part of the key: a wabt upgrade changes the generated C.
    private static readonly Lazy<string> s_wasm2cVersion = new(() =>
    {
        (int code, string output) = ToolProcess.RunAsync("wasm2c", ["--version"], Environment.CurrentDirectory, null, CancellationToken.None,
            "Install the Debian package wabt: apt-get install -y wabt.")
            .GetAwaiter().GetResult();
        return code == 0 ? output.Trim() : throw new ArtifactCompilationException($"wasm2c --version failed: {output}");
    });

    /// <summary>One embedded runtime source file by name (e.g. <c>cowwasm-signals.c</c>).</summary>
    public static byte[] RuntimeFile(string name) => s_runtime.Value.Files[name];

    /// <summary>A hash of the embedded C runtime sources (names and bytes).</summary>
    public static string RuntimeVersion => s_runtime.Value.Version;

    /// <summary>
    /// Everything a build's output depends on besides the wasm: runtime, glue and translator versions and the exact
    /// compiler arguments. The cache key hashes this text.
    /// </summary>
    /// (Builds without the store barrier add a field; the default's text predates the option and is unchanged.)
    public static string Fingerprint(ArtifactOptions options) =>
        $"|runtime={RuntimeVersion}|glue={GlueGenerator.Version}|wasm2c={s_wasm2cVersion.Value}|flags={string.Join(' ', CompilerArguments(options))}" +
        $"|units={SourceSplitter.Version}" +
        (options.StoreBarrier ? "" : "|storebarrier=off") + (options.LoopInterruptChecks ? "" : "|looppolls=off");

    /// <summary>
    /// The gcc arguments that shape the code, in command-line order: the one list behind both the command line
    /// (<see cref="BuildAsync"/>) and the cache key (<see cref="Fingerprint"/>). <c>-fsignaling-nans</c> keeps gcc from
    /// folding <c>x * 1.0</c>, <c>x - 0.0</c> and friends to <c>x</c>, which would return a signaling NaN unquieted.
    /// </summary>
    /// <remarks><c>-fno-optimize-sibling-calls</c>: a guest call stays a call, so a guest recursing without end uses
    /// native stack and traps at the floor (gcc would turn <c>return f(x)</c> into a jump, an endless loop; the depth
    /// count's decrement after each call used to prevent that as a side effect). <c>-fstack-clash-protection</c>: a frame larger than a page is probed page by page, so it can never
    /// step over the stack's guard page into other memory; <see cref="MaxFrameBytes"/> and the runtime's stack margin
    /// keep it from reaching the guard at all.</remarks>
    public static IReadOnlyList<string> CompilerArguments(ArtifactOptions options) =>
    [
        options.OptimizationFlag, "-fPIC", "-fvisibility=hidden",
        .. options.SignalingNans ? ["-fsignaling-nans"] : Array.Empty<string>(),
        "-fstack-clash-protection", "-fno-optimize-sibling-calls", "-w",
        .. options.BoundsChecks == BoundsChecks.GuardPages ? ["-DCW_GUARD_PAGES"] : Array.Empty<string>(),
    ];

    /// <summary>
    /// The largest native stack frame a guest function may have (512 KiB). The runtime keeps 256 KiB plus the
    /// module's largest frame free below the deepest guest frame (<c>CW_MAX_FRAME</c>), so that a function that passed its
    /// prologue's floor check cannot run off the stack; a module with a bigger frame would make that margin larger than
    /// the stacks guests run on (.NET's threads have 1.5 MiB), so it is refused at build time.
    /// </summary>
    public const int MaxFrameBytes = 512 * 1024;

    /// <summary>
    /// Translates and compiles <paramref name="wasm"/> in <paramref name="work"/>, leaving <see cref="LibraryName"/>
    /// there (plus the header and glue, for debugging). Progress reports run while gcc does.
    /// </summary>
    /// <exception cref="WasmFormatException">wasm2c rejected the module.</exception>
    /// <exception cref="ArtifactCompilationException">gcc failed.</exception>
    public static async Task BuildAsync(byte[] wasm, WasmModuleInfo info, ArtifactOptions options, string work,
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
            throw new WasmFormatException(output.Trim().Length > 0
                ? $"wasm2c rejected the module: {Tail(output)}"
                : $"wasm2c failed on the module with exit code {code}{(code > 128 ? $" (killed by signal {code - 128}: wasm2c crashed; wabt 1.0.32 aborts on SIMD stores, for one)" : "")} and printed nothing.");
        }

        string source = Path.Combine(work, $"{GlueGenerator.ModuleName}.c");
        string translated = RuntimeHooks.EditSource(await File.ReadAllTextAsync(source, cancellationToken).ConfigureAwait(false),
            options.LoopInterruptChecks);
        translated = options.StoreBarrier ? StoreBarrier.Insert(translated) : StoreBarrier.Omit(translated);
        File.Delete(source);
        // Units gcc compiles in parallel (SourceSplitter): the data unit without optimisation, the code units with it.
        var units = new List<(string Name, bool Optimized)>();
        if (SourceSplitter.Apply(translated) is { } split)
        {
            await File.WriteAllTextAsync(Path.Combine(work, "m-data.c"), split.Data, cancellationToken).ConfigureAwait(false);
            units.Add(("m-data", false));
            for (int i = 0; i < split.Code.Count; i++)
            {
                await File.WriteAllTextAsync(Path.Combine(work, $"m-code{i}.c"), split.Code[i], cancellationToken).ConfigureAwait(false);
                units.Add(($"m-code{i}", true));
            }
        }
        else
        {
            await File.WriteAllTextAsync(Path.Combine(work, "m-all.c"), translated, cancellationToken).ConfigureAwait(false);
            units.Add(("m-all", true));
        }

        string headerPath = Path.Combine(work, $"{GlueGenerator.ModuleName}.h");
        string header = RuntimeHooks.EditHeader(await File.ReadAllTextAsync(headerPath, cancellationToken).ConfigureAwait(false));
        await File.WriteAllTextAsync(headerPath, header, cancellationToken).ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(work, "glue.c"), GlueGenerator.Generate(info, header), cancellationToken)
            .ConfigureAwait(false);

        // Two steps: the module's units with -fstack-usage (gcc reports every function's frame), as many at once as
        // there are cores; then the glue and the runtime with the largest frame compiled in (its stack margin), linked
        // into the shared object.
        int jobs = Math.Max(1, Math.Min(units.Count, Environment.ProcessorCount));
        progress?.Report(new ArtifactProgress(ArtifactStage.Compiling, clock.Elapsed,
            $"gcc: {units.Count} units ({units.Count(u => u.Optimized)} optimized), {jobs} at a time"));
        int compiled = 0;
        using (var slots = new SemaphoreSlim(jobs))
        {
            await Task.WhenAll(units.Select(async unit =>
            {
                await slots.WaitAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    IReadOnlyList<string> flags = CompilerArguments(options);
                    await Gcc(work, [unit.Optimized ? flags[0] : "-O0", .. flags.Skip(1), "-I.", "-fstack-usage", "-c", "-o", unit.Name + ".o", unit.Name + ".c"],
                        clock, progress, cancellationToken).ConfigureAwait(false);
                    int done = Interlocked.Increment(ref compiled);
                    progress?.Report(new ArtifactProgress(ArtifactStage.Compiling, clock.Elapsed, $"gcc: {done} of {units.Count} units compiled"));
                }
                finally
                {
                    slots.Release();
                }
            })).ConfigureAwait(false);
        }

        (string function, long frame) = units.Select(u => LargestFrame(Path.Combine(work, u.Name + ".su"))).MaxBy(f => f.Bytes);
        if (frame > MaxFrameBytes)
        {
            throw new ArtifactCompilationException(
                $"The guest function {function} needs a {frame:N0}-byte native stack frame; CowWasm refuses frames over " +
                $"{MaxFrameBytes:N0} bytes (a guest that recursed through it could not be stopped before the stack's end).");
        }

        await Gcc(work,
            [
                .. CompilerArguments(options), "-shared", "-I.", $"-DCW_MAX_FRAME={frame}", "-o", LibraryName,
                .. units.Select(u => u.Name + ".o"), "glue.c", "cowwasm-rt.c", "-lm", "-lpthread",
            ], clock, progress, cancellationToken).ConfigureAwait(false);

        foreach (string intermediate in units.SelectMany(u => new[] { u.Name + ".c", u.Name + ".o" }).Append("module.wasm"))
        {
            File.Delete(Path.Combine(work, intermediate)); // large (Trealla: 28 MB of C); the .h, glue and .su stay for debugging
        }
    }

    private static string Tail(string output) => output.Length <= 2000 ? output.Trim() : "…" + output[^2000..].Trim();

    private static async Task Gcc(string work, string[] arguments, Stopwatch clock, IProgress<ArtifactProgress>? progress,
        CancellationToken cancellationToken)
    {
        (int code, string output) = await ToolProcess.RunAsync("gcc", arguments, work,
            elapsed => progress?.Report(new ArtifactProgress(ArtifactStage.Compiling, clock.Elapsed, "gcc still running")),
            cancellationToken).ConfigureAwait(false);
        if (code != 0)
        {
            throw new ArtifactCompilationException($"gcc failed (exit {code}): {Tail(output)}");
        }
    }

    /// <summary>
    /// The function with the largest frame in a gcc <c>-fstack-usage</c> report (<c>file:line:col:name\tbytes\tkind</c>).
    /// A frame gcc calls "dynamic" without "bounded" (alloca of a run-time size) has no known bound: refused.
    /// </summary>
    /// <exception cref="ArtifactCompilationException">The report is missing, unreadable, or has an unbounded frame.</exception>
    internal static (string Function, long Bytes) LargestFrame(string stackUsageFile)
    {
        if (!File.Exists(stackUsageFile))
        {
            throw new ArtifactCompilationException($"gcc wrote no stack-usage report ({Path.GetFileName(stackUsageFile)}).");
        }

        (string Function, long Bytes) largest = ("(none)", 0);
        foreach (string line in File.ReadLines(stackUsageFile))
        {
            string[] fields = line.Split('\t');
            if (fields.Length < 3 || !long.TryParse(fields[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long bytes))
            {
                throw new ArtifactCompilationException($"Unreadable stack-usage line: {line}");
            }

            string function = fields[0][(fields[0].LastIndexOf(':') + 1)..];
            if (fields[2].Contains("dynamic", StringComparison.Ordinal) && !fields[2].Contains("bounded", StringComparison.Ordinal))
            {
                throw new ArtifactCompilationException($"The guest function {function} has a native stack frame of unbounded size.");
            }

            if (bytes > largest.Bytes)
            {
                largest = (function, bytes);
            }
        }

        return largest;
    }

    private static (string, Dictionary<string, byte[]>) LoadRuntime()
    {
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var assembly = typeof(ArtifactBuilder).Assembly;
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
}

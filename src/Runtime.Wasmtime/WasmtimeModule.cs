using System.Diagnostics;
using CowWasm.Runtime.Wasmtime.Rewriting;

namespace CowWasm.Runtime.Wasmtime;

/// <summary>
/// A guest module compiled by Wasmtime (Cranelift): the second backend behind <see cref="IGuestModule"/>. The module is
/// rewritten first (<see cref="ModuleRewriter"/>: globals exported, data segments behind an init function, and — by
/// default — the store barrier), then compiled, or loaded from the compiled-code cache.
/// </summary>
/// <remarks>
/// <para><b>What this backend cannot do</b> (refused with <see cref="NotSupportedException"/> at load): guest code
/// that changes tables or drops segments (<c>table.set/grow/fill/copy/init</c>, <c>elem.drop</c>, <c>data.drop</c>);
/// imports other than functions; more than one memory, shared or 64-bit memories; v128 and reference-typed globals; the
/// GC proposal.</para>
/// <para>Thread-safe: instances may be created from any thread. Dispose after every instance.</para>
/// </remarks>
public sealed class WasmtimeModule : IGuestModule
{
    private readonly global::Wasmtime.Module _compiled;
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<Linker, global::Wasmtime.Linker> _linkers = [];
    private int _disposed;

    private WasmtimeModule(WasmModuleInfo info, RewrittenModule rewritten, global::Wasmtime.Module compiled, WasmtimeLoadReport report)
    {
        Info = info;
        Rewritten = rewritten;
        _compiled = compiled;
        Report = report;
    }

    /// <inheritdoc/>
    public WasmModuleInfo Info { get; }

    /// <inheritdoc/>
    public bool MarksStores => Rewritten.Barrier;

    /// <summary>How the module was prepared: rewrite, compile or cache hit, and their times.</summary>
    public WasmtimeLoadReport Report { get; }

    internal RewrittenModule Rewritten { get; }

    internal global::Wasmtime.Module Compiled
    {
        get
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            return _compiled;
        }
    }

    internal static WasmtimeEngine Engine => WasmtimeEngine.Shared;

    /// <summary>Our linker's host functions as a Wasmtime linker for this module (built once per linker, shared by every store).</summary>
    internal global::Wasmtime.Linker LinkerFor(Linker linker)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return _linkers.GetValue(linker, l => HostLinker.Build(this, l));
    }

    /// <summary>Rewrites and compiles <paramref name="wasm"/> (or loads its compiled code from the cache).</summary>
    /// <exception cref="WasmFormatException">The bytes are not a well-formed module.</exception>
    /// <exception cref="NotSupportedException">The module uses what this backend cannot run (the message says what).</exception>
    public static WasmtimeModule Load(ReadOnlySpan<byte> wasm, WasmtimeOptions? options = null)
    {
        options ??= new WasmtimeOptions();
        var clock = Stopwatch.StartNew();
        WasmModuleInfo info = WasmBinaryReader.Read(wasm);
        RewrittenModule rewritten;
        try
        {
            rewritten = ModuleRewriter.Rewrite(wasm, options.StoreBarrier);
        }
        catch (NotSupportedException e)
        {
            throw new NotSupportedException($"The Wasmtime backend cannot run this module: {e.Message}.", e);
        }

        if (rewritten.ChangesTables)
        {
            throw new NotSupportedException(
                "The Wasmtime backend cannot run this module: its code changes tables or drops segments (table.set/grow/fill/copy/init, " +
                "elem.drop, data.drop), which a pool could not restore across instances; use the native backend.");
        }

        foreach (WasmGlobal g in info.Globals)
        {
            if (g.Type is not (WasmValueKind.I32 or WasmValueKind.I64 or WasmValueKind.F32 or WasmValueKind.F64))
            {
                throw new NotSupportedException($"The Wasmtime backend cannot run this module: a global of type {g.Type}.");
            }
        }

        TimeSpan rewrite = clock.Elapsed;
        WasmtimeEngine engine = Engine;
        var cache = options.UseCache ? CompiledCodeCache.For(options) : null;
        string key = CompiledCodeCache.Key(rewritten.Bytes);
        bool hit = false;
        global::Wasmtime.Module? compiled = cache?.TryLoad(engine.Engine, key);
        if (compiled is not null)
        {
            hit = true;
        }
        else
        {
            try
            {
                compiled = global::Wasmtime.Module.FromBytes(engine.Engine, "guest", rewritten.Bytes);
            }
            catch (global::Wasmtime.WasmtimeException e)
            {
                throw new WasmFormatException($"Wasmtime refused the module: {e.Message}");
            }

            cache?.TryStore(key, compiled);
        }

        var report = new WasmtimeLoadReport(rewrite, clock.Elapsed - rewrite, hit, rewritten.Barrier, rewritten.BarrierRefusal,
            rewritten.Stores, rewritten.BulkOperations, rewritten.DataChunks);
        return new WasmtimeModule(info, rewritten, compiled, report);
    }

    /// <inheritdoc/>
    public IGuestInstance Instantiate(Linker linker, InstanceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(linker);
        return WasmtimeInstance.Create(this, linker, options ?? new InstanceOptions());
    }

    /// <summary>Frees the compiled code. Instances still running keep what they need.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _compiled.Dispose();
            foreach (KeyValuePair<Linker, global::Wasmtime.Linker> entry in _linkers)
            {
                entry.Value.Dispose();
            }

            _linkers.Clear();
        }
    }
}

/// <summary>How a <see cref="WasmtimeModule"/> was prepared.</summary>
/// <param name="Rewrite">Time to read and rewrite the module.</param>
/// <param name="Compile">Time to compile it, or to load its compiled code from the cache.</param>
/// <param name="CacheHit">Whether the compiled code came from the cache.</param>
/// <param name="Barrier">Whether stores mark the dirty map.</param>
/// <param name="BarrierRefusal">Why not, when the barrier was asked for.</param>
/// <param name="Stores">Store instructions the barrier marks.</param>
/// <param name="BulkOperations">memory.fill/copy/init instructions the barrier routes.</param>
/// <param name="DataChunks">Data written by the init function, in merged chunks.</param>
public sealed record WasmtimeLoadReport(TimeSpan Rewrite, TimeSpan Compile, bool CacheHit, bool Barrier, string? BarrierRefusal,
    int Stores, int BulkOperations, int DataChunks);

using CowWasm.Memory;
using CowWasm.Runtime.Wasi;
using CowWasm.Runtime.Wasmtime.Rewriting;
using Wasmtime;

namespace CowWasm.Runtime.Wasmtime;

/// <summary>
/// An instance of a <see cref="WasmtimeModule"/>: a Wasmtime store and instance whose linear memory is memory-engine
/// memory (<see cref="ILinearMemory"/>), with our WASI host, our traps and our interruption.
/// </summary>
/// <remarks>
/// <para><b>Threads:</b> entered by one thread at a time (a second thread gets <see cref="InvalidOperationException"/>);
/// the same thread may re-enter from a host function. <see cref="Interrupt"/> and disposal may come from any thread.</para>
/// <para><b>Lifecycle:</b> a fresh instance runs the rewrite's init function (data segments, then the start function);
/// a clone does not — its memory already holds the state it should see. When the memory shrinks under it (a replica
/// reset after a read that grew memory, a rolled-back write that grew it), Wasmtime, which cannot shrink a memory, gets
/// a new store and instance over the same memory; globals are carried over.</para>
/// <para><b>Interruption:</b> epochs. Every store has an epoch deadline one tick ahead and a callback; <see cref="Interrupt"/>
/// sets this instance's flag and ticks the engine's epoch, and the callback traps the store whose flag is set and lets
/// the others run on.</para>
/// </remarks>
public sealed unsafe partial class WasmtimeInstance : IGuestInstance
{
    private readonly WasmtimeModule _module;
    private readonly Linker _linker;
    private readonly InstanceOptions _options;
    private readonly Lock _lifecycle = new();
    private readonly Dictionary<string, WasmtimeFunction> _functions = [];
    private Store _store = null!;
    private Instance _instance = null!;
    private global::Wasmtime.Memory? _exportedMemory;
    private GlobalSlot[] _globals = [];
    private MemoryRequest? _memories;
    private ILinearMemory? _memory;
    private long _memorySize;
    private int _interrupt;
    private int _owner;
    private int _depth;
    private bool _disposed;

    private WasmtimeInstance(WasmtimeModule module, Linker linker, InstanceOptions options)
    {
        _module = module;
        _linker = linker;
        _options = options;
        Wasi = options.Wasi is { } wasi ? new WasiState(wasi) : null;
    }

    /// <summary>The module.</summary>
    public WasmtimeModule Module => _module;

    /// <inheritdoc/>
    public PageMemory? Memory => _memory?.Memory;

    /// <inheritdoc/>
    public ILinearMemory? LinearMemory => _memory;

    /// <inheritdoc/>
    public long MemorySize => Volatile.Read(ref _memorySize);

    /// <inheritdoc/>
    public WasiState? Wasi { get; }

    /// <inheritdoc/>
    public IHostState? HostState { get; set; }

    /// <inheritdoc/>
    public bool TablesChanged => false; // modules whose code changes tables are refused at load

    internal Exception? PendingException { get; set; }

    internal static WasmtimeInstance Create(WasmtimeModule module, Linker linker, InstanceOptions options)
    {
        var instance = new WasmtimeInstance(module, linker, options);
        try
        {
            instance.Build(memory: null);
            instance.Call(RewrittenModule.InitExport, "instantiate", [], []);
            return instance;
        }
        catch
        {
            instance.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public IGuestInstance Clone(ILinearMemory? memory, InstanceOptions? options = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if ((memory is null) != (_memory is null))
        {
            throw new ArgumentException(_memory is null ? "The module has no memory." : "The module needs a memory.", nameof(memory));
        }

        if (memory is not null && memory.Memory.ByteLength < MemorySize)
        {
            throw new ArgumentException($"The clone's memory has {memory.Memory.ByteLength} bytes; the template's guest sees {MemorySize}.", nameof(memory));
        }

        ulong[] globals = CaptureGlobals();
        var clone = new WasmtimeInstance(_module, _linker, options ?? _options);
        try
        {
            clone.Build(memory);
            clone.RestoreGlobals(globals);
            return clone;
        }
        catch
        {
            clone._memory = null; // the caller still owns the memory it passed
            clone.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Creates the store and the Wasmtime instance; over <paramref name="memory"/> (a clone, or a rebuild) or over a
    /// memory from the options' factory (a fresh instance, which the caller then initializes).
    /// </summary>
    private void Build(ILinearMemory? memory)
    {
        global::Wasmtime.Module compiled = _module.Compiled;
        var store = new Store(WasmtimeModule.Engine.Engine, this);
        MemoryRequest? request = null;
        try
        {
            store.SetEpochDeadline(1);
            store.SetEpochDeadlineCallback(OnEpoch);
            request = new MemoryRequest(
                memory is null ? (initial, max, reserved) => _options.Memory(initial, max, reserved) : (_, _, _) => memory,
                ownsGuestMemory: memory is null,
                grown: bytes => Volatile.Write(ref _memorySize, bytes));
            global::Wasmtime.Linker linker = _module.LinkerFor(_linker);
            Instance instance = WasmtimeEngine.WithMemories(request, () => linker.Instantiate(store, compiled));
            if (_module.Info.Memories.Count > 0 && request.Guest is null)
            {
                throw new InvalidOperationException("Wasmtime did not ask for the module's memory.");
            }

            lock (_lifecycle)
            {
                _store = store;
                _instance = instance;
                _memories = request;
                _memory = request.Guest?.Memory ?? _memory;
                _memorySize = request.Guest?.ByteLength ?? 0;
                _exportedMemory = _module.Info.Memories.Count > 0 ? instance.GetMemory(RewrittenModule.MemoryExport) : null;
                _globals = GlobalSlot.Bind(instance, _module.Info.Globals);
                _functions.Clear();
            }
        }
        catch (WasmtimeException e) when (request?.Failure is { } failure)
        {
            // Our memory callback refused (a memory with too small a reservation, a factory that threw): its exception.
            ReleaseStore(store, request, disposeMemory: memory is null);
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
            throw new InvalidOperationException("unreachable", e);
        }
        catch (TrapException e)
        {
            ReleaseStore(store, request, disposeMemory: memory is null);
            throw new WasmTrapException(TrapKinds.Of(e, this), "instantiate", inner: e);
        }
        catch
        {
            ReleaseStore(store, request, disposeMemory: memory is null);
            throw;
        }
    }

    private static void ReleaseStore(Store store, MemoryRequest? request, bool disposeMemory)
    {
        store.Dispose();
        if (disposeMemory)
        {
            request?.Guest?.Memory.Dispose();
        }

        request?.Dispose();
    }

    private ulong OnEpoch(Store store)
    {
        if (Volatile.Read(ref _interrupt) != 0)
        {
            throw new GuestInterruptedSignal();
        }

        return 1; // another instance was interrupted: run on until the next tick
    }

    /// <summary>Calls export <paramref name="name"/> under the owner check and trap mapping.</summary>
    internal void Call(string name, string function, ReadOnlySpan<ulong> args, Span<ulong> results)
    {
        Enter();
        try
        {
            if (Volatile.Read(ref _interrupt) != 0)
            {
                throw new WasmTrapException(TrapKind.Interrupted, function);
            }

            Function(name).InvokeUnchecked(args, results, function);
        }
        finally
        {
            Leave();
        }
    }

    internal void Enter()
    {
        int me = Environment.CurrentManagedThreadId;
        int owner = Interlocked.CompareExchange(ref _owner, me, 0);
        if (owner == DisposedOwner)
        {
            throw new ObjectDisposedException(nameof(WasmtimeInstance));
        }

        if (owner != 0 && owner != me)
        {
            throw new InvalidOperationException($"The instance is in use by thread {owner}; an instance runs one call at a time.");
        }

        if (_memories is { } m && _memory is not null && m.ScratchMap == null && m.Map != null && m.Map != _memory.Memory.DirtyMap)
        {
            throw new InvalidOperationException("The memory's store-barrier tracker changed since the instance was created; its marks would be lost.");
        }

        _depth++;
    }

    internal void Leave()
    {
        if (--_depth == 0)
        {
            Volatile.Write(ref _owner, 0);
        }
    }

    internal Store Store => _store;

    /// <inheritdoc/>
    public IGuestFunction GetFunction(string name) => Function(name);

    private WasmtimeFunction Function(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_lifecycle)
        {
            if (!_functions.TryGetValue(name, out WasmtimeFunction? function))
            {
                WasmExport export = _module.Info.Exports.FirstOrDefault(e => e.Kind == WasmExternKind.Function && e.Name == name)
                    ?? (name == RewrittenModule.InitExport ? new WasmExport(name, WasmExternKind.Function, 0, new WasmFunctionType([], [])) : null)
                    ?? throw new KeyNotFoundException($"The module exports no function named \"{name}\".");
                Function native = _instance.GetFunction(name) ?? throw new KeyNotFoundException($"The module exports no function named \"{name}\".");
                function = new WasmtimeFunction(this, name, export.FunctionType!, native);
                _functions[name] = function;
            }

            return function;
        }
    }

    /// <inheritdoc/>
    public void ResetHostState()
    {
        Wasi?.Reset();
        HostState?.Reset();
    }

    /// <inheritdoc/>
    public void Interrupt()
    {
        if (_disposed)
        {
            return;
        }

        Interlocked.Exchange(ref _interrupt, 1);
        WasmtimeModule.Engine.Engine.IncrementEpoch();
    }

    /// <inheritdoc/>
    public void ClearInterrupt() => Interlocked.Exchange(ref _interrupt, 0);

    /// <inheritdoc/>
    public bool IsInterruptRequested => !_disposed && Volatile.Read(ref _interrupt) != 0;

    /// <summary><see cref="_owner"/> once disposal has begun: no call can enter after it.</summary>
    private const int DisposedOwner = -1;

    /// <summary>Disposes the store, then the memory.</summary>
    /// <exception cref="InvalidOperationException">A call is running in the instance (on another thread, or this one).</exception>
    public void Dispose()
    {
        // Ownership and disposal are one state: taking the owner slot for good makes every later Enter fail.
        int owner = Interlocked.CompareExchange(ref _owner, DisposedOwner, 0);
        if (owner == DisposedOwner)
        {
            return;
        }

        if (owner != 0)
        {
            throw new InvalidOperationException($"Cannot dispose the instance while thread {owner} is inside it (a call is in progress).");
        }

        Release();
    }

    private void Release()
    {
        lock (_lifecycle)
        {
            _disposed = true;
        }

        _store?.Dispose();
        _memory?.Dispose();
        _memories?.Dispose();
        _memory = null;
    }

    /// <summary>Thrown inside the epoch callback to stop an interrupted guest; mapped to <see cref="TrapKind.Interrupted"/>.</summary>
    internal sealed class GuestInterruptedSignal() : Exception("interrupted");

    internal bool InterruptRequested => Volatile.Read(ref _interrupt) != 0;

}

using System.Runtime.InteropServices;
using CowWasm.Memory;

namespace CowWasm.Runtime.Native;

/// <summary>
/// A running instance of a <see cref="WasmModule"/>: its native instance struct, linear memory (from the
/// memory engine), globals and tables.
/// </summary>
/// <remarks>
/// <para><b>Threads:</b> an instance is entered by at most one thread at a time — a call from a second thread
/// while another is inside throws <see cref="InvalidOperationException"/> (enforced, not just documented). The
/// same thread may re-enter (a host function calling back into the guest). Different instances run on
/// different threads concurrently; trap state is thread-local in the runtime.</para>
/// <para><b>Memory:</b> <see cref="Memory"/> and spans from it are valid until the instance is disposed; the
/// address never moves, also when the guest grows its memory.</para>
/// </remarks>
public sealed unsafe partial class WasmInstance : IGuestInstance
{
    private readonly WasmModule _module;
    private readonly (HostFunction Function, WasmFunctionType Type)[] _imports;
    private readonly InstanceOptions _options;
    private readonly GCHandle _self;
    private readonly Lock _nativeGate = new(); // Interrupt (any thread) against Release freeing the native instance
    private nint _native;
    private ILinearMemory? _memory;
    private int _guardSlot = -1;
    private int _owner;
    private int _depth;
    private bool _disposed;

    private WasmInstance(WasmModule module, (HostFunction, WasmFunctionType)[] imports, InstanceOptions options, ILinearMemory? memory)
    {
        _module = module;
        _imports = imports;
        _options = options;
        _memory = memory;
        _self = GCHandle.Alloc(this, GCHandleType.Normal);
        _native = (nint)NativeMemory.AllocZeroed((nuint)module.InstanceSize);
        Wasi = options.Wasi is { } wasi ? new Wasi.WasiState(wasi) : null;
    }

    /// <summary>The module.</summary>
    public WasmModule Module => _module;

    /// <summary>The linear memory, or null if the module has none.</summary>
    public PageMemory? Memory => _memory?.Memory;

    /// <summary>Where the memory lives (standalone, leader, replica…).</summary>
    public ILinearMemory? LinearMemory => _memory;

    /// <summary>WASI state (captured stdout/stderr…) when the instance was created with WASI.</summary>
    public Wasi.WasiState? Wasi { get; }

    /// <inheritdoc/>
    public IHostState? HostState { get; set; }

    /// <inheritdoc/>
    public void ResetHostState()
    {
        Wasi?.Reset();
        HostState?.Reset();
    }

    /// <summary>The guest-visible memory size in bytes (a multiple of 64 KiB).</summary>
    public long MemorySize => _memory is null ? 0 : _module.EntryPoints.Memory(_native)->Size;

    internal nint Context => GCHandle.ToIntPtr(_self);

    internal Exception? PendingException { get; set; }

    internal int PendingExitCode { get; set; }

    internal static WasmInstance Create(WasmModule module, (HostFunction, WasmFunctionType)[] imports, InstanceOptions options)
    {
        WasmInstance? instance = null;
        try
        {
            instance = new WasmInstance(module, imports, options, memory: null);
            WasmInstance created = instance;
            created.Guarded("instantiate", new InstantiateCall());
            ((ArtifactAbi.InstanceState*)created._native)->TablesChanged = 0; // the tables instantiation made are the start
            return created;
        }
        catch
        {
            if (instance is null)
            {
                module.RemoveInstance();
            }
            else
            {
                instance.Release();
            }

            throw;
        }
    }

    /// <summary>
    /// A new instance of the same module in O(1): the template's globals and tables are copied, its import
    /// bindings reused, and <paramref name="memory"/> becomes the clone's linear memory as it is — no data
    /// segments run, no memory is copied. The caller provides memory that holds the state the clone should
    /// see (typically a replica view of the base the template's memory committed to).
    /// </summary>
    /// <exception cref="ArgumentException">The memory is shorter than the template's, or missing/extra.</exception>
    public WasmInstance Clone(ILinearMemory? memory, InstanceOptions? options = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if ((memory is null) != (_memory is null))
        {
            throw new ArgumentException(_memory is null ? "The module has no memory." : "The module needs a memory.", nameof(memory));
        }

        if (memory is not null && memory.Memory.ByteLength < MemorySize)
        {
            throw new ArgumentException(
                $"The clone's memory has {memory.Memory.ByteLength} bytes; the template's guest sees {MemorySize}.", nameof(memory));
        }

        if (memory is not null && memory.Memory.ReservedBytes < _module.MemoryReservationBytes)
        {
            throw new ArgumentException(
                $"The clone's memory reserves {memory.Memory.ReservedBytes} bytes; this guard-page module's code needs " +
                $"{_module.MemoryReservationBytes} (its loads and stores are not checked in software).", nameof(memory));
        }

        _module.AddInstance();
        WasmInstance clone;
        try
        {
            clone = new WasmInstance(_module, _imports, options ?? _options, memory);
        }
        catch
        {
            _module.RemoveInstance();
            throw;
        }

        try
        {
            clone.RegisterGuard();
            Guarded("clone", new CloneCall(clone, memory is null ? null : memory.Memory.Pointer));

            clone.RefreshMemorySize();
            return clone;
        }
        catch
        {
            clone.UnregisterGuard();
            clone._memory = null; // the caller still owns the memory it passed
            clone.Release();
            throw;
        }
    }

    IGuestInstance IGuestInstance.Clone(ILinearMemory? memory, InstanceOptions? options) => Clone(memory, options);

    /// <summary>
    /// Makes the guest's idea of its memory size match <see cref="Memory"/> (after the memory was resized
    /// from outside, e.g. a replica following a commit that grew the leader).
    /// </summary>
    public void RefreshMemorySize()
    {
        if (_memory is null)
        {
            return;
        }

        ArtifactAbi.WasmRtMemory* memory = _module.EntryPoints.Memory(_native);
        long wasmPages = _memory.Memory.ByteLength / ILinearMemory.WasmPageSize;
        memory->Data = _memory.Memory.Pointer;
        memory->Dirty = _memory.Memory.DirtyMap;
        memory->Pages = (uint)wasmPages;
        memory->Size = (uint)(wasmPages * ILinearMemory.WasmPageSize);
    }

    /// <summary>A span over guest memory [<paramref name="address"/>, +<paramref name="length"/>), bounds-checked against the guest's size.</summary>
    public Span<byte> GetMemory(long address, int length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        PageMemory memory = Memory ?? throw new InvalidOperationException("The module has no memory.");
        if (address < 0 || length < 0 || address + length > MemorySize)
        {
            throw new ArgumentOutOfRangeException(nameof(address), $"[{address}, {address + length}) lies outside the guest's {MemorySize} bytes.");
        }

        return memory.GetSpan(address, length);
    }

    /// <summary>A read-only span over guest memory (bounds-checked; unlike <see cref="GetMemory"/> it counts as no write).</summary>
    public ReadOnlySpan<byte> ReadMemory(long address, int length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        PageMemory memory = Memory ?? throw new InvalidOperationException("The module has no memory.");
        if (address < 0 || length < 0 || address + length > MemorySize)
        {
            throw new ArgumentOutOfRangeException(nameof(address), $"[{address}, {address + length}) lies outside the guest's {MemorySize} bytes.");
        }

        return memory.ReadSpan(address, length);
    }

    internal byte* AllocateLinearMemory(uint initialWasmPages, uint maxWasmPages, out byte* dirtyMap)
    {
        if (_memory is not null)
        {
            throw new InvalidOperationException("The instance already has a memory.");
        }

        long max = Math.Min(maxWasmPages, 65536u) * (long)ILinearMemory.PagesPerWasmPage;
        long initial = initialWasmPages * (long)ILinearMemory.PagesPerWasmPage;
        ILinearMemory memory = _options.Memory(initial, max, _module.MemoryReservationBytes);
        if (memory.Memory.ReservedBytes < _module.MemoryReservationBytes || memory.Memory.ByteLength < Pages.ToBytes(initial))
        {
            long reserved = memory.Memory.ReservedBytes, mapped = memory.Memory.ByteLength;
            memory.Dispose();
            throw new InvalidOperationException(
                $"The memory factory returned {mapped} mapped bytes in a {reserved}-byte reservation; the module needs " +
                $"{Pages.ToBytes(initial)} mapped in at least {_module.MemoryReservationBytes}.");
        }

        _memory = memory;
        RegisterGuard();
        dirtyMap = _memory.Memory.DirtyMap; // the store barrier must see instantiation's data segments too
        return _memory.Memory.Pointer;
    }

    /// <summary>A guard-page module's memory becomes a region the fault handler may claim faults in.</summary>
    private void RegisterGuard()
    {
        if (_memory is not null && _module.BoundsChecks == BoundsChecks.GuardPages && _guardSlot < 0)
        {
            _guardSlot = GuardPages.Register((nint)_memory.Memory.Pointer, _memory.Memory.ReservedBytes);
        }
    }

    private void UnregisterGuard()
    {
        if (_guardSlot >= 0)
        {
            GuardPages.Unregister(_guardSlot);
            _guardSlot = -1;
        }
    }

    /// <summary>
    /// Stops the guest code running in this instance, from any thread: the call traps with
    /// <see cref="TrapKind.Interrupted"/> at its next function entry or loop back-edge (loops without calls included),
    /// also when it is inside a host function that called back into the guest. The request stays until
    /// <see cref="ClearInterrupt"/>: a call made meanwhile traps at once. Use
    /// <see cref="GuestExtensions.RunInterruptible{T}"/> to tie it to a <see cref="CancellationToken"/>.
    /// </summary>
    /// <remarks>Thread-safe; a no-op after disposal. A guest blocked inside a host function is stopped when the host
    /// function returns.</remarks>
    public void Interrupt()
    {
        lock (_nativeGate)
        {
            if (_native == 0)
            {
                return;
            }

            // SAFETY: _native stays allocated while the gate is held (Release frees it under the gate).
            // The flag before the floor: cw_enter stores the floor, then reads the flag (cowwasm-rt.c).
            var state = (ArtifactAbi.InstanceState*)_native;
            Interlocked.Exchange(ref state->Interrupt, 1u);
            Interlocked.Exchange(ref state->Floor, nuint.MaxValue);
        }
    }

    /// <summary>Withdraws an <see cref="Interrupt"/> request, so later calls run. Call it when no call is running.</summary>
    public void ClearInterrupt()
    {
        lock (_nativeGate)
        {
            if (_native != 0)
            {
                Interlocked.Exchange(ref ((ArtifactAbi.InstanceState*)_native)->Interrupt, 0u);
            }
        }
    }

    /// <summary>Whether an <see cref="Interrupt"/> request is pending.</summary>
    public bool IsInterruptRequested
    {
        get
        {
            lock (_nativeGate)
            {
                return _native != 0 && Volatile.Read(ref ((ArtifactAbi.InstanceState*)_native)->Interrupt) != 0;
            }
        }
    }

    internal bool GrowLinearMemory(long newWasmPages) =>
        _memory is not null && _memory.TryGrow(newWasmPages * ILinearMemory.PagesPerWasmPage);

    internal void InvokeImport(uint index, ulong* args, ulong* results)
    {
        (HostFunction function, WasmFunctionType type) = _imports[index];
        function(this, new ReadOnlySpan<ulong>(args, type.Parameters.Count), new Span<ulong>(results, type.Results.Count));
    }

    /// <summary>Calls export <paramref name="index"/> with slot arguments; throws on trap.</summary>
    internal void Invoke(int index, string name, ulong* args, ulong* results)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Guarded(name, new ExportCall(_module.EntryPoints.Exports[index], args, results));
    }

    /// <summary>
    /// The trap boundary, the one place a call into the artifact is made: enters the instance (one thread at a time,
    /// re-entrant), runs the trampoline — which returns a status instead of unwinding, so no longjmp crosses managed
    /// frames — and turns a non-zero status into a <see cref="WasmTrapException"/>. Generic over a struct so the call
    /// allocates nothing.
    /// </summary>
    private void Guarded<TCall>(string function, TCall call)
        where TCall : struct, INativeCall
    {
        Enter();
        int status;
        try
        {
            status = call.Run(this);
        }
        finally
        {
            Exit();
        }

        if (status != 0)
        {
            throw TrapFor(status, function);
        }
    }

    /// <summary>A trampoline call: returns 0 or a trap/status code (<see cref="ArtifactAbi"/>).</summary>
    private interface INativeCall
    {
        int Run(WasmInstance self);
    }

    private readonly struct InstantiateCall : INativeCall
    {
        public int Run(WasmInstance self) => self._module.EntryPoints.Instantiate(self._native, self.Context);
    }

    private readonly struct CloneCall(WasmInstance clone, byte* memoryData) : INativeCall
    {
        public int Run(WasmInstance self) =>
            self._module.EntryPoints.Clone(self._native, clone._native, clone.Context, memoryData);
    }

    private readonly struct ExportCall(nint trampoline, ulong* args, ulong* results) : INativeCall
    {
        public int Run(WasmInstance self) =>
            ((delegate* unmanaged<nint, nint, ulong*, ulong*, int>)trampoline)(self._native, self.Context, args, results);
    }

    private WasmTrapException TrapFor(int status, string function)
    {
        Exception? pending = PendingException;
        PendingException = null;
        if (status == (int)TrapKind.OutOfBounds && _memory is not null && Math.Min(MemorySize, _memory.Memory.ByteLength) > 0)
        {
            // A store that straddles the end of memory faults on the guard, but the CPU may first have taken the
            // copy-on-write fault on the last page: a private copy no barrier mark reports, which would shadow later
            // commits in a replica. Reporting the page lets the reset or rollback drop it.
            _memory.Memory.MarkWritten(Math.Min(MemorySize, _memory.Memory.ByteLength) - 1, 1);
        }

        return status switch
        {
            // A nested call (host function → guest) was interrupted and the host function let it escape: the whole
            // call was interrupted, not failed by the host.
            (int)TrapKind.HostError when pending is WasmTrapException { Kind: TrapKind.Interrupted } =>
                new WasmTrapException(TrapKind.Interrupted, function, inner: pending),
            (int)TrapKind.Exit => new WasmTrapException(TrapKind.Exit, function, PendingExitCode),
            (int)TrapKind.HostError => new WasmTrapException(TrapKind.HostError, function, inner: pending),
            _ when Enum.IsDefined((TrapKind)status) => new WasmTrapException((TrapKind)status, function, inner: pending),
            _ => new WasmTrapException(TrapKind.HostError, function,
                inner: new InvalidOperationException($"The artifact returned unknown status {status}.")),
        };
    }

    /// <summary><see cref="_owner"/> once disposal has begun: no call can enter after it.</summary>
    private const int DisposedOwner = -1;

    private void Enter()
    {
        int me = Environment.CurrentManagedThreadId;
        int owner = Interlocked.CompareExchange(ref _owner, me, 0);
        if (owner == DisposedOwner)
        {
            throw new ObjectDisposedException(nameof(WasmInstance));
        }

        if (owner != 0 && owner != me)
        {
            throw new InvalidOperationException(
                $"The instance is in use by thread {owner}; an instance is entered by one thread at a time.");
        }

        _depth++;
    }

    private void Exit()
    {
        if (--_depth == 0)
        {
            Volatile.Write(ref _owner, 0);
        }
    }

    /// <summary>Frees the native instance, its tables and its memory. Throws if a call is in progress.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        // Ownership and disposal are one state: taking the owner slot for good makes every later Enter fail, so a call
        // that passed its disposed check cannot run on freed native memory.
        int owner = Interlocked.CompareExchange(ref _owner, DisposedOwner, 0);
        if (owner == DisposedOwner)
        {
            return;
        }

        if (owner != 0)
        {
            throw new InvalidOperationException(
                $"Cannot dispose the instance while thread {owner} is inside it (a call is in progress).");
        }

        Release();
    }

    private void Release()
    {
        _disposed = true;
        UnregisterGuard();
        lock (_nativeGate)
        {
            if (_native != 0)
            {
                _module.EntryPoints.Free(_native);
                NativeMemory.Free((void*)_native);
                _native = 0;
            }
        }

        _memory?.Dispose();
        _memory = null;
        if (_self.IsAllocated)
        {
            _self.Free();
        }

        _module.RemoveInstance();
    }
}

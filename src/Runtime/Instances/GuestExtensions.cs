using System.Runtime.CompilerServices;

namespace CowWasm.Runtime;

/// <summary>Typed, allocation-light delegates over <see cref="IGuestFunction"/> (the shape of wasmtime-dotnet's).</summary>
public static unsafe class GuestExtensions
{
    /// <summary>
    /// Runs <paramref name="body"/> (calls into <paramref name="instance"/>) so that cancelling
    /// <paramref name="cancellationToken"/> interrupts the guest (<see cref="IGuestInstance.Interrupt"/>). On the way
    /// out the request is withdrawn after the token's callback can no longer run, so no interruption leaks into a later
    /// call. Call it from outside the guest (not from a host function).
    /// </summary>
    /// <exception cref="OperationCanceledException">The token was cancelled before the body ran, or the guest trapped
    /// with <see cref="TrapKind.Interrupted"/> because it was (the trap is the inner exception).</exception>
    public static T RunInterruptible<T>(this IGuestInstance instance, Func<T> body, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(instance);
        ArgumentNullException.ThrowIfNull(body);
        cancellationToken.ThrowIfCancellationRequested();
        if (!cancellationToken.CanBeCanceled)
        {
            return body();
        }

        try
        {
            using (cancellationToken.UnsafeRegister(static state => ((IGuestInstance)state!).Interrupt(), instance))
            {
                return body();
            }
        }
        catch (WasmTrapException trap) when (trap.Kind == TrapKind.Interrupted && cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException("The guest call was cancelled; the guest was interrupted.", trap, cancellationToken);
        }
        finally
        {
            // Disposing the registration above waited for a callback in flight; nothing can set the flag after this.
            instance.ClearInterrupt();
        }
    }

    /// <summary>A typed delegate for a () → () export.</summary>
    public static Action GetAction(this IGuestInstance instance, string name)
    {
        IGuestFunction f = Typed(instance, name, [], []);
        return () => f.Invoke([], []);
    }

    /// <summary>A typed delegate for a (T1) → () export.</summary>
    public static Action<T1> GetAction<T1>(this IGuestInstance instance, string name)
        where T1 : unmanaged
    {
        IGuestFunction f = Typed(instance, name, [KindOf<T1>()], []);
        return a1 => f.Invoke([ToSlot(a1)], []);
    }

    /// <summary>A typed delegate for a () → TResult export.</summary>
    public static Func<TResult> GetFunction<TResult>(this IGuestInstance instance, string name)
        where TResult : unmanaged
    {
        IGuestFunction f = Typed(instance, name, [], [KindOf<TResult>()]);
        return () =>
        {
            Span<ulong> r = stackalloc ulong[1];
            f.Invoke([], r);
            return FromSlot<TResult>(r[0]);
        };
    }

    /// <summary>A typed delegate for a (T1) → TResult export.</summary>
    public static Func<T1, TResult> GetFunction<T1, TResult>(this IGuestInstance instance, string name)
        where T1 : unmanaged
        where TResult : unmanaged
    {
        IGuestFunction f = Typed(instance, name, [KindOf<T1>()], [KindOf<TResult>()]);
        return a1 =>
        {
            Span<ulong> r = stackalloc ulong[1];
            f.Invoke([ToSlot(a1)], r);
            return FromSlot<TResult>(r[0]);
        };
    }

    /// <summary>A typed delegate for a (T1, T2) → TResult export.</summary>
    public static Func<T1, T2, TResult> GetFunction<T1, T2, TResult>(this IGuestInstance instance, string name)
        where T1 : unmanaged
        where T2 : unmanaged
        where TResult : unmanaged
    {
        IGuestFunction f = Typed(instance, name, [KindOf<T1>(), KindOf<T2>()], [KindOf<TResult>()]);
        return (a1, a2) =>
        {
            Span<ulong> r = stackalloc ulong[1];
            f.Invoke([ToSlot(a1), ToSlot(a2)], r);
            return FromSlot<TResult>(r[0]);
        };
    }

    /// <summary>A typed delegate for a (T1, T2, T3) → TResult export.</summary>
    public static Func<T1, T2, T3, TResult> GetFunction<T1, T2, T3, TResult>(this IGuestInstance instance, string name)
        where T1 : unmanaged
        where T2 : unmanaged
        where T3 : unmanaged
        where TResult : unmanaged
    {
        IGuestFunction f = Typed(instance, name, [KindOf<T1>(), KindOf<T2>(), KindOf<T3>()], [KindOf<TResult>()]);
        return (a1, a2, a3) =>
        {
            Span<ulong> r = stackalloc ulong[1];
            f.Invoke([ToSlot(a1), ToSlot(a2), ToSlot(a3)], r);
            return FromSlot<TResult>(r[0]);
        };
    }

    private static IGuestFunction Typed(IGuestInstance instance, string name, WasmValueKind[] parameters, WasmValueKind[] results)
    {
        IGuestFunction f = instance.GetFunction(name);
        if (!f.Type.Parameters.SequenceEqual(parameters) || !f.Type.Results.SequenceEqual(results))
        {
            throw new ArgumentException(
                $"Export \"{name}\" is {f.Type}, not ({string.Join(", ", parameters)}) -> ({string.Join(", ", results)}).");
        }

        return f;
    }

    private static WasmValueKind KindOf<T>()
        where T : unmanaged =>
        typeof(T) == typeof(int) || typeof(T) == typeof(uint) ? WasmValueKind.I32
        : typeof(T) == typeof(long) || typeof(T) == typeof(ulong) ? WasmValueKind.I64
        : typeof(T) == typeof(float) ? WasmValueKind.F32
        : typeof(T) == typeof(double) ? WasmValueKind.F64
        : throw new NotSupportedException($"{typeof(T)} is not a Wasm value type (use int, uint, long, ulong, float or double).");

    private static ulong ToSlot<T>(T value)
        where T : unmanaged =>
        sizeof(T) == 4 ? Unsafe.As<T, uint>(ref value) : Unsafe.As<T, ulong>(ref value);

    private static T FromSlot<T>(ulong slot)
        where T : unmanaged
    {
        if (sizeof(T) == 4)
        {
            uint narrow = (uint)slot;
            return Unsafe.As<uint, T>(ref narrow);
        }

        return Unsafe.As<ulong, T>(ref slot);
    }
}

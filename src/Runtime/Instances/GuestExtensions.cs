using System.Runtime.CompilerServices;

namespace CowWasm.Runtime;

/// <summary>Typed, allocation-light delegates over <see cref="IGuestFunction"/> (the shape of wasmtime-dotnet's).</summary>
public static unsafe class GuestExtensions
{
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

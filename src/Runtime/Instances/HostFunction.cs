namespace CowWasm.Runtime;

/// <summary>
/// A host function: reads its arguments from <paramref name="args"/> (one 64-bit slot each; f32/f64 as their
/// bit patterns) and writes results to <paramref name="results"/>. Throwing traps the guest with
/// <see cref="TrapKind.HostError"/> (or exits it, for <see cref="GuestExitException"/>); the exception never
/// crosses native frames.
/// </summary>
public delegate void HostFunction(IGuestInstance caller, ReadOnlySpan<ulong> args, Span<ulong> results);

namespace CowWasm.Runtime.Native;

/// <summary>How an artifact keeps guest loads and stores inside linear memory (<see cref="ArtifactOptions.BoundsChecks"/>).</summary>
public enum BoundsChecks
{
    /// <summary>
    /// No check in the generated code: the memory lives in a reservation of 8 GiB + 64 KiB (no 32-bit address plus
    /// offset can leave it), <c>PROT_NONE</c> beyond the live length, and an access there faults. The process's one
    /// SIGSEGV/SIGBUS handler (<see cref="GuardPages"/>) turns such a fault into <see cref="TrapKind.OutOfBounds"/> when
    /// the thread is running guest code and the address is in a guest reservation, and passes every other signal to
    /// the handler installed before it (the .NET runtime's). Bulk operations (<c>memory.copy</c>, <c>fill</c>,
    /// <c>init</c>) are still range-checked.
    /// </summary>
    GuardPages,

    /// <summary>Every load and store compares its address with the memory's size: no signal handler, smaller reservations.</summary>
    Software,
}

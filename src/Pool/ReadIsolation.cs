namespace CowWasm.Pool;

/// <summary>What a read on a <see cref="GuestPool"/> replica may observe of earlier reads.</summary>
/// <remarks>
/// At both levels a read observes exactly one committed state — the newest commit when it started — and never a
/// write transaction's uncommitted changes, a rolled-back write, or part of a commit: commits run alone under the
/// pool's write gate and reach every replica before the next read starts. Host state (captured WASI output,
/// open files) is reset after every read at both levels.
/// </remarks>
public enum ReadIsolation
{
    /// <summary>
    /// Every read starts from the committed state: its changes to memory, memory size and globals are discarded
    /// when it ends (the default).
    /// </summary>
    PerRead,

    /// <summary>
    /// A replica keeps what its reads wrote (memory, grown memory, globals) until the next commit reaches it; the
    /// pool resets it just before that commit becomes visible. A read may therefore observe the effects of earlier
    /// reads that ran on the same replica since the last commit — scratch, caches, even a clause asserted inside a
    /// read — but which replica serves a read is not specified, so it cannot rely on them. A read that throws or
    /// traps is reset at once. The cost of the resets moves from every read to every commit (all replicas that
    /// served a read since the last commit).
    /// </summary>
    PerCommit,
}

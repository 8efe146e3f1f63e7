namespace CowWasm.Runtime;

/// <summary>
/// State that host functions keep per instance (<see cref="IGuestInstance.HostState"/>). A transaction that is
/// undone (a pool's read, a rolled-back write) resets it with the guest's memory, so nothing leaks into the next.
/// </summary>
public interface IHostState
{
    /// <summary>Returns to the state a fresh instance starts with.</summary>
    void Reset();
}

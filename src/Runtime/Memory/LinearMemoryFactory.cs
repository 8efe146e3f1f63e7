namespace CowWasm.Runtime;

/// <summary>
/// Creates the linear memory for a new instance: sizes in 4 KiB pages. The memory must reserve at least
/// <paramref name="reservedBytes"/> of address space (<see cref="CowWasm.Memory.PageMemory.ReservedBytes"/>): a
/// guard-page module asks for the native backend's guard-page reservation (or Wasmtime's reservation plus guard) and refuses a memory with less (its guest code
/// does not check addresses); a software-checked module asks for 0.
/// </summary>
public delegate ILinearMemory LinearMemoryFactory(long initialPageCount, long maxPageCount, long reservedBytes);

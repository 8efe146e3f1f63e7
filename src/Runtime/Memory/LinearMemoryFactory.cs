namespace CowWasm.Runtime;

/// <summary>Creates the linear memory for a new instance: sizes in 4 KiB pages.</summary>
public delegate ILinearMemory LinearMemoryFactory(long initialPageCount, long maxPageCount);

using CowWasm.Memory;
using CowWasm.Memory.Images;

namespace CowWasm.Pool;

/// <summary>
/// A pool snapshot is unusable: the page image is damaged (bad magic, version, checksum, truncated data), or what
/// it records does not fit the module (another module, globals, memory length).
/// </summary>
public sealed class SnapshotFormatException(string path, string problem, Exception? inner = null)
    : PageImageFormatException(path, problem, inner);

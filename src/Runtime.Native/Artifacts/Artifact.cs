namespace CowWasm.Runtime.Native;

/// <summary>A compiled artifact on disk.</summary>
/// <param name="LibraryPath">The shared object.</param>
/// <param name="Key">The cache key (hash of wasm bytes, runtime version and compiler flags).</param>
/// <param name="FromCache">Whether it was found in the cache rather than compiled now.</param>
/// <param name="CompileTime">Time spent compiling (zero on a cache hit).</param>
/// <param name="LibraryBytes">Size of the shared object.</param>
public sealed record Artifact(string LibraryPath, string Key, bool FromCache, TimeSpan CompileTime, long LibraryBytes);

namespace CowWasm.Runtime.Native;

/// <summary>
/// Puts the store barrier into wasm2c's output: every store (the little-endian <c>DEFINE_STORE</c> macro behind all
/// nine store instructions), <c>memory.copy</c>, <c>memory.init</c> and data segments (<c>LOAD_DATA</c>) mark the
/// pages they wrote in <c>wasm_rt_memory_t.dirty</c> with <c>cw_mark_store</c> / <c>cw_mark</c>, after their bounds check; <c>memory.fill</c>
/// becomes <c>cw_fill</c>, which writes and marks only the pages whose bytes differ from the value (wasm-rt.h).
/// The edits are textual on wasm2c 1.0.32's output: each must match exactly once, or the build fails saying so
/// rather than produce an artifact whose tracker misses writes.
/// </summary>
internal static class StoreBarrier
{
    private static readonly (string Find, string Replace, string What)[] s_edits =
    [
        ("    wasm_rt_memcpy(&mem->data[addr], &wrapped, sizeof(t1));            \\\n",
         "    wasm_rt_memcpy(&mem->data[addr], &wrapped, sizeof(t1));            \\\n    cw_mark_store(mem, addr, sizeof(t1));                              \\\n",
         "the little-endian DEFINE_STORE"),
        ("    load_data(&(m.data[o]), i, s); \\\n",
         "    load_data(&(m.data[o]), i, s); \\\n    cw_mark((&m), o, s);           \\\n",
         "the little-endian LOAD_DATA (memory.init, data segments)"),
        ("  RANGE_CHECK(mem, d, n);\n  memset(mem->data + d, val, n);\n",
         "  RANGE_CHECK(mem, d, n);\n  cw_fill(mem, d, val, n);\n",
         "memory_fill"),
        ("  memmove(dest->data + dest_addr, src->data + src_addr, n);\n",
         "  memmove(dest->data + dest_addr, src->data + src_addr, n);\n  cw_mark(dest, dest_addr, n);\n",
         "memory_copy"),
    ];

    /// <summary>
    /// Returns <paramref name="source"/> (wasm2c's C) unchanged but for the exported marker
    /// <see cref="ArtifactAbi.NoStoreBarrier"/>, which tells the loader that guest stores do not mark pages.
    /// </summary>
    public static string Omit(string source) =>
        source + $"\n/* Built without the CowWasm store barrier. */\n__attribute__((visibility(\"default\"))) const int {ArtifactAbi.NoStoreBarrier} = 1;\n";

    /// <summary>Returns <paramref name="source"/> (wasm2c's C) with the barrier in place.</summary>
    /// <exception cref="ArtifactCompilationException">wasm2c's output does not have the shape these edits expect.</exception>
    public static string Insert(string source)
    {
        foreach ((string find, string replace, string what) in s_edits)
        {
            int at = source.IndexOf(find, StringComparison.Ordinal);
            int count = 0;
            for (int i = at; i >= 0; i = source.IndexOf(find, i + find.Length, StringComparison.Ordinal))
            {
                count++;
            }

            if (count == 1)
            {
                source = string.Concat(source.AsSpan(0, at), replace, source.AsSpan(at + find.Length));
            }
            else if (count > 1 || what.StartsWith("the little-endian", StringComparison.Ordinal))
            {
                throw new ArtifactCompilationException(
                    $"wasm2c's output has {count} copies of {what} where the store barrier expects one: a wabt other than 1.0.32? " +
                    $"Run `wasm2c --version`; CowWasm's store barrier is written against 1.0.32's output.");
            }

            // memory_fill / memory_copy are only emitted for modules that use bulk memory: none is fine.
        }

        return source;
    }
}

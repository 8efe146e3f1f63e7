using System.Text.RegularExpressions;

namespace CowWasm.Runtime.Native;

/// <summary>
/// Hooks the runtime into wasm2c's output (1.0.32), besides the store barrier: the per-instance runtime state
/// (<c>cw_instance_state_t</c>, wasm-rt.h) becomes the first member of the instance struct; function prologues and
/// check the stack floor (one compare, which an interruption also trips) through the instance instead of counting depth in thread-local storage; every loop
/// back-edge polls for an interruption; every table mutation and segment drop marks the instance's tables changed (so
/// a pool restores tables only after the reads and writes that changed them). Like <see cref="StoreBarrier"/>, each edit must find exactly what it expects,
/// or the build fails naming it instead of producing an artifact that cannot be interrupted.
/// </summary>
internal static partial class RuntimeHooks
{
    private const string InstanceStructOpening = "typedef struct " + "Z_" + GlueGenerator.ModuleName + "_instance_t {\n";

    /// <summary>The member the header edit adds; <see cref="GlueGenerator"/> skips it when it reads the fields.</summary>
    public const string StateMember = "cw_instance_state_t cw_state;";

    private const string Prologue =
        "#if WASM_RT_USE_STACK_DEPTH_COUNT\n" +
        "#define FUNC_PROLOGUE                                            \\\n" +
        "  if (++wasm_rt_call_stack_depth > WASM_RT_MAX_CALL_STACK_DEPTH) \\\n" +
        "    TRAP(EXHAUSTION);\n" +
        "\n" +
        "#define FUNC_EPILOGUE --wasm_rt_call_stack_depth\n";

    private const string HookedPrologue =
        "#if WASM_RT_USE_STACK_DEPTH_COUNT\n" +
        "#define FUNC_PROLOGUE CW_FUNC_PROLOGUE(instance)\n" +
        "#define FUNC_EPILOGUE CW_FUNC_EPILOGUE(instance)\n";

    /// <summary>wasm2c's header with the state member first in the instance struct.</summary>
    /// <exception cref="ArtifactCompilationException">The header does not have 1.0.32's shape.</exception>
    public static string EditHeader(string header) =>
        ReplaceOnce(header, InstanceStructOpening, InstanceStructOpening + "  " + StateMember + "\n", "the instance struct");

    /// <summary>wasm2c's C with the hooked prologue and, when <paramref name="pollLoops"/>, a poll at every loop back-edge.</summary>
    /// <exception cref="ArtifactCompilationException">The C does not have 1.0.32's shape.</exception>
    public static string EditSource(string source, bool pollLoops)
    {
        source = ReplaceOnce(source, Prologue, HookedPrologue, "FUNC_PROLOGUE");
        // table.set/fill/copy/init and table.grow call these with `&instance->…` (their definitions take other
        // arguments); data.drop and elem.drop assign `true` to the segment's flag. A comma expression marks first.
        source = TableMutation().Replace(source, "(CW_MARK_TABLES(instance), $1)(&instance->");
        source = SegmentDrop().Replace(source, "(CW_MARK_TABLES(instance), $1 = true);");
        // wasm2c names loop labels w2c_L<n> (blocks are w2c_B<n>): a goto to one is a back-edge.
        return pollLoops ? LoopBranch().Replace(source, "{ CW_LOOP_POLL(instance) goto $1; }") : source;
    }

    private static string ReplaceOnce(string text, string find, string replace, string what)
    {
        int at = text.IndexOf(find, StringComparison.Ordinal);
        if (at < 0 || text.IndexOf(find, at + find.Length, StringComparison.Ordinal) >= 0)
        {
            throw new ArtifactCompilationException(
                $"wasm2c's output does not have exactly one {what} of the shape CowWasm's runtime hooks expect: a wabt other than " +
                "1.0.32? Run `wasm2c --version`.");
        }

        return string.Concat(text.AsSpan(0, at), replace, text.AsSpan(at + find.Length));
    }

    [GeneratedRegex(@"\b((?:funcref|externref)_table_(?:set|fill|copy|init)|wasm_rt_grow_(?:funcref|externref)_table)\(&instance->")]
    private static partial Regex TableMutation();

    [GeneratedRegex(@"\b(instance->(?:data|elem)_segment_dropped_\w+) = true;")]
    private static partial Regex SegmentDrop();

    [GeneratedRegex(@"\bgoto (w2c_L\d+);")]
    private static partial Regex LoopBranch();
}

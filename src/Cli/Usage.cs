using CowWasm.Runtime.Native;
namespace CowWasm.Cli;

/// <summary>The command's help text.</summary>
internal static class Usage
{
    public const string Text = """
        usage: cowwasm COMMAND ...

          compile MODULE.wasm|.wat [VARIANT]...      compile the module's artifact ahead of time (or find it cached),
                                                      load it and instantiate it once; prints where it is and the costs
          trealla-setup [VARIANT]...                  fetch (npm pack trealla@0.17.10), verify and compile the Trealla guest
            VARIANT (each a separate cache entry, for measuring what a default costs):
              --no-store-barrier                      guest stores mark no dirty pages (no StoreBarrier tracker)
              --software-bounds-checks                every load/store compares its address (no guard pages)
              --no-loop-interrupt-checks              only function entries poll for interruption
              --no-signaling-nans                     gcc may fold x * 1.0 to x (signaling NaNs come out unquieted)
          prolog [--runtime R] [--snapshot FILE] [--consult TEXT]... GOAL...
                                                      run Prolog goals and print every answer: on a plain instance, or on
                                                      a pool started from a snapshot saved by PrologPool.SaveSnapshotAsync
          call MODULE.wasm|.wat [--runtime R] [--snapshot FILE] EXPORT[:ARG,ARG...]...
                                                      call i32/i64 exports and print `EXPORT(ARGS) = RESULT` per call: on a
                                                      plain instance, or on a pool's replica started from a snapshot
                                                      (imports other than WASI trap when called)
          snapshot-info FILE                          print a pool snapshot's header without mapping its pages

        --runtime R: wasmtime (default: Cranelift, compiles Trealla in about a second) or native (our wasm2c + gcc
        runtime: minutes to build Trealla once, cached). Snapshots load on either. compile and trealla-setup build the
        native runtime's artifacts.

        exit codes: 0 done, 1 failed (the error is printed), 2 bad usage
        """;

    public static int Print(TextWriter writer, int code)
    {
        writer.WriteLine(Text);
        return code;
    }

    /// <summary>Prints <paramref name="message"/> and the usage to stderr; returns 2.</summary>
    public static int Error(string message)
    {
        Console.Error.WriteLine($"cowwasm: {message}");
        return Print(Console.Error, 2);
    }
}

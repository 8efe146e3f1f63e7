using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using CowWasm.Pool.Wasi;
using CowWasm.Pool.Wasm;

namespace CowWasm.Bench;

/// <summary>
/// <c>trealla-smoke &lt;trealla.wasm&gt;</c>: drives the Trealla guest through the runtime as
/// shared/trealla-abi.md describes — consult <c>test(123).</c>, ask <c>test(X).</c> — and prints the answer
/// and timings. A probe for the Prolog driver, not the driver.
/// </summary>
internal static class TreallaSmoke
{
    public static int Run(string[] args)
    {
        byte[] wasm = File.ReadAllBytes(args[0]);
        using WasmModule module = WasmModule.Load(wasm);
        var linker = WasiPreview1.AddTo(new Linker(), module.Info)
            .Define("trealla", "host-call", [WasmValueKind.I32, WasmValueKind.I32, WasmValueKind.I32, WasmValueKind.I32, WasmValueKind.I32],
                [WasmValueKind.I32], (c, a, r) => r[0] = 0)
            .Define("trealla", "host-resume", [WasmValueKind.I32, WasmValueKind.I32, WasmValueKind.I32], [WasmValueKind.I32],
                (c, a, r) =>
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(c.GetMemory((uint)a[1], 4), 0);
                    r[0] = 0;
                });
        var clock = Stopwatch.StartNew();
        using WasmInstance guest = module.Instantiate(linker, new InstanceOptions { Wasi = new WasiConfiguration() });
        Console.WriteLine($"instantiate {clock.Elapsed.TotalMilliseconds:F2} ms, memory {guest.MemorySize:N0} B");
        int pl = (int)Call(guest, "pl_global");
        Call(guest, "set_opt", (uint)pl, 1);
        Console.WriteLine($"pl = {pl}");
        Console.WriteLine(Query(guest, pl, "user:'$load_chars'(\"test(123).\")."));
        for (int i = 0; i < 3; i++)
        {
            clock.Restart();
            string answer = Query(guest, pl, "js_ask(\"test(X).\").");
            Console.WriteLine($"{clock.Elapsed.TotalMicroseconds:F0} us: {answer}");
        }

        return 0;
    }

    private static ulong Call(WasmInstance g, string name, params ulong[] args)
    {
        WasmFunction f = g.GetFunction(name);
        Span<ulong> results = stackalloc ulong[Math.Max(1, f.Type.Results.Count)];
        f.Invoke(args, results[..f.Type.Results.Count]);
        return results[0];
    }

    private static string Query(WasmInstance g, int pl, string goal)
    {
        byte[] text = Encoding.UTF8.GetBytes(goal + "\0");
        uint p = (uint)Call(g, "canonical_abi_realloc", 0, 0, 1, (uint)text.Length);
        text.CopyTo(g.GetMemory(p, text.Length));
        uint slot = (uint)Call(g, "canonical_abi_realloc", 0, 0, 4, 4);
        uint outs = (uint)Call(g, "canonical_abi_realloc", 0, 0, 4, 16);
        Call(g, "pl_capture", (uint)pl);
        ulong ok = Call(g, "pl_query", (uint)pl, p, slot, 0);
        Call(g, "canonical_abi_free", p, (uint)text.Length, 1);
        Call(g, "pl_capture_read", (uint)pl, outs, outs + 4, outs + 8, outs + 12);
        uint outPtr = BinaryPrimitives.ReadUInt32LittleEndian(g.GetMemory(outs, 4));
        uint outLen = BinaryPrimitives.ReadUInt32LittleEndian(g.GetMemory(outs + 4, 4));
        string output = Encoding.UTF8.GetString(g.GetMemory(outPtr, (int)outLen));
        Call(g, "pl_capture_free", (uint)pl);
        if (ok == 1)
        {
            uint subq = BinaryPrimitives.ReadUInt32LittleEndian(g.GetMemory(slot, 4));
            Call(g, "pl_done", subq);
        }

        return $"ok={ok} output={output.Replace("\u0002", "<STX>").Replace("\u0003", "<ETX>").Trim()}";
    }
}

namespace CowWasm.Runtime.Wasmtime.Rewriting;

/// <summary>
/// Rewrites one function body for the store barrier: after every store to memory 0 the pages it wrote are marked in
/// the dirty map; <c>memory.fill</c>, <c>memory.copy</c> and <c>memory.init</c> go through the added functions (or are
/// followed by a range mark). Everything else is copied byte for byte.
/// </summary>
/// <remarks>
/// A store pops (address, value). The rewrite saves both in scratch locals added to the function, re-pushes them,
/// runs the original store and marks <c>(address + offset) &gt;&gt; 12</c> and, for stores wider than a byte,
/// <c>(address + offset + size - 1) &gt;&gt; 12</c> (a store may straddle two pages), as the native runtime does.
/// </remarks>
internal static class BodyRewriter
{
    /// <summary>What a body contains, from a scan without writing.</summary>
    public readonly record struct Facts(bool UsesAtomics, bool ChangesTablesOrSegments, int Stores, int Fills, int Copies, int Inits);

    /// <summary>Indices of the added functions.</summary>
    public readonly record struct Helpers(uint MarkRange, uint Copy, uint Fill);

    /// <summary>Scans <paramref name="body"/> (locals and code).</summary>
    public static Facts Scan(ReadOnlySpan<byte> body, int origin)
    {
        var c = new WasmCursor(body, origin);
        SkipLocals(ref c);
        bool atomics = false, tables = false;
        int stores = 0, fills = 0, copies = 0, inits = 0;
        while (!c.AtEnd)
        {
            Instruction i = Instruction.Read(ref c);
            atomics |= i.Opcode == Instruction.AtomicPrefix;
            tables |= i.ChangesTablesOrSegments;
            stores += i.StoreSize > 0 ? 1 : 0;
            if (i.Opcode == Instruction.MiscPrefix)
            {
                fills += i.SubOpcode == 11 ? 1 : 0;
                copies += i.SubOpcode == 10 ? 1 : 0;
                inits += i.SubOpcode == 8 ? 1 : 0;
            }
        }

        return new Facts(atomics, tables, stores, fills, copies, inits);
    }

    /// <summary>Writes the rewritten body (locals and code, without the size prefix) to <paramref name="output"/>.</summary>
    public static void Rewrite(ReadOnlySpan<byte> body, int origin, int parameterCount, Helpers helpers, WasmWriter output)
    {
        var c = new WasmCursor(body, origin);
        uint groups = c.U32();
        ulong locals = (ulong)parameterCount;
        int declarationsStart = c.Position;
        for (uint g = 0; g < groups; g++)
        {
            locals += c.U32();
            ReadValueType(ref c);
        }

        if (locals > 50_000)
        {
            throw c.Error($"a function declares {locals} locals (Wasmtime's limit is 50,000)");
        }

        ReadOnlySpan<byte> declarations = c.Since(declarationsStart);

        // Scratch locals: address, two i32 operands, then one value of each storable type.
        uint address = (uint)locals, second = address + 1, third = address + 2;
        uint i64Value = address + 3, f32Value = address + 4, f64Value = address + 5, v128Value = address + 6;
        output.U32(groups + 5).Bytes(declarations);
        output.U32(3).Byte(0x7F).U32(1).Byte(0x7E).U32(1).Byte(0x7D).U32(1).Byte(0x7C).U32(1).Byte(0x7B);

        while (!c.AtEnd)
        {
            Instruction i = Instruction.Read(ref c);
            ReadOnlySpan<byte> original = body[i.Start..i.End];
            int size = i.StoreSize;
            if (size > 0 && i.MemoryIndex == 0)
            {
                uint value = i.StoreValueType switch
                {
                    0x7F => second,
                    0x7E => i64Value,
                    0x7D => f32Value,
                    0x7C => f64Value,
                    _ => v128Value,
                };
                output.LocalSet(value).LocalTee(address).LocalGet(value).Bytes(original);
                BarrierFunctions.MarkStore(output, address, i.Offset, size);
            }
            else if (i.Opcode == Instruction.MiscPrefix && i.SubOpcode == 11 && i.Immediate0 == 0)
            {
                output.Call(helpers.Fill);
            }
            else if (i.Opcode == Instruction.MiscPrefix && i.SubOpcode == 10 && i.Immediate0 == 0)
            {
                output.Call(helpers.Copy);
            }
            else if (i.Opcode == Instruction.MiscPrefix && i.SubOpcode == 8 && i.Immediate1 == 0)
            {
                output.LocalSet(third).LocalSet(second).LocalTee(address).LocalGet(second).LocalGet(third).Bytes(original);
                output.LocalGet(address).LocalGet(third).Call(helpers.MarkRange);
            }
            else
            {
                output.Bytes(original);
            }
        }
    }

    private static void SkipLocals(ref WasmCursor c)
    {
        for (uint g = c.U32(), k = 0; k < g; k++)
        {
            c.U32();
            ReadValueType(ref c);
        }
    }

    /// <summary>Reads a value type (numeric, vector, or a reference type with its heap type).</summary>
    public static void ReadValueType(ref WasmCursor c)
    {
        byte t = c.Byte();
        if (t is 0x63 or 0x64)
        {
            c.S64(); // (ref null? heaptype)
        }
    }
}

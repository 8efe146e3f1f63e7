namespace CowWasm.Runtime.Wasmtime.Rewriting;

/// <summary>
/// One decoded instruction of a function body: its opcode (and sub-opcode after a 0xFC/0xFD/0xFE prefix), its byte
/// range, and the immediates the rewriter needs (memory index and offset of a memarg, the indices of bulk-memory
/// operations). Everything else is skipped over and copied through unchanged.
/// </summary>
internal struct Instruction
{
    public int Start;
    public int End;
    public byte Opcode;
    public uint SubOpcode;
    public uint AlignLog2;
    public uint MemoryIndex;
    public ulong Offset;
    public uint Immediate0;
    public uint Immediate1;
    public byte Lane;
    public bool HasLane;

    /// <summary>The prefix byte for the bulk-memory / saturating-truncation group.</summary>
    public const byte MiscPrefix = 0xFC;

    /// <summary>The prefix byte for SIMD.</summary>
    public const byte SimdPrefix = 0xFD;

    /// <summary>The prefix byte for threads (atomics).</summary>
    public const byte AtomicPrefix = 0xFE;

    /// <summary>
    /// Decodes the instruction at the cursor. Throws <see cref="NotSupportedException"/> for the GC proposal (0xFB),
    /// whose instructions the rewriter does not know, and <see cref="WasmFormatException"/> for malformed bytes.
    /// </summary>
    public static Instruction Read(ref WasmCursor c)
    {
        var i = new Instruction { Start = c.Position, Opcode = c.Byte() };
        switch (i.Opcode)
        {
            case 0x02 or 0x03 or 0x04 or 0x06: // block, loop, if, try: a block type
                c.S64();
                break;
            case 0x07 or 0x08 or 0x09 or 0x0C or 0x0D or 0x18 or 0x10 or 0x12 or 0x14 or 0x15 or 0xD2 or 0xD5 or 0xD6:
                i.Immediate0 = c.U32(); // catch/throw/rethrow tag, br/br_if/delegate label, call/return_call/call_ref, ref.func
                break;
            case 0x0E: // br_table
                for (uint n = c.U32(), k = 0; k <= n; k++)
                {
                    c.U32();
                }

                break;
            case 0x11 or 0x13: // call_indirect, return_call_indirect
                i.Immediate0 = c.U32();
                i.Immediate1 = c.U32();
                break;
            case 0x1C: // select t*
                for (uint n = c.U32(), k = 0; k < n; k++)
                {
                    c.S64();
                }

                break;
            case 0x1F: // try_table
                c.S64();
                for (uint n = c.U32(), k = 0; k < n; k++)
                {
                    byte kind = c.Byte();
                    if (kind is 0 or 1)
                    {
                        c.U32();
                    }

                    c.U32();
                }

                break;
            case >= 0x20 and <= 0x26: // local.*, global.*, table.get/set
                i.Immediate0 = c.U32();
                break;
            case >= 0x28 and <= 0x3E: // loads and stores
                ReadMemArg(ref c, ref i);
                break;
            case 0x3F or 0x40: // memory.size, memory.grow
                i.MemoryIndex = c.U32();
                break;
            case 0x41:
                c.S32();
                break;
            case 0x42:
                c.S64();
                break;
            case 0x43:
                c.Take(4);
                break;
            case 0x44:
                c.Take(8);
                break;
            case 0xD0: // ref.null heaptype
                c.S64();
                break;
            case MiscPrefix:
                ReadMisc(ref c, ref i);
                break;
            case SimdPrefix:
                ReadSimd(ref c, ref i);
                break;
            case AtomicPrefix:
                i.SubOpcode = c.U32();
                if (i.SubOpcode == 0x03)
                {
                    c.Byte(); // atomic.fence
                }
                else
                {
                    ReadMemArg(ref c, ref i);
                }

                break;
            case 0xFB:
                throw new NotSupportedException($"a GC-proposal instruction (0xFB) at byte {c.Origin + i.Start}");
            default:
                if (i.Opcode is (> 0xC4 and < 0xD0) or (> 0xD6 and < 0xFB) or (> 0x1C and < 0x1F) or (> 0x15 and < 0x18) or 0x27 or 0xFF)
                {
                    throw c.Error($"unknown opcode 0x{i.Opcode:X2}", i.Start);
                }

                break; // no immediates
        }

        i.End = c.Position;
        return i;
    }

    private static void ReadMemArg(ref WasmCursor c, ref Instruction i)
    {
        uint flags = c.U32();
        i.AlignLog2 = flags & 0x3F;
        i.MemoryIndex = (flags & 0x40) != 0 ? c.U32() : 0;
        i.Offset = c.U64();
    }

    private static void ReadMisc(ref WasmCursor c, ref Instruction i)
    {
        i.SubOpcode = c.U32();
        switch (i.SubOpcode)
        {
            case <= 7: // saturating truncations
                break;
            case 8 or 10 or 12 or 14: // memory.init seg mem, memory.copy dst src, table.init, table.copy
                i.Immediate0 = c.U32();
                i.Immediate1 = c.U32();
                break;
            case 9 or 11 or 13 or 15 or 16 or 17: // data.drop, memory.fill, elem.drop, table.grow/size/fill
                i.Immediate0 = c.U32();
                break;
            default:
                throw c.Error($"unknown 0xFC sub-opcode {i.SubOpcode}", i.Start);
        }
    }

    private static void ReadSimd(ref WasmCursor c, ref Instruction i)
    {
        i.SubOpcode = c.U32();
        switch (i.SubOpcode)
        {
            case <= 11 or 92 or 93: // v128 loads, v128.store, load32_zero / load64_zero
                ReadMemArg(ref c, ref i);
                break;
            case 12 or 13: // v128.const, i8x16.shuffle
                c.Take(16);
                break;
            case >= 21 and <= 34: // extract/replace lane
                c.Byte();
                break;
            case >= 84 and <= 91: // load/store lane
                ReadMemArg(ref c, ref i);
                i.Lane = c.Byte();
                i.HasLane = true;
                break;
            default:
                break; // no immediates (arithmetic, relaxed SIMD)
        }
    }

    /// <summary>Bytes written by a store instruction (0 if this is not a store to linear memory).</summary>
    public readonly int StoreSize => Opcode switch
    {
        0x36 => 4, // i32.store
        0x37 => 8, // i64.store
        0x38 => 4, // f32.store
        0x39 => 8, // f64.store
        0x3A => 1, // i32.store8
        0x3B => 2, // i32.store16
        0x3C => 1, // i64.store8
        0x3D => 2, // i64.store16
        0x3E => 4, // i64.store32
        SimdPrefix => SubOpcode switch
        {
            11 => 16, // v128.store
            88 => 1,
            89 => 2,
            90 => 4,
            91 => 8, // v128.storeN_lane
            _ => 0,
        },
        _ => 0,
    };

    /// <summary>The value type a store pops (after the address), as its binary value type.</summary>
    public readonly byte StoreValueType => Opcode switch
    {
        0x36 or 0x3A or 0x3B => 0x7F, // i32
        0x37 or 0x3C or 0x3D or 0x3E => 0x7E, // i64
        0x38 => 0x7D, // f32
        0x39 => 0x7C, // f64
        _ => 0x7B, // v128
    };

    /// <summary>Whether guest code changes a table or drops a segment with this instruction.</summary>
    public readonly bool ChangesTablesOrSegments =>
        Opcode == 0x26 || (Opcode == MiscPrefix && SubOpcode is 9 or 12 or 13 or 14 or 15 or 17);
}

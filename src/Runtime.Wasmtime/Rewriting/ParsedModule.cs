namespace CowWasm.Runtime.Wasmtime.Rewriting;

/// <summary>
/// What <see cref="ModuleRewriter"/> needs to know of a module, read section by section with every read bounds-checked:
/// type arities, function types, memory limits, global and export counts, the start function, the code section's
/// place and the data segments. Refuses (<see cref="NotSupportedException"/>) what the Wasmtime backend cannot run.
/// </summary>
internal sealed class ParsedModule
{
    public readonly List<(int Parameters, byte[] Raw)> Types = [];
    public readonly List<uint> FunctionTypes = [];
    public readonly List<string> ExportNames = [];
    public readonly List<DataSegment> Segments = [];
    public int FunctionImports;
    public int Memories;
    public ulong MemoryMinimumBytes;
    public ulong MemoryMaximumBytes = 1UL << 32;
    public int GlobalCount;
    public int ExportCount;
    public uint? Start;
    public (int Start, int End) CodeSection = (-1, -1);

    public List<(int Start, int End)> CodeBodies(ReadOnlySpan<byte> wasm)
    {
        var result = new List<(int, int)>();
        if (CodeSection.Start < 0)
        {
            return result;
        }

        var c = new WasmCursor(wasm[CodeSection.Start..CodeSection.End], CodeSection.Start);
        for (uint n = c.U32(), k = 0; k < n; k++)
        {
            uint size = c.U32();
            int at = c.Position;
            c.Take(checked((int)size));
            result.Add((CodeSection.Start + at, CodeSection.Start + at + (int)size));
        }

        return result;
    }

    /// <summary>Parses <paramref name="wasm"/>: its sections' places, and what they declare.</summary>
    /// <exception cref="WasmFormatException">The module is malformed.</exception>
    /// <exception cref="NotSupportedException">The module uses what this backend cannot run.</exception>
    public static (List<(byte Id, int Start, int End)> Sections, ParsedModule Module) Parse(ReadOnlySpan<byte> wasm)
    {
        var sections = ReadSections(wasm);
        var m = new ParsedModule();
        foreach ((byte id, int start, int end) in sections)
        {
            var c = new WasmCursor(wasm[start..end], start);
            switch (id)
            {
                case ModuleRewriter.Type: ParseTypes(ref c, m); break;
                case ModuleRewriter.Import: ParseImports(ref c, m); break;
                case ModuleRewriter.Function:
                    for (uint n = c.U32(), k = 0; k < n; k++)
                    {
                        m.FunctionTypes.Add(c.U32());
                    }

                    break;
                case ModuleRewriter.Memory: ParseMemories(ref c, m); break;
                case ModuleRewriter.Global: ParseGlobals(ref c, m); break;
                case ModuleRewriter.Export:
                    for (uint n = c.U32(), k = 0; k < n; k++)
                    {
                        m.ExportNames.Add(c.Name());
                        c.Byte();
                        c.U32();
                    }

                    m.ExportCount = m.ExportNames.Count;
                    break;
                case ModuleRewriter.Start: m.Start = c.U32(); break;
                case ModuleRewriter.Code: m.CodeSection = (start, end); break;
                case ModuleRewriter.Data: ParseData(ref c, m); break;
            }
        }

        return (sections, m);
    }

    private static List<(byte Id, int Start, int End)> ReadSections(ReadOnlySpan<byte> wasm)
    {
        if (wasm.Length < 8 || !wasm[..4].SequenceEqual("\0asm"u8) || wasm[4] != 1 || wasm[5] != 0 || wasm[6] != 0 || wasm[7] != 0)
        {
            throw new WasmFormatException("Not a WebAssembly 1.0 module (magic number or version).");
        }

        var result = new List<(byte, int, int)>();
        var c = new WasmCursor(wasm) { Position = 8 };
        while (!c.AtEnd)
        {
            byte id = c.Byte();
            uint size = c.U32();
            if (size > c.Remaining)
            {
                throw c.Error($"section {id} claims {size} bytes but {c.Remaining} remain");
            }

            if (id > ModuleRewriter.DataCount)
            {
                throw c.Error($"unknown section id {id}");
            }

            result.Add((id, c.Position, c.Position + (int)size));
            c.Take((int)size);
        }

        return result;
    }

    private static void ParseTypes(ref WasmCursor c, ParsedModule m)
    {
        for (uint n = c.U32(), k = 0; k < n; k++)
        {
            int start = c.Position;
            byte form = c.Byte();
            if (form != 0x60)
            {
                throw new NotSupportedException($"type form 0x{form:X2} (GC-proposal types) at byte {c.Origin + start}");
            }

            uint parameters = c.U32();
            for (uint p = 0; p < parameters; p++)
            {
                BodyRewriter.ReadValueType(ref c);
            }

            for (uint r = c.U32(), q = 0; q < r; q++)
            {
                BodyRewriter.ReadValueType(ref c);
            }

            m.Types.Add(((int)parameters, c.Since(start).ToArray()));
        }
    }

    private static void ParseImports(ref WasmCursor c, ParsedModule m)
    {
        for (uint n = c.U32(), k = 0; k < n; k++)
        {
            string module = c.Name(), name = c.Name();
            byte kind = c.Byte();
            if (kind != 0)
            {
                string what = kind switch { 1 => "a table", 2 => "a memory", 3 => "a global", _ => $"kind {kind}" };
                throw new NotSupportedException(
                    $"the module imports {what} ({module}.{name}); the host defines functions only, and the runtime creates memories, tables and globals");
            }

            c.U32();
            m.FunctionImports++;
        }
    }

    private static void ParseMemories(ref WasmCursor c, ParsedModule m)
    {
        uint n = c.U32();
        if (n > 1)
        {
            throw new NotSupportedException($"the module defines {n} memories; one linear memory is supported");
        }

        for (uint k = 0; k < n; k++)
        {
            byte flags = c.Byte();
            if ((flags & ~1) != 0)
            {
                throw new NotSupportedException($"memory flags 0x{flags:X2} (shared or 64-bit memory)");
            }

            m.MemoryMinimumBytes = (ulong)c.U32() * 65536;
            if ((flags & 1) != 0)
            {
                m.MemoryMaximumBytes = Math.Min((ulong)c.U32() * 65536, 1UL << 32);
            }

            m.Memories++;
        }
    }

    private static void ParseGlobals(ref WasmCursor c, ParsedModule m)
    {
        for (uint n = c.U32(), k = 0; k < n; k++)
        {
            BodyRewriter.ReadValueType(ref c);
            c.Byte();
            SkipConstantExpression(ref c);
            m.GlobalCount++;
        }
    }

    private static void ParseData(ref WasmCursor c, ParsedModule m)
    {
        for (uint n = c.U32(), k = 0; k < n; k++)
        {
            uint flags = c.U32();
            if (flags == 1)
            {
                m.Segments.Add(new DataSegment(false, null, [], c.Take(checked((int)c.U32())).ToArray()));
                continue;
            }

            if (flags == 2 && c.U32() != 0)
            {
                throw c.Error("a data segment for a memory other than 0");
            }

            if (flags > 2)
            {
                throw c.Error($"data segment flags {flags}");
            }

            int start = c.Position;
            long? constant = null;
            if (c.Remaining >= 1 && c.Byte() == 0x41)
            {
                int value = c.S32();
                if (!c.AtEnd && c.Byte() == 0x0B)
                {
                    constant = (uint)value;
                }
            }

            c.Position = start;
            SkipConstantExpression(ref c);
            byte[] expression = c.Since(start)[..^1].ToArray();
            m.Segments.Add(new DataSegment(true, constant, expression, c.Take(checked((int)c.U32())).ToArray()));
        }
    }

    private static void SkipConstantExpression(ref WasmCursor c)
    {
        while (true)
        {
            Instruction i = Instruction.Read(ref c);
            if (i.Opcode == 0x0B)
            {
                return;
            }
        }
    }
}

/// <summary>A data segment as the module declares it.</summary>
/// <param name="Active">Whether it is written at instantiation.</param>
/// <param name="ConstantOffset">The offset when it is an <c>i32.const</c>.</param>
/// <param name="OffsetExpression">The offset expression without its <c>end</c> (active segments).</param>
/// <param name="Data">The bytes.</param>
internal sealed record DataSegment(bool Active, long? ConstantOffset, byte[] OffsetExpression, byte[] Data);

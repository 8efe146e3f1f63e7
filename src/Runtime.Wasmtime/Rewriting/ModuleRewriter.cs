namespace CowWasm.Runtime.Wasmtime.Rewriting;

/// <summary>
/// Rewrites a module before Wasmtime compiles it, so that one compiled module serves both fresh instances and clones:
/// <list type="number">
/// <item>every global is exported (<see cref="RewrittenModule.GlobalExportPrefix"/>), so a pool can capture and restore
/// globals the module keeps to itself (Trealla's stack pointer);</item>
/// <item>active data segments become passive and the start section goes: an exported function
/// (<see cref="RewrittenModule.InitExport"/>) writes the data and calls the start function, so a fresh instance calls it
/// and a clone over a replica view of committed memory does not (Wasmtime would otherwise write the segments into the
/// view);</item>
/// <item>with the barrier, a second memory is the engine's dirty map and every store, <c>memory.fill</c> (value-aware),
/// <c>memory.copy</c>, <c>memory.init</c> and data segment marks it.</item>
/// </list>
/// Nothing is renumbered: types, functions, memories, globals and data segments are only appended to. Originally
/// active segments stay in place as empty passive segments, which behave exactly like the dropped segments they
/// would be after instantiation.
/// </summary>
internal static class ModuleRewriter
{
    /// <summary>Section ids.</summary>
    internal const byte Custom = 0, Type = 1, Import = 2, Function = 3, Memory = 5, Global = 6, Export = 7, Start = 8,
        Element = 9, Code = 10, Data = 11, DataCount = 12;

    /// <summary>Unwritten gaps shorter than this between active segments are written as zeros (one chunk, not two).</summary>
    private const int MergeGap = 64;

    /// <summary>Rewrites <paramref name="wasm"/>; with <paramref name="barrier"/>, adds the store barrier if it can.</summary>
    /// <exception cref="WasmFormatException">The module is malformed.</exception>
    /// <exception cref="NotSupportedException">The module uses what this backend cannot run (named in the message).</exception>
    public static RewrittenModule Rewrite(ReadOnlySpan<byte> wasm, bool barrier)
    {
        (List<(byte Id, int Start, int End)> sections, ParsedModule m) = ParsedModule.Parse(wasm);

        List<(int Start, int End)> bodies = m.CodeBodies(wasm);
        if (m.FunctionTypes.Count != bodies.Count)
        {
            throw new WasmFormatException($"Malformed module: {m.FunctionTypes.Count} functions declared but {bodies.Count} bodies.");
        }

        // Scan the code: atomics rule the barrier out; table changes are reported.
        bool atomics = false, tables = false;
        int stores = 0, bulk = 0;
        foreach ((int start, int end) in bodies)
        {
            BodyRewriter.Facts f = BodyRewriter.Scan(wasm[start..end], start);
            atomics |= f.UsesAtomics;
            tables |= f.ChangesTablesOrSegments;
            stores += f.Stores;
            bulk += f.Fills + f.Copies + f.Inits;
        }

        string? refusal = !barrier ? null
            : m.Memories == 0 ? "the module has no memory"
            : atomics ? "the module uses atomic instructions, which the barrier does not mark"
            : null;
        bool withBarrier = barrier && refusal is null;
        byte[] bytes = Emit(wasm.ToArray(), sections, m, bodies, withBarrier, out int chunks);
        return new RewrittenModule(bytes, [.. Enumerable.Range(0, m.GlobalCount).Select(GlobalExportName)], withBarrier, refusal,
            tables, withBarrier ? stores : 0, withBarrier ? bulk : 0, chunks);
    }

    /// <summary>The export name the rewrite gives global <paramref name="index"/>.</summary>
    public static string GlobalExportName(int index) => RewrittenModule.GlobalExportPrefix + index;

    private static byte[] Emit(byte[] wasm, List<(byte Id, int Start, int End)> sections, ParsedModule m,
        List<(int Start, int End)> bodies, bool barrier, out int chunkCount)
    {
        // Appended types and functions.
        uint typeBase = (uint)m.Types.Count;
        uint functionBase = (uint)(m.FunctionImports + m.FunctionTypes.Count);
        uint initType = typeBase, markType = typeBase + 1, triType = typeBase + 2, sameType = typeBase + 3;
        var added = new List<(uint Type, WasmWriter Body)>();
        var helpers = new BodyRewriter.Helpers(functionBase + 1, functionBase + 2, functionBase + 3);
        List<DataSegment> chunks = Chunks(m);
        chunkCount = chunks.Count;
        uint firstChunk = (uint)m.Segments.Count;
        added.Add((initType, InitBody(chunks, firstChunk, m.Start, barrier ? helpers.MarkRange : null)));
        if (barrier)
        {
            added.Add((markType, BarrierFunctions.MarkRange()));
            added.Add((triType, BarrierFunctions.Copy(helpers.MarkRange)));
            added.Add((triType, BarrierFunctions.Fill(helpers.MarkRange, functionBase + 4, functionBase + 5)));
            added.Add((sameType, BarrierFunctions.Same(zero: false)));
            added.Add((sameType, BarrierFunctions.Same(zero: true)));
        }

        var output = new WasmWriter().Bytes(wasm[..8]);
        var present = sections.Select(s => s.Id).ToHashSet();
        byte[] required = [Type, Function, Export, Code];
        var emitted = new HashSet<byte>();

        void EmitSection(byte id, ReadOnlySpan<byte> raw)
        {
            switch (id)
            {
                case Type:
                    var types = new WasmWriter().U32((uint)(m.Types.Count + 4));
                    foreach (var t in m.Types)
                    {
                        types.Bytes(t.Raw);
                    }

                    types.Bytes([0x60, 0, 0]).Bytes([0x60, 2, 0x7F, 0x7F, 0]).Bytes([0x60, 3, 0x7F, 0x7F, 0x7F, 0])
                        .Bytes([0x60, 3, 0x7F, 0x7F, 0x7B, 1, 0x7F]);
                    Section(output, Type, types);
                    break;
                case Function:
                    var functions = new WasmWriter().U32((uint)(m.FunctionTypes.Count + added.Count));
                    foreach (uint t in m.FunctionTypes)
                    {
                        functions.U32(t);
                    }

                    foreach (var a in added)
                    {
                        functions.U32(a.Type);
                    }

                    Section(output, Function, functions);
                    break;
                case Memory:
                    var memories = new WasmWriter().U32((uint)(m.Memories + (barrier ? 1 : 0))).Bytes(raw[1..]);
                    if (barrier)
                    {
                        // One byte per 4 KiB page of the memory's maximum, in whole Wasm pages.
                        uint mapPages = (uint)Math.Max(1, (m.MemoryMaximumBytes / 4096 + 65535) / 65536);
                        memories.Byte(1).U32(mapPages).U32(mapPages);
                    }

                    Section(output, Memory, memories);
                    break;
                case Export:
                    Section(output, Export, Exports(raw.IsEmpty ? [0] : raw, m, functionBase));
                    break;
                case Start or DataCount:
                    break; // the init function calls the start function; the data count is written before the code
                case Code:
                    Section(output, DataCount, new WasmWriter().U32((uint)(m.Segments.Count + chunks.Count)));
                    Section(output, Code, CodeSection(wasm, m, bodies, barrier, helpers, added));
                    break;
                case Data:
                    Section(output, Data, DataSection(m, chunks));
                    break;
                default:
                    output.Byte(id).U32((uint)raw.Length).Bytes(raw);
                    break;
            }

            emitted.Add(id);
        }

        void EmitMissingBefore(double rank)
        {
            foreach (byte id in required)
            {
                if (!present.Contains(id) && !emitted.Contains(id) && Rank(id) < rank)
                {
                    EmitSection(id, []);
                }
            }
        }

        foreach ((byte id, int start, int end) in sections)
        {
            if (id != Custom)
            {
                EmitMissingBefore(Rank(id));
            }

            EmitSection(id, wasm[start..end]);
        }

        EmitMissingBefore(double.MaxValue);
        return output.Written.ToArray();
    }

    /// <summary>A section's place in the required order (the data count sits between elements and code).</summary>
    private static double Rank(byte id) => id == DataCount ? 9.5 : id;

    private static void Section(WasmWriter output, byte id, WasmWriter body) => output.Byte(id).Sized(body);

    private static WasmWriter Exports(ReadOnlySpan<byte> raw, ParsedModule m, uint functionBase)
    {
        var c = new WasmCursor(raw);
        c.U32();
        var names = m.ExportNames.ToHashSet(StringComparer.Ordinal);
        var extra = new List<(string Name, byte Kind, uint Index)> { (RewrittenModule.InitExport, 0, functionBase) };
        for (int g = 0; g < m.GlobalCount; g++)
        {
            extra.Add((GlobalExportName(g), 3, (uint)g));
        }

        if (m.Memories > 0)
        {
            extra.Add((RewrittenModule.MemoryExport, 2, 0));
        }

        foreach (var e in extra)
        {
            if (names.Contains(e.Name))
            {
                throw new NotSupportedException($"the module already exports a name the rewrite uses ({e.Name})");
            }
        }

        var w = new WasmWriter().U32((uint)(m.ExportCount + extra.Count)).Bytes(raw[c.Position..]);
        foreach (var e in extra)
        {
            w.Name(e.Name).Byte(e.Kind).U32(e.Index);
        }

        return w;
    }

    private static WasmWriter CodeSection(byte[] wasm, ParsedModule m, List<(int Start, int End)> bodies, bool barrier,
        BodyRewriter.Helpers helpers, List<(uint Type, WasmWriter Body)> added)
    {
        var w = new WasmWriter().U32((uint)(bodies.Count + added.Count));
        for (int f = 0; f < bodies.Count; f++)
        {
            (int start, int end) = bodies[f];
            if (!barrier)
            {
                w.U32((uint)(end - start)).Bytes(wasm[start..end]);
                continue;
            }

            uint type = m.FunctionTypes[f];
            if (type >= m.Types.Count)
            {
                throw new WasmFormatException($"Malformed module: function {f} has type {type} of {m.Types.Count}.");
            }

            var body = new WasmWriter();
            BodyRewriter.Rewrite(wasm[start..end], start, m.Types[(int)type].Parameters, helpers, body);
            w.Sized(body);
        }

        foreach (var a in added)
        {
            w.Sized(a.Body);
        }

        return w;
    }

    private static WasmWriter DataSection(ParsedModule m, List<DataSegment> chunks)
    {
        var w = new WasmWriter().U32((uint)(m.Segments.Count + chunks.Count));
        foreach (DataSegment s in m.Segments)
        {
            // An active segment stays in its place as an empty passive one: like the dropped segment it would be.
            byte[] data = s.Active ? [] : s.Data;
            w.U32(1).U32((uint)data.Length).Bytes(data);
        }

        foreach (DataSegment s in chunks)
        {
            w.U32(1).U32((uint)s.Data.Length).Bytes(s.Data);
        }

        return w;
    }

    /// <summary>
    /// The active segments as the init function writes them: when every offset is a constant, their combined image
    /// (later segments win where they overlap, as at instantiation) cut into runs at gaps of <see cref="MergeGap"/>
    /// bytes or more; otherwise each segment on its own, in order.
    /// </summary>
    private static List<DataSegment> Chunks(ParsedModule m)
    {
        List<DataSegment> active = [.. m.Segments.Where(s => s.Active)];
        if (active.Count == 0)
        {
            return [];
        }

        long low = active.Min(s => s.ConstantOffset ?? long.MaxValue);
        long high = active.Max(s => (s.ConstantOffset ?? 0) + s.Data.Length);
        if (active.Any(s => s.ConstantOffset is null) || high > (long)m.MemoryMinimumBytes || high - low > int.MaxValue)
        {
            return active; // in order; an out-of-bounds one traps at instantiation as it would have
        }

        var image = new byte[high - low];
        var written = new bool[high - low];
        foreach (DataSegment s in active)
        {
            int at = (int)(s.ConstantOffset!.Value - low);
            s.Data.CopyTo(image, at);
            written.AsSpan(at, s.Data.Length).Fill(true);
        }

        var chunks = new List<DataSegment>();
        int i = 0;
        while (i < written.Length)
        {
            int start = Array.IndexOf(written, true, i);
            if (start < 0)
            {
                break;
            }

            int end = start;
            while (true)
            {
                int gap = Array.IndexOf(written, false, end);
                if (gap < 0)
                {
                    end = written.Length;
                    break;
                }

                int next = Array.IndexOf(written, true, gap);
                if (next < 0 || next - gap >= MergeGap)
                {
                    end = gap;
                    break;
                }

                end = next;
            }

            long offset = low + start;
            var expression = new WasmWriter().I32Const(unchecked((int)(uint)offset)).Written.ToArray();
            chunks.Add(new DataSegment(true, offset, expression, image[start..end]));
            i = end;
        }

        return chunks;
    }

    private static WasmWriter InitBody(List<DataSegment> chunks, uint firstChunk, uint? start, uint? markRange)
    {
        var w = new WasmWriter().U32(0);
        for (int k = 0; k < chunks.Count; k++)
        {
            DataSegment s = chunks[k];
            uint index = firstChunk + (uint)k;
            w.Bytes(s.OffsetExpression).I32Const(0).I32Const(s.Data.Length).Byte(Instruction.MiscPrefix).U32(8).U32(index).U32(0);
            w.Byte(Instruction.MiscPrefix).U32(9).U32(index); // data.drop
            if (markRange is { } mark && s.Data.Length > 0)
            {
                w.Bytes(s.OffsetExpression).I32Const(s.Data.Length).Call(mark);
            }
        }

        if (start is { } function)
        {
            w.Call(function);
        }

        return w.Byte(0x0B);
    }
}

namespace CowWasm.Runtime.Wasmtime.Rewriting;

/// <summary>
/// The functions the barrier rewrite adds to a module, written as Wasm bodies (locals + code + end). Memory 0 is the
/// guest's memory; memory <see cref="MarkMemory"/> is the engine's dirty map (one byte per 4 KiB page).
/// </summary>
/// <remarks>
/// Every mark is made after the operation it marks succeeded, so its page index is below the guest's memory size in
/// 4 KiB pages, which never exceeds the map's length (the map covers the memory's maximum).
/// </remarks>
internal static class BarrierFunctions
{
    /// <summary>The dirty map's memory index in a rewritten module.</summary>
    public const uint MarkMemory = 1;

    private const byte I32 = 0x7F, I64 = 0x7E, V128 = 0x7B, Void = 0x40;

    /// <summary>
    /// Bytes compared per step of <see cref="Same"/> (64 v128 loads), then 16 a step, then bytes. Plain Trealla test(X)
    /// with the barrier ÷ without (bench wasmtime-trealla, 2026-12-07): 64 bytes a step 2.09, 256 bytes 1.39, 1024 bytes
    /// with byte-wise tails 1.86; then a zero-only variant (no xor per load) with 256 bytes 1.18, and 1024 bytes with a
    /// 16-byte tail loop 1.12–1.17. A plain fill of already-marked pages changed nothing measurable (1.21).
    /// </summary>
    private const int StepBytes = 1024;

    /// <summary>Fills below this many bytes are done and marked without comparing first.</summary>
    public const int ValueAwareFillThreshold = 64;

    /// <summary><c>mark_range(d: i32, n: i32)</c>: marks the pages of [d, d + n) (nothing when n is 0).</summary>
    public static WasmWriter MarkRange()
    {
        var w = new WasmWriter().U32(0); // no locals
        w.LocalGet(1).Byte(0x45).Byte(0x04).Byte(Void).Byte(0x0F).Byte(0x0B); // if n == 0: return
        w.LocalGet(0).I32Const(12).Byte(0x76); // first page (i32.shr_u)
        w.I32Const(1);
        w.LocalGet(0).LocalGet(1).Byte(0x6A).I32Const(1).Byte(0x6B).I32Const(12).Byte(0x76); // last page
        w.LocalGet(0).I32Const(12).Byte(0x76).Byte(0x6B).I32Const(1).Byte(0x6A); // count = last - first + 1
        w.Byte(Instruction.MiscPrefix).U32(11).U32(MarkMemory); // memory.fill on the map
        return w.Byte(0x0B);
    }

    /// <summary><c>copy(d, s, n)</c>: <c>memory.copy</c>, then marks the destination.</summary>
    public static WasmWriter Copy(uint markRange)
    {
        var w = new WasmWriter().U32(0);
        w.LocalGet(0).LocalGet(1).LocalGet(2).Byte(Instruction.MiscPrefix).U32(10).U32(0).U32(0);
        w.LocalGet(0).LocalGet(2).Call(markRange);
        return w.Byte(0x0B);
    }

    /// <summary>
    /// <c>fill(d, v, n)</c>: the value-aware <c>memory.fill</c>. Below <see cref="ValueAwareFillThreshold"/> bytes it
    /// fills and marks; otherwise, page by page, a page whose bytes in the range already equal the value is only read
    /// (no copy-on-write fault, no private copy, no mark), and the others are filled and marked. Out of bounds it
    /// runs the original <c>memory.fill</c>, which traps before writing anything, as the original did.
    /// </summary>
    public static WasmWriter Fill(uint markRange, uint same, uint sameZero)
    {
        // params d=0 v=1 n=2; locals p=3 q=4 end=5 (i64), pat=6 (v128)
        var w = new WasmWriter().U32(2).U32(3).Byte(I64).U32(1).Byte(V128);
        w.LocalGet(2).I32Const(ValueAwareFillThreshold).Byte(0x49); // n < threshold (i32.lt_u)
        w.Byte(0x04).Byte(Void);
        w.LocalGet(0).LocalGet(1).LocalGet(2).Byte(Instruction.MiscPrefix).U32(11).U32(0);
        w.LocalGet(0).LocalGet(2).Call(markRange).Byte(0x0F);
        w.Byte(0x0B);
        // (u64)d + n > memory size: the original instruction traps
        w.LocalGet(0).Byte(0xAD).LocalGet(2).Byte(0xAD).Byte(0x7C); // i64.extend_i32_u, i64.add
        w.Byte(0x3F).U32(0).Byte(0xAD).I64Const(16).Byte(0x86).Byte(0x56); // memory.size << 16, i64.gt_u
        w.Byte(0x04).Byte(Void);
        w.LocalGet(0).LocalGet(1).LocalGet(2).Byte(Instruction.MiscPrefix).U32(11).U32(0).Byte(0x00); // trap; unreachable
        w.Byte(0x0B);
        w.LocalGet(1).Byte(Instruction.SimdPrefix).U32(15).LocalSet(6); // pat = i8x16.splat(v)
        w.LocalGet(0).Byte(0xAD).LocalTee(3).LocalGet(2).Byte(0xAD).Byte(0x7C).LocalSet(5); // p = d; end = d + n
        w.Byte(0x03).Byte(Void); // loop
        w.LocalGet(3).I64Const(4095).Byte(0x84).I64Const(1).Byte(0x7C).LocalTee(4); // q = (p | 4095) + 1
        w.LocalGet(5).Byte(0x56).Byte(0x04).Byte(Void).LocalGet(5).LocalSet(4).Byte(0x0B); // if q > end: q = end
        // same(p, q - p, pat), or its zero-only variant when filling with 0 (the common case: no xor per load)
        w.LocalGet(1).I32Const(255).Byte(0x71).Byte(0x45).Byte(0x04).Byte(I32);
        w.LocalGet(3).Byte(0xA7).LocalGet(4).LocalGet(3).Byte(0x7D).Byte(0xA7).LocalGet(6).Call(sameZero);
        w.Byte(0x05);
        w.LocalGet(3).Byte(0xA7).LocalGet(4).LocalGet(3).Byte(0x7D).Byte(0xA7).LocalGet(6).Call(same);
        w.Byte(0x0B);
        w.Byte(0x45).Byte(0x04).Byte(Void); // if !same
        w.LocalGet(3).Byte(0xA7).LocalGet(1).LocalGet(4).LocalGet(3).Byte(0x7D).Byte(0xA7)
            .Byte(Instruction.MiscPrefix).U32(11).U32(0); // memory.fill p v (q - p)
        w.LocalGet(3).I64Const(12).Byte(0x88).Byte(0xA7).I32Const(1).MemoryOp(0x3A, 0, MarkMemory, 0); // map[p >> 12] = 1
        w.Byte(0x0B);
        w.LocalGet(4).LocalTee(3).LocalGet(5).Byte(0x54).Byte(0x0D).U32(0); // p = q; br_if (p < end)
        w.Byte(0x0B); // end loop
        return w.Byte(0x0B);
    }

    /// <summary>
    /// <c>same(a: i32, len: i32, pat: v128) -> i32</c>: whether every byte of [a, a + len) equals the splatted value
    /// (the range is in bounds). With <paramref name="zero"/>, the variant for a zero value: the loads are only or-ed. <see cref="StepBytes"/> a step with SIMD, bytes at the unaligned head and the tail.
    /// </summary>
    public static WasmWriter Same(bool zero)
    {
        var w = new WasmWriter().U32(0); // params a=0 len=1 pat=2
        // head: until a % 16 == 0
        w.Byte(0x02).Byte(Void).Byte(0x03).Byte(Void);
        w.LocalGet(1).Byte(0x45).Byte(0x0D).U32(1); // len == 0: out
        w.LocalGet(0).I32Const(15).Byte(0x71).Byte(0x45).Byte(0x0D).U32(1); // aligned: out
        ByteDiffers(w);
        w.Byte(0x0B).Byte(0x0B);
        // StepBytes a step
        w.Byte(0x02).Byte(Void).Byte(0x03).Byte(Void);
        w.LocalGet(1).I32Const(StepBytes).Byte(0x49).Byte(0x0D).U32(1); // len < step: out
        for (uint k = 0; k < StepBytes / 16; k++)
        {
            w.LocalGet(0).Byte(Instruction.SimdPrefix).U32(0).U32(4).U32(16 * k); // v128.load offset=16k
            if (!zero)
            {
                w.LocalGet(2).Byte(Instruction.SimdPrefix).U32(81); // v128.xor
            }

            if (k > 0)
            {
                w.Byte(Instruction.SimdPrefix).U32(80); // v128.or
            }
        }

        w.Byte(Instruction.SimdPrefix).U32(83); // v128.any_true
        w.Byte(0x04).Byte(Void).I32Const(0).Byte(0x0F).Byte(0x0B);
        w.LocalGet(0).I32Const(StepBytes).Byte(0x6A).LocalSet(0).LocalGet(1).I32Const(StepBytes).Byte(0x6B).LocalSet(1);
        w.Byte(0x0C).U32(0);
        w.Byte(0x0B).Byte(0x0B);
        // 16 bytes a step, then bytes: the tail
        w.Byte(0x02).Byte(Void).Byte(0x03).Byte(Void);
        w.LocalGet(1).I32Const(16).Byte(0x49).Byte(0x0D).U32(1); // len < 16: out
        w.LocalGet(0).Byte(Instruction.SimdPrefix).U32(0).U32(4).U32(0);
        if (!zero)
        {
            w.LocalGet(2).Byte(Instruction.SimdPrefix).U32(81);
        }

        w.Byte(Instruction.SimdPrefix).U32(83).Byte(0x04).Byte(Void).I32Const(0).Byte(0x0F).Byte(0x0B);
        w.LocalGet(0).I32Const(16).Byte(0x6A).LocalSet(0).LocalGet(1).I32Const(16).Byte(0x6B).LocalSet(1);
        w.Byte(0x0C).U32(0);
        w.Byte(0x0B).Byte(0x0B);
        w.Byte(0x02).Byte(Void).Byte(0x03).Byte(Void);
        w.LocalGet(1).Byte(0x45).Byte(0x0D).U32(1);
        ByteDiffers(w);
        w.Byte(0x0B).Byte(0x0B);
        w.I32Const(1);
        return w.Byte(0x0B);
    }

    // if (load8_u(a) != lane0(pat)) return 0; a++; len--; continue the enclosing loop.
    private static void ByteDiffers(WasmWriter w)
    {
        w.LocalGet(0).MemoryOp(0x2D, 0, 0, 0); // i32.load8_u
        w.LocalGet(2).Byte(Instruction.SimdPrefix).U32(22).Byte(0); // i8x16.extract_lane_u 0
        w.Byte(0x47).Byte(0x04).Byte(Void).I32Const(0).Byte(0x0F).Byte(0x0B); // i32.ne → return 0
        w.LocalGet(0).I32Const(1).Byte(0x6A).LocalSet(0).LocalGet(1).I32Const(1).Byte(0x6B).LocalSet(1);
        w.Byte(0x0C).U32(0); // br loop
    }

    /// <summary>Emits the marks for a store of <paramref name="size"/> bytes at local <paramref name="address"/> + <paramref name="offset"/>.</summary>
    public static void MarkStore(WasmWriter w, uint address, ulong offset, int size)
    {
        MarkAt(w, address, offset);
        if (size > 1)
        {
            MarkAt(w, address, offset + (ulong)size - 1);
        }
    }

    private static void MarkAt(WasmWriter w, uint address, ulong offset)
    {
        w.LocalGet(address);
        if (offset != 0)
        {
            // The store succeeded, so address + offset < 2^32 and the i32 sum cannot wrap.
            w.I32Const(unchecked((int)(uint)offset)).Byte(0x6A);
        }

        w.I32Const(12).Byte(0x76).I32Const(1).MemoryOp(0x3A, 0, MarkMemory, 0);
    }
}

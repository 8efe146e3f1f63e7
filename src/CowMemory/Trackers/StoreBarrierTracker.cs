using System.Runtime.InteropServices;

namespace CowWasm.Memory.Trackers;

/// <summary>
/// Dirty tracking by store barrier: whoever writes the memory marks a per-memory dirty map, one byte per 4 KiB page
/// (<see cref="PageMemory.DirtyMap"/>). Generated guest code marks it on every store, <c>memory.fill</c>,
/// <c>memory.copy</c> and <c>memory.init</c>; the engine's own write paths (<see cref="PageMemory.GetSpan"/>,
/// <see cref="PageMemory.GetPage"/>, <see cref="PageMemory.MarkWritten"/>) mark it for host writes. Collect walks the
/// map and clears it: no faults, no page-table walks, no syscalls.
/// </summary>
/// <remarks>
/// <para><b>Exact</b> as long as every writer marks (the contract of <see cref="PageMemory.DirtyMap"/>); a mark for
/// a read (a host that asked for a writable span and only read) over-reports, which the tracker contract allows.
/// A store of identical bytes is reported (unlike <see cref="TrackerKind.Compare"/>), so SharedBase replicas may
/// use it: the private copy such a store makes is discarded at reset.</para>
/// <para><b>Bounds:</b> the map covers the whole reservation (<see cref="PageMemory.MaxPageCount"/> bytes, zeroed
/// lazily by the allocator), so a mark can never land outside it whatever page a store touched.</para>
/// <para>One store-barrier tracker per memory.</para>
/// </remarks>
internal sealed unsafe class StoreBarrierTracker : DirtyTracker
{
    private byte* _map;

    public StoreBarrierTracker(PageMemory memory)
        : base(memory)
    {
        // SAFETY: MaxPageCount bytes, zeroed; freed in DisposeCore after the memory stops handing it out.
        _map = (byte*)NativeMemory.AllocZeroed((nuint)Math.Max(1, memory.MaxPageCount));
        memory.AttachDirtyMap(_map);
    }

    public override TrackerKind Kind => TrackerKind.StoreBarrier;

    private Span<byte> Map(long startPage, long pageCount) => new(_map + startPage, checked((int)pageCount));

    private protected override void CollectCore(List<PageRun> runs)
    {
        Span<byte> map = Map(0, Memory.PageCount);
        int at = 0;
        while (at < map.Length)
        {
            int start = map[at..].IndexOfAnyExcept((byte)0);
            if (start < 0)
            {
                break;
            }

            start += at;
            int length = map[start..].IndexOf((byte)0);
            length = length < 0 ? map.Length - start : length;
            runs.Add(new PageRun(start, length));
            map.Slice(start, length).Clear();
            at = start + length;
        }
    }

    private protected override void MarkCleanCore(IReadOnlyList<PageRun> runs)
    {
        for (int i = 0; i < runs.Count; i++)
        {
            Map(runs[i].StartPage, runs[i].PageCount).Clear();
        }
    }

    private protected override void ResetCore() => Map(0, Memory.MaxPageCount).Clear();

    internal override void OnResized(long oldPageCount, long newPageCount)
    {
        if (newPageCount < oldPageCount)
        {
            Map(newPageCount, oldPageCount - newPageCount).Clear(); // pages cut off are forgotten
        }
    }

    private protected override void DisposeCore()
    {
        Memory.DetachDirtyMap(_map);
        NativeMemory.Free(_map);
        _map = null;
    }
}

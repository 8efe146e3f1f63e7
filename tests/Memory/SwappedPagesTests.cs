using CowWasm.Memory;
using CowWasm.Memory.Native;

namespace CowWasm.Tests.Memory;

/// <summary>
/// A private copy that is swapped out or mid-migration is still a private copy: the CoW-file tracker must report it, or
/// a commit could skip it and a later rollback lose a committed write. These machines have no swap, so the pagemap
/// entries are faked (the PAGEMAP_SCAN path asks the kernel for the same categories).
/// </summary>
public sealed class SwappedPagesTests
{
    [Theory]
    [InlineData(Pagemap.PresentBit, true)] // a resident private copy
    [InlineData(Pagemap.SwapBit | 0x1234, true)] // swapped out (or a migration entry): still private
    [InlineData(Pagemap.PresentBit | Pagemap.FileOrSharedBit, false)] // the base's page, shared
    [InlineData(Pagemap.SwapBit | Pagemap.FileOrSharedBit, false)] // a file page being migrated
    [InlineData(0UL, false)] // never touched
    public void APagemapEntry_IsAPrivateCopy_WhenPresentOrSwapped_AndNotAFilePage(ulong entry, bool isPrivate) =>
        Assert.Equal(isPrivate, CowView.IsPrivateCopy(entry));

    [Fact]
    public void SwappedRuns_AreMergedWithResidentOnes()
    {
        var resident = new List<PageRun> { new(0, 2), new(10, 1) };
        CowView.MergeInto(resident, [new PageRun(2, 3), new PageRun(20, 1)]);
        Assert.Equal([new PageRun(0, 5), new PageRun(10, 1), new PageRun(20, 1)], resident);
    }
}

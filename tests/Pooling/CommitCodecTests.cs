using CowWasm.Memory;
using CowWasm.Pool;
using CowWasm.Replication;

namespace CowWasm.Tests.Pooling;

/// <summary>The delta format: round trips with and without compression, and damage of every kind is a CommitFormatException.</summary>
public sealed class CommitCodecTests
{
    private static readonly byte[] Module = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();

    private static CommitRecord Record(Random random, bool compressible)
    {
        var runs = new List<PageRun>();
        long page = random.Next(4);
        for (int i = random.Next(0, 5); i > 0; i--)
        {
            long count = random.Next(1, 4);
            runs.Add(new PageRun(page, count));
            page += count + random.Next(1, 3);
        }

        byte[] pages = new byte[Pages.ToBytes(runs.Sum(r => r.PageCount))];
        if (compressible)
        {
            pages.AsSpan().Fill((byte)random.Next(256));
            if (pages.Length > 0)
            {
                pages[random.Next(pages.Length)] ^= 1;
            }
        }
        else
        {
            random.NextBytes(pages);
        }

        long memory = 65536L * ((page * 4096 + 65535) / 65536 + 1);
        Span<byte> parent = stackalloc byte[CommitId.Size];
        random.NextBytes(parent);
        return new CommitRecord(random.Next(1, 1000), CommitId.Read(parent), memory, [(ulong)random.NextInt64(), 5], runs, pages, false);
    }

    [Fact]
    public void Deltas_RoundTrip_CompressedWhenItPays()
    {
        var random = new Random(7);
        for (int i = 0; i < 200; i++)
        {
            bool compressible = i % 2 == 0;
            CommitRecord record = Record(random, compressible);
            byte[] delta = CommitCodec.Encode(record, Module, compress: true);
            if (record.Pages.Length >= 8192)
            {
                Assert.True(compressible == delta.Length < record.Pages.Length, $"{delta.Length} bytes for {record.Pages.Length} of pages");
            }

            CommitRecord back = CommitCodec.Decode(delta, Module, 1L << 32);
            Assert.Equal((record.Sequence, record.MemoryByteLength), (back.Sequence, back.MemoryByteLength));
            Assert.Equal(record.Globals, back.Globals);
            Assert.Equal(record.Runs, back.Runs);
            Assert.True(record.Pages.Span.SequenceEqual(back.Pages.Span));
            Assert.Equal((record.Parent, record.Id), (back.Parent, back.Id));
        }
    }

    [Fact]
    public void TheIdentity_NamesTheParent_AndEveryPartOfTheContent()
    {
        CommitRecord record = Record(new Random(5), compressible: false);
        Assume(record.Pages.Length > 0);
        Span<byte> other = stackalloc byte[CommitId.Size];
        record.Parent.WriteTo(other);
        other[31] ^= 1;
        byte[] pages = record.Pages.ToArray();
        pages[^1] ^= 1;
        CommitId[] changed =
        [
            (record with { Parent = CommitId.Read(other) }).Id,
            (record with { Sequence = record.Sequence + 1 }).Id,
            (record with { MemoryByteLength = record.MemoryByteLength + 65536 }).Id,
            (record with { Globals = [.. record.Globals.Select((g, i) => i == 0 ? g + 1 : g)] }).Id,
            (record with { Pages = pages }).Id,
            (record with { TablesChanged = true }).Id,
        ];
        Assert.Equal(record.Id, (record with { }).Id); // a copy computes the same identity again
        Assert.DoesNotContain(record.Id, changed);
        Assert.Equal(changed.Length, changed.Distinct().Count());
        Assert.Equal(record.Id, CommitId.ParseHex(record.Id.ToHex()));
    }

    private static void Assume(bool condition) => Assert.True(condition, "the random record has pages");

    [Fact]
    public void AVersion1Delta_HasNoParent_AndIsReadFromTheCommitLogOnly()
    {
        CommitRecord record = Record(new Random(9), compressible: false);
        byte[] v2 = CommitCodec.Encode(record, Module, compress: false, hash: false);
        // The layout before the hash chain: no parent and no identity at 72, version 1.
        byte[] v1 = [.. v2.AsSpan(0, 72), .. v2.AsSpan(72 + 2 * CommitId.Size)];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(v1.AsSpan(8), 1);
        byte[] hashed = (byte[])v1.Clone(); // as JetStream carried it: with its SHA-256
        hashed[12] &= unchecked((byte)~4);
        System.Security.Cryptography.SHA256.HashData(hashed.AsSpan(0, hashed.Length - 32), hashed.AsSpan(hashed.Length - 32));
        Assert.Contains("format version 1", Assert.Throws<CommitFormatException>(() => CommitCodec.Decode(hashed, Module, 1L << 32)).Message);
        CommitRecord back = CommitCodec.Decode(v1, Module, 1L << 32, fromLog: true);
        Assert.True(back.Parent.IsUnknown);
        Assert.Equal((record.Sequence, record.MemoryByteLength), (back.Sequence, back.MemoryByteLength));
        Assert.Equal(record.Runs, back.Runs);
        Assert.True(record.Pages.Span.SequenceEqual(back.Pages.Span));
    }

    [Fact]
    public void EveryTruncation_AndEveryFlippedBit_IsAReplicationException()
    {
        var random = new Random(11);
        for (int i = 0; i < 20; i++)
        {
            byte[] delta = CommitCodec.Encode(Record(random, i % 2 == 0), Module, compress: true);
            for (int length = 0; length < delta.Length; length += 1 + length / 8)
            {
                Assert.Throws<CommitFormatException>(() => CommitCodec.Decode(delta.AsSpan(0, length), Module, 1L << 32));
            }

            for (int flip = 0; flip < 64; flip++)
            {
                byte[] damaged = (byte[])delta.Clone();
                damaged[random.Next(damaged.Length)] ^= (byte)(1 << random.Next(8));
                Assert.Throws<CommitFormatException>(() => CommitCodec.Decode(damaged, Module, 1L << 32));
            }
        }
    }

    [Fact]
    public void ADeltaBiggerThanTheModulesMemory_OrOfAnotherModule_IsRefused()
    {
        CommitRecord record = Record(new Random(3), compressible: false);
        byte[] delta = CommitCodec.Encode(record, Module, compress: false);
        Assert.Contains("at most 65536", Assert.Throws<CommitFormatException>(() => CommitCodec.Decode(delta, Module, 65536)).Message);
        byte[] other = (byte[])Module.Clone();
        other[0] ^= 1;
        Assert.Contains("not the module", Assert.Throws<CommitFormatException>(() => CommitCodec.Decode(delta, other, 1L << 32)).Message);
    }

    [Fact]
    public void AnUnhashedDelta_IsForTheCommitLogOnly_AndTheRentedEncodingIsTheSame()
    {
        var random = new Random(26);
        CommitRecord record = Record(random, compressible: false);
        byte[] unhashed = CommitCodec.Encode(record, Module, compress: false, hash: false);
        Assert.Contains("carries no SHA-256", Assert.Throws<CommitFormatException>(() => CommitCodec.Decode(unhashed, Module, 1L << 32)).Message);
        CommitRecord back = CommitCodec.Decode(unhashed, Module, 1L << 32, fromLog: true);
        Assert.Equal((record.Sequence, record.MemoryByteLength), (back.Sequence, back.MemoryByteLength));
        Assert.True(record.Pages.Span.SequenceEqual(back.Pages.Span));

        (byte[] buffer, int length) = CommitCodec.EncodeRented(record, Module, hash: false);
        try
        {
            Assert.True(buffer.AsSpan(0, length).SequenceEqual(unhashed));
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }

        byte[] hashed = CommitCodec.Encode(record, Module, compress: false);
        Assert.Equal(record.Sequence, CommitCodec.Decode(hashed, Module, 1L << 32).Sequence);
    }

    [Fact]
    public void PagePatches_TurnTheOldPageIntoTheNew_AndAreNeverLargerThanThePage()
    {
        var random = new Random(1207);
        byte[] buffer = new byte[PagePatches.MaxPageBytes];
        for (int i = 0; i < 2000; i++)
        {
            byte[] old = new byte[4096], now = new byte[4096];
            random.NextBytes(old);
            old.CopyTo(now, 0);
            int edits = i % 10 == 0 ? 4096 : random.Next(0, 40); // sometimes every byte, mostly a few stretches
            for (int e = 0; e < edits; e++)
            {
                int at = random.Next(4096);
                int length = Math.Min(4096 - at, random.Next(1, i % 3 == 0 ? 3 : 40));
                random.NextBytes(now.AsSpan(at, length));
            }

            int written = PagePatches.Diff(now, old, buffer);
            Assert.InRange(written, 2, PagePatches.MaxPageBytes);
            Assert.Null(PagePatches.Check(buffer.AsSpan(0, written), 1));
            byte[] applied = (byte[])old.Clone();
            PagePatches.Apply(buffer.AsSpan(0, written), [new PageRun(7, 1)], page => page == 7 ? applied : throw new InvalidOperationException());
            Assert.True(applied.AsSpan().SequenceEqual(now), $"case {i}: the patch did not reproduce the page");
            if (old.AsSpan().SequenceEqual(now))
            {
                Assert.Equal(2, written); // an unchanged page is its count alone
            }
        }
    }

    [Fact]
    public void DamagedPagePatches_AreNamed_NotApplied()
    {
        byte[] old = new byte[4096], now = new byte[4096];
        now[100] = 1;
        now[2000] = 2;
        byte[] patch = new byte[PagePatches.MaxPageBytes];
        int length = PagePatches.Diff(now, old, patch);
        Assert.Equal(2 + 2 * (4 + 1), length);
        Assert.Contains("end", PagePatches.Check(patch.AsSpan(0, length - 1), 1));
        Assert.Contains("follow", PagePatches.Check(patch.AsSpan(0, length), 0));
        byte[] reordered = patch[..length];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(reordered.AsSpan(2 + 5), 50); // the second range before the first
        Assert.Contains("out of order", PagePatches.Check(reordered, 1));
        byte[] outside = patch[..length];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(outside.AsSpan(2 + 5), 4096);
        Assert.Contains("outside the page", PagePatches.Check(outside, 1));
    }
}

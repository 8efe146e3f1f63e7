using System.Buffers.Binary;
using System.Security.Cryptography;
using CowWasm.Memory;
using CowWasm.Memory.Images;
using CowWasm.Memory.Sync;
using CowWasm.Memory.Trackers;
using CowWasm.Tests.Support;
using FsCheck;
using FsCheck.Fluent;

namespace CowWasm.Tests.Memory;

/// <summary>Page-image files: format, atomic save, zero-copy load, copy-up on first change, and every bad input.</summary>
[Collection(nameof(HygieneCollection))] // fd and mapping counts must not see other tests' handles
public sealed class PageImageFileTests : IDisposable
{
    private static readonly byte[] s_identity = [.. SHA256.HashData("module-a"u8), 7, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    private readonly string _dir = Directory.CreateTempSubdirectory("cowwasm-snap-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    /// <summary>A committed strategy of <paramref name="pages"/> pages where page i starts with (byte)(i + 1).</summary>
    private static SyncStrategy Committed(long pages, SyncOptions? options = null)
    {
        SyncStrategy sync = SyncStrategy.Create((options ?? new SyncOptions()) with { InitialPageCount = pages, MaxPageCount = 64 });
        for (long p = 0; p < pages; p++)
        {
            sync.Leader.GetPage(p)[0] = (byte)(p + 1);
        }

        sync.Commit();
        return sync;
    }

    private string Saved(long pages = 8, byte[]? identity = null)
    {
        string path = PathOf("state.snap");
        using SyncStrategy sync = Committed(pages);
        PageImageFile.Save(path, sync.Base, sync.CommittedPageCount, identity ?? s_identity);
        return path;
    }

    [Fact]
    public void SaveThenOpen_RoundTripsHeaderAndPages_AndLeavesNoTempFiles()
    {
        string path = Saved(identity: [1, 2, 3]);
        using PageImage snapshot = PageImageFile.Open(path);
        Assert.Equal(PageImageFile.FormatVersion, snapshot.Header.FormatVersion);
        Assert.Equal(8, snapshot.Header.PageCount);
        Assert.Equal(4096, snapshot.Header.DataOffset);
        Assert.Equal([1, 2, 3], snapshot.Header.Identity);
        snapshot.VerifyData();
        Assert.Equal(4096 + 8 * 4096, new FileInfo(path).Length);
        Assert.Equal([path], Directory.GetFiles(_dir));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, OperatingSystem.IsWindows() ? default : File.GetUnixFileMode(path));
    }

    [Theory]
    [InlineData(SyncStrategyKind.SharedBase, TrackerKind.CowFile, ReplicaResetMode.Madvise)]
    [InlineData(SyncStrategyKind.SharedBase, TrackerKind.UffdWriteProtect, ReplicaResetMode.KeepResident)]
    [InlineData(SyncStrategyKind.SharedBase, TrackerKind.Compare, ReplicaResetMode.KeepResident)]
    [InlineData(SyncStrategyKind.DirtyCopy, TrackerKind.UffdWriteProtect, ReplicaResetMode.Madvise)]
    [InlineData(SyncStrategyKind.FullCopy, TrackerKind.AllPages, ReplicaResetMode.Madvise)]
    public void LoadedImage_IsMappedFromTheFile_AndTheFirstCommitCopiesItUp_WithoutTouchingTheFile(
        SyncStrategyKind kind, TrackerKind leaderTracker, ReplicaResetMode reset)
    {
        if (!DirtyTracker.IsSupported(leaderTracker))
        {
            leaderTracker = TrackerKind.CowFile;
        }

        string path = Saved();
        byte[] before = File.ReadAllBytes(path);
        using PageImage snapshot = PageImageFile.Open(path);
        using SyncStrategy sync = SyncStrategy.Create(
            new SyncOptions { Strategy = kind, LeaderTracker = leaderTracker, ResetMode = reset, MaxPageCount = 64 }, snapshot.TakeBase());
        Assert.True(sync.Base.IsReadOnly);
        Replica replica = sync.CreateReplica();
        Assert.Equal(8, replica.Memory.PageCount);
        Assert.Equal(5, replica.Memory.GetPage(4)[0]);
        if (kind == SyncStrategyKind.SharedBase)
        {
            Assert.Contains(File.ReadLines("/proc/self/maps"), line => line.EndsWith(path, StringComparison.Ordinal));
        }

        // A read scribbles (and keep-resident keeps the copy), then resets: still the file's bytes.
        replica.Memory.GetPage(2)[0] = 99;
        sync.ResetReplica(replica);
        Assert.Equal(3, replica.Memory.GetPage(2)[0]);

        // A transaction writes and grows before its commit: the copy-up must keep those uncommitted writes.
        sync.Leader.GetPage(1)[0] = 42;
        sync.GrowLeader(10);
        Assert.False(sync.Base.IsReadOnly);
        sync.Leader.GetPage(9)[0] = 43;
        sync.Commit();
        Assert.Equal(10, replica.Memory.PageCount);
        Assert.Equal([1, 42, 3, 4, 5, 6, 7, 8, 0, 43], Enumerable.Range(0, 10).Select(p => replica.Memory.GetPage(p)[0]));

        // Later transactions, rollbacks and resets behave as on any strategy.
        sync.Leader.GetPage(2)[0] = 44;
        sync.Commit();
        sync.Leader.GetPage(3)[0] = 45;
        sync.Rollback();
        replica.Memory.GetPage(2)[0] = 98;
        sync.ResetReplica(replica);
        Assert.Equal([1, 42, 44, 4], Enumerable.Range(0, 4).Select(p => replica.Memory.GetPage(p)[0]));
        Assert.Equal(44, sync.Leader.GetPage(2)[0]);
        Assert.Equal(4, sync.Leader.GetPage(3)[0]);

        Assert.Equal((0, 0), Uses(path)); // the copy-up let go of the file
        Assert.Equal(before, File.ReadAllBytes(path));
    }

    [CowProperty]
    public Property CopyUp_OfImagesWithZeroAndNonZeroPages_MatchesAByteArrayModel()
    {
        // Copy-up writes only the non-zero runs of each 1 MiB (256-page) chunk; images span up to three chunks, and
        // a page whose one non-zero byte is its last must still count as non-zero.
        var image = Gen.Choose(1, 600).SelectMany(pages =>
            Gen.Choose(0, pages - 1).Zip(Gen.Elements(0, 1, 2048, Pages.Size - 1)).Zip(Gen.Choose(1, 255))
                .ListOf().Select(writes => (Pages: pages, Writes: writes.ToArray())));
        return Prop.ForAll(image.ToArbitrary(), c =>
        {
            var model = new byte[c.Pages * Pages.Size];
            string path = PathOf("model.snap");
            using (SyncStrategy source = SyncStrategy.Create(new SyncOptions { InitialPageCount = c.Pages, MaxPageCount = c.Pages }))
            {
                foreach (((int page, int offset), int value) in c.Writes)
                {
                    source.Leader.GetPage(page)[offset] = (byte)value;
                    model[(page * Pages.Size) + offset] = (byte)value;
                }

                source.Commit();
                PageImageFile.Save(path, source.Base, c.Pages, s_identity);
            }

            using PageImage snapshot = PageImageFile.Open(path);
            using SyncStrategy sync = SyncStrategy.Create(new SyncOptions { MaxPageCount = c.Pages }, snapshot.TakeBase());
            Replica replica = sync.CreateReplica();
            sync.Leader.GetPage(c.Pages - 1)[7] = 0xEE;
            model[((c.Pages - 1) * Pages.Size) + 7] = 0xEE;
            sync.Commit();

            Assert.False(sync.Base.IsReadOnly);
            for (int p = 0; p < c.Pages; p++)
            {
                Assert.True(replica.Memory.GetPage(p).SequenceEqual(model.AsSpan(p * Pages.Size, Pages.Size)), $"page {p} differs");
            }
        });
    }

    [Fact]
    public void Save_ReplacesAnExistingFile_Atomically()
    {
        string path = Saved(pages: 4);
        using (SyncStrategy sync = Committed(6))
        {
            PageImageFile.Save(path, sync.Base, 6, []);
        }

        using PageImage snapshot = PageImageFile.Open(path);
        Assert.Equal(6, snapshot.Header.PageCount);
        Assert.Empty(snapshot.Header.Identity);
        Assert.Single(Directory.GetFiles(_dir));
    }

    [Fact]
    public void VerifyData_FindsADamagedPage()
    {
        string path = Saved();
        using (var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite))
        {
            file.Position = 4096 + 5 * 4096 + 100;
            file.WriteByte(0xEE);
        }

        using PageImage snapshot = PageImageFile.Open(path); // the header is intact: opening is fine
        var error = Assert.Throws<PageImageFormatException>(snapshot.VerifyData);
        Assert.Contains("does not match its checksum", error.Message);
    }

    public static TheoryData<string, string> BadFiles => new()
    {
        { "empty", "truncated" },
        { "short header", "truncated" },
        { "bad magic", "bad magic" },
        { "version 2", "format version 2" },
        { "header byte flipped", "header checksum mismatch" },
        { "page size 16384", "page size 16384" },
        { "data truncated", "truncated: 8 pages need" },
        { "huge identity count", "corrupt header" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void BadFile_IsRefusedClearly_WithNothingMappedOrLeaked(string damage, string expected)
    {
        string path = Saved();
        byte[] bytes = File.ReadAllBytes(path);
        byte[] Rehashed(Action<byte[]> edit)
        {
            edit(bytes);
            int headerBytes = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(12));
            bytes.AsSpan(PageImageFile.HeaderHashOffset, 32).Clear();
            SHA256.HashData(bytes.AsSpan(0, headerBytes), bytes.AsSpan(PageImageFile.HeaderHashOffset, 32));
            return bytes;
        }

        byte[] damaged = damage switch
        {
            "empty" => [],
            "short header" => bytes[..100],
            "bad magic" => Rehashed(b => b[0] = (byte)'X'),
            "version 2" => Rehashed(b => BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(8), 2)),
            "header byte flipped" => Flip(bytes, 30),
            "page size 16384" => Rehashed(b => BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(16), 16384)),
            "data truncated" => bytes[..(bytes.Length - 1)],
            "huge identity count" => Rehashed(b => BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(20), int.MaxValue)),
            _ => throw new ArgumentOutOfRangeException(nameof(damage)),
        };
        File.WriteAllBytes(path, damaged);

        GC.Collect();
        GC.WaitForPendingFinalizers();
        int fds = ProcessResources.OpenFds();
        var error = Assert.Throws<PageImageFormatException>(() => PageImageFile.Open(path));
        Assert.Contains(expected, error.Message);
        Assert.Contains(path, error.Message);
        Assert.Equal(fds, ProcessResources.OpenFds());
        Assert.Equal((0, 0), Uses(path));
    }

    /// <summary>Open fds and mappings of <paramref name="path"/> in this process.</summary>
    private static (int Fds, int Mappings) Uses(string path) => (
        Directory.GetFiles("/proc/self/fd").Count(fd => new FileInfo(fd).LinkTarget == path),
        File.ReadLines("/proc/self/maps").Count(line => line.EndsWith(path, StringComparison.Ordinal)));

    private static byte[] Flip(byte[] bytes, int at)
    {
        bytes[at] ^= 0x40;
        return bytes;
    }

    [Fact]
    public void MissingFile_IsFileNotFound()
    {
        var error = Assert.Throws<FileNotFoundException>(() => PageImageFile.Open(PathOf("nope.snap")));
        Assert.Contains("nope.snap", error.Message);
    }

    [Fact]
    public void Save_RefusesBadArguments_AndLeavesNothingBehind()
    {
        using SyncStrategy sync = Committed(2);
        string path = PathOf("x.snap");
        Assert.Throws<ArgumentOutOfRangeException>(() => PageImageFile.Save(path, sync.Base, 3, s_identity));
        Assert.Throws<ArgumentException>(() => PageImageFile.Save(path, sync.Base, 2, new byte[PageImageFile.MaxIdentityBytes + 1]));
        Assert.Throws<DirectoryNotFoundException>(() => PageImageFile.Save(PathOf("missing-dir/x.snap"), sync.Base, 2, s_identity));
        Assert.Empty(Directory.GetFiles(_dir));
    }

    [Fact]
    public void ReadOnlyImage_RefusesDirectWrites_UntilCopiedUp()
    {
        string path = Saved();
        using PageImage snapshot = PageImageFile.Open(path);
        using PageBase image = snapshot.TakeBase();
        Assert.Throws<InvalidOperationException>(() => image.Write(new PageRun(0, 1), new byte[4096]));
        Assert.Throws<InvalidOperationException>(() => image.Grow(9));
        Assert.Throws<InvalidOperationException>(snapshot.TakeBase);
    }
}

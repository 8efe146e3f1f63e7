using System.Diagnostics;
using CowWasm.Memory;
using CowWasm.Memory.Images;
using CowWasm.Memory.Sync;
using CowWasm.Memory.Trackers;
using CowWasm.Pool;
using CowWasm.Prolog;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Tests.Prolog;
using CowWasm.Tests.Runtime;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Pooling;

/// <summary>Runs the cowwasm command (src/Cli, referenced, so its dll sits next to the tests) in a fresh process.</summary>
internal static class FreshProcess
{
    public static string Cli(params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "cowwasm.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(dll);
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(start)!;
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        string errors = process.StandardError.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(3)), "the child process did not finish");
        Assert.True(process.ExitCode == 0, $"cowwasm {string.Join(' ', args)} failed ({process.ExitCode}): {errors}");
        return output.Result;
    }
}

public sealed class SnapshotPoolTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cowwasm-poolsnap-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static void Put(GuestPool pool, int key, long value) => pool.Write(g =>
    {
        KvGuest.Put(g, key, value);
        return 0;
    });

    [Theory]
    [MemberData(nameof(StrategyCases.All), MemberType = typeof(StrategyCases))]
    public void SavedPool_LoadsWithTheSameAnswers_AndWritesAfterwardsLeaveTheFileAlone(SyncStrategyKind strategy, ReplicaResetMode reset) =>
        SaveLoadWrite(new SyncOptions { Strategy = strategy, ResetMode = reset });

    /// <summary>
    /// Content-aware sync compares with the base through a shared mapping of it; after the first write copies the
    /// snapshot into a memfd, that mapping must follow. Writing a value back to what the file holds catches a
    /// mapping left on the file (the compare would call the page unchanged and replicas would keep the newer value).
    /// </summary>
    [Fact]
    public void SavedPool_WithContentAwareStoreBarrierSync_LoadsAndCommitsAfterCopyUp()
    {
        var sync = new SyncOptions
        {
            LeaderTracker = TrackerKind.StoreBarrier,
            LeaderReset = LeaderResetMode.KeepResident,
            ReplicaTracker = TrackerKind.StoreBarrier,
            ResetMode = ReplicaResetMode.KeepResident,
            SkipUnchangedPages = true,
        };
        SaveLoadWrite(sync);
        string path = Path.Combine(_dir, "kv.snap");
        using GuestPool loaded = GuestPool.CreateFromSnapshot(KvGuest.Module, KvGuest.Linker(), path, new PoolOptions { ReplicaCount = 2, Sync = sync });
        Put(loaded, 2, 201);
        Put(loaded, 2, 200); // the file's value again
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(200L, loaded.Read(g => KvGuest.Get(g, 2)));
        }
    }

    private void SaveLoadWrite(SyncOptions sync)
    {
        string path = Path.Combine(_dir, "kv.snap");
        using (GuestPool original = KvGuest.Pool(sync))
        {
            Put(original, 1, 100);
            Put(original, 2, 200);
            original.Write(g => g.GetFunction<int, int>("grow")(3)); // the saved length is the grown one
            original.SaveSnapshot(path);
            Put(original, 1, 999); // after the save: not in the file
        }

        byte[] saved = File.ReadAllBytes(path);
        using GuestPool loaded = GuestPool.CreateFromSnapshot(KvGuest.Module, KvGuest.Linker(),
            path, new PoolOptions { ReplicaCount = 3, Sync = sync }, verifyData: true);
        for (int i = 0; i < 6; i++)
        {
            Assert.Equal((100L, 200L, 65536 - 32, 5), loaded.Read(g => (KvGuest.Get(g, 1), KvGuest.Get(g, 2), KvGuest.Sp(g), g.GetFunction<int>("size")())));
        }

        Put(loaded, 2, 201);
        Assert.Throws<InvalidOperationException>(() => loaded.Write<int>(g =>
        {
            KvGuest.Put(g, 3, 300);
            throw new InvalidOperationException("rolled back");
        }));
        for (int i = 0; i < 6; i++)
        {
            Assert.Equal((100L, 201L, 0L, 65536 - 48), loaded.Read(g => (KvGuest.Get(g, 1), KvGuest.Get(g, 2), KvGuest.Get(g, 3), KvGuest.Sp(g))));
        }

        Assert.Equal(saved, File.ReadAllBytes(path));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ASnapshotOthersCanWrite_IsCopiedAtLoad_SoTruncatingItLaterChangesNothing(bool writableByOthers)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException();
        }

        string path = Path.Combine(_dir, $"kv-{writableByOthers}.snap");
        using (GuestPool pool = KvGuest.Pool())
        {
            Put(pool, 5, 55);
            pool.SaveSnapshot(path);
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path)); // snapshots are 0600
        if (writableByOthers)
        {
            File.SetUnixFileMode(path, File.GetUnixFileMode(path) | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite);
        }

        using GuestPool loaded = GuestPool.CreateFromSnapshot(KvGuest.Module, KvGuest.Linker(), path);
        bool mapped = File.ReadLines("/proc/self/maps").Any(line => line.EndsWith(path, StringComparison.Ordinal));
        Assert.Equal(!writableByOthers, mapped); // ours and private: mapped in place (O(1)); otherwise copied and closed
        if (writableByOthers)
        {
            Assert.DoesNotContain(Directory.GetFiles("/proc/self/fd"), fd => new FileInfo(fd).LinkTarget == path);
            File.WriteAllBytes(path, []); // what another user could do to it now
            Assert.Equal(55L, loaded.Read(g => KvGuest.Get(g, 5)));
            Put(loaded, 6, 66);
            Assert.Equal((55L, 66L), loaded.Read(g => (KvGuest.Get(g, 5), KvGuest.Get(g, 6))));
        }
    }

    [Theory]
    [InlineData("wasmtime")]
    [InlineData("native")]
    public void Snapshot_CarriesTheStateToAFreshProcess_OnEitherRuntime(string runtime)
    {
        string path = Path.Combine(_dir, "kv.snap");
        using (GuestPool pool = KvGuest.Pool())
        {
            Put(pool, 5, 55);
            Put(pool, 255, -1);
            pool.SaveSnapshot(path);
        }

        string output = FreshProcess.Cli("call", Path.Combine(AppContext.BaseDirectory, "Guests", "kv.wat"), "--runtime", runtime, "--snapshot", path,
            "get:5", "get:255", "get:6", "sp");
        Assert.Equal(["get(5) = 55", "get(255) = -1", "get(6) = 0", $"sp() = {65536 - 32}"],
            output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    [Fact]
    public void Snapshot_OfAnotherModule_IsRefused_AndNothingStaysOpen()
    {
        string path = Path.Combine(_dir, "kv.snap");
        using (GuestPool pool = KvGuest.Pool())
        {
            pool.SaveSnapshot(path);
        }

        var basic = TestModules.Get("basic");
        var error = Assert.Throws<SnapshotFormatException>(() => GuestPool.CreateFromSnapshot(basic, TestModules.BasicLinker(basic), path));
        Assert.Contains("not the module given", error.Message);
        Assert.DoesNotContain(Directory.GetFiles("/proc/self/fd"), fd => new FileInfo(fd).LinkTarget == path);
        Assert.DoesNotContain(File.ReadLines("/proc/self/maps"), line => line.EndsWith(path, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(0)] // below the declared minimum of 1 Wasm page: instantiation would write into unmapped memory
    [InlineData(5)] // above the declared maximum of 4
    public void Snapshot_WhoseMemoryTheModuleCouldNotHave_IsRefused_AndNothingStaysOpen(int wasmPages)
    {
        WasmModule module = TestModules.Get("bounds");
        string path = Path.Combine(_dir, $"lying-{wasmPages}.snap");
        long pages = wasmPages * (long)ILinearMemory.PagesPerWasmPage;
        using (PageBase image = PageBase.Create(pages))
        {
            PoolSnapshot.Save(path, image, pages, PoolSnapshot.ModuleHashOf(module), [], sequence: 0, CommitId.Unknown);
        }

        var error = Assert.Throws<SnapshotFormatException>(() => GuestPool.CreateFromSnapshot(module, BoundsGuest.Linker(), path));
        Assert.Contains($"holds {wasmPages} Wasm pages; the module's memory takes 1 to 4", error.Message);
        Assert.DoesNotContain(Directory.GetFiles("/proc/self/fd"), fd => new FileInfo(fd).LinkTarget == path);
        Assert.DoesNotContain(File.ReadLines("/proc/self/maps"), line => line.EndsWith(path, StringComparison.Ordinal));
    }

    [Fact]
    public void PageImage_WithoutAPoolIdentity_IsRefused_AndNothingStaysOpen()
    {
        string path = Path.Combine(_dir, "plain.image");
        using (var sync = SyncStrategy.Create(new SyncOptions { InitialPageCount = 32, MaxPageCount = 64 }))
        {
            PageImageFile.Save(path, sync.Base, 32, "someone else's bytes"u8);
        }

        var error = Assert.Throws<SnapshotFormatException>(() => GuestPool.CreateFromSnapshot(KvGuest.Module, KvGuest.Linker(), path));
        Assert.Contains("not a pool snapshot", error.Message);
        Assert.DoesNotContain(Directory.GetFiles("/proc/self/fd"), fd => new FileInfo(fd).LinkTarget == path);
        Assert.DoesNotContain(File.ReadLines("/proc/self/maps"), line => line.EndsWith(path, StringComparison.Ordinal));
    }

    [Fact]
    public void Snapshot_WhosePageImageIsDamaged_IsASnapshotFormatError()
    {
        string path = Path.Combine(_dir, "kv.snap");
        using (GuestPool pool = KvGuest.Pool())
        {
            pool.SaveSnapshot(path);
        }

        using (var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite))
        {
            file.Position = 30; // inside the checksummed header
            file.WriteByte(0x5A);
        }

        var error = Assert.Throws<SnapshotFormatException>(() => GuestPool.CreateFromSnapshot(KvGuest.Module, KvGuest.Linker(), path));
        Assert.Contains("header checksum mismatch", error.Message);
        Assert.IsType<PageImageFormatException>(error.InnerException);
    }

    [Fact]
    public void SaveSnapshot_OnADisposedPool_Throws()
    {
        GuestPool pool = KvGuest.Pool();
        pool.Dispose();
        Assert.Throws<ObjectDisposedException>(() => pool.SaveSnapshot(Path.Combine(_dir, "x.snap")));
        Assert.Empty(Directory.GetFiles(_dir));
    }
}

[Collection(TreallaCollection.Name)]
public sealed class PrologSnapshotTests(TreallaFixture trealla) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cowwasm-plsnap-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task ConsultSaveLoadElsewhere_AnswersTheSame()
    {
        string path = Path.Combine(_dir, "prolog.snap");
        string[] goals = ["parent(tom, X)", "ancestor(tom, Who)", "fact(N)"];
        var expected = new List<string>();
        using (PrologPool pool = PrologPool.Create(trealla.Module, PrologPool.DefaultOptions with { ReplicaCount = 2 }))
        {
            await pool.ConsultAsync("""
                parent(tom, bob). parent(bob, ann). parent(bob, pat).
                ancestor(X, Y) :- parent(X, Y).
                ancestor(X, Y) :- parent(X, Z), ancestor(Z, Y).
                """);
            await pool.AssertAsync("fact(1)");
            await pool.AssertAsync("fact(2)");
            foreach (string goal in goals)
            {
                expected.Add($"{goal} -> {string.Join(" ; ", await pool.QueryAllAsync(goal))}");
            }

            await pool.SaveSnapshotAsync(path);
        }

        Assert.Contains("ann", expected[1]);
        using (PrologPool loaded = PrologPool.CreateFromSnapshot(trealla.Module, path, PrologPool.DefaultOptions with { ReplicaCount = 2 }))
        {
            for (int i = 0; i < goals.Length; i++)
            {
                Assert.Equal(expected[i], $"{goals[i]} -> {string.Join(" ; ", await loaded.QueryAllAsync(goals[i]))}");
            }

            await loaded.AssertAsync("fact(3)"); // the first write copies the image up; the file stays as saved
            Assert.Equal(3, (await loaded.QueryAllAsync("fact(N)")).Count);
        }

        string output = FreshProcess.Cli(["prolog", "--snapshot", path, .. goals]);
        Assert.Equal(expected, output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }
}

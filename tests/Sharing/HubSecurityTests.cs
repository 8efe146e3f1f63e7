using System.Diagnostics;
using System.Net.Sockets;
using CowWasm.Memory;
using CowWasm.Memory.Native;
using CowWasm.Memory.Sharing;
using CowWasm.Memory.Sync;

namespace CowWasm.Tests.Sharing;

/// <summary>
/// Who may follow a hub and what a follower can do to the leader's base: the socket is the user's alone, the peer's uid
/// is checked, followers get read-only descriptors of a base sealed against shrinking, and a socket file left by a crash
/// does not stop the next hub.
/// </summary>
public sealed class HubSecurityTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cowwasm-hubsec-").FullName;

    private string SocketPath => Path.Combine(_dir, "hub.sock");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static SyncStrategy Leader() => SyncStrategy.Create(new SyncOptions
    {
        Strategy = SyncStrategyKind.SharedBase,
        InitialPageCount = 16,
        MaxPageCount = 256,
    });

    private static FollowerHub Hub(SyncStrategy leader, string path) => FollowerHub.Attach(leader, path, "m"u8.ToArray(), () => []);

    /// <summary>
    /// Before: the follower received the leader's read-write descriptor, so it could truncate the base (the leader then
    /// died of SIGBUS) or rewrite committed pages.
    /// </summary>
    [Fact]
    public void AFollower_CannotWriteOrShrinkTheBase()
    {
        using SyncStrategy leader = Leader();
        using FollowerHub hub = Hub(leader, SocketPath);
        using BaseFollower follower = BaseFollower.Connect(SocketPath, new FollowerOptions { MaxPageCount = 256, ExpectedIdentity = "m"u8.ToArray() });
        SafeFdHandle received = follower.Base.Handle;
        Assert.ThrowsAny<Exception>(() => Libc.Ftruncate(received, 0));
        Assert.ThrowsAny<Exception>(() => WriteOnePage(received));

        // The same user can reopen the file for writing through /proc (the uid check is the boundary for that), but not
        // shrink it: the seal holds for every descriptor.
        using SafeFdHandle reopened = Libc.Open($"/proc/self/fd/{(int)received.DangerousGetHandle()}", OpenFlags.O_RDWR);
        Exception shrink = Assert.ThrowsAny<Exception>(() => Libc.Ftruncate(reopened, 0));
        Assert.Contains("EPERM", shrink.Message, StringComparison.Ordinal);
        Assert.Equal(Pages.ToBytes(16), Libc.FileSize(leader.Base.Handle));
    }

    private static unsafe void WriteOnePage(SafeFdHandle fd)
    {
        byte* page = stackalloc byte[Pages.Size];
        Libc.PwriteExactly(fd, page, Pages.Size, 0);
    }

    [Fact]
    public void TheSocket_IsTheUsersAlone()
    {
        using SyncStrategy leader = Leader();
        using FollowerHub hub = Hub(leader, SocketPath);
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException();
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(SocketPath));
    }

    /// <summary>
    /// A process of another user is refused by the peer check even when the socket's mode would let it in (before: any
    /// process that could open the socket got the base). Runs the other user's side with setpriv as nobody (uid 65534),
    /// which needs root; the suite runs as root in CI and here.
    /// </summary>
    [Fact]
    public async Task AProcessOfAnotherUser_IsRefused()
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException();
        }

        Assert.True(Libc.EffectiveUserId == 0, "this test switches to uid 65534 with setpriv, which needs root");
        using SyncStrategy leader = Leader();
        var dropped = new List<string>();
        using FollowerHub hub = Hub(leader, SocketPath);
        hub.Dropped = reason =>
        {
            lock (dropped)
            {
                dropped.Add(reason);
            }
        };
        File.SetUnixFileMode(_dir, (UnixFileMode)0b111_101_101);

        string atMode0600 = await AsNobodyAsync(SocketPath);
        Assert.Contains("EACCES", atMode0600, StringComparison.Ordinal);

        File.SetUnixFileMode(SocketPath, (UnixFileMode)0b110_110_110); // as if the operator had opened it up
        string opened = await AsNobodyAsync(SocketPath);
        Assert.Contains("uid 65534", opened, StringComparison.Ordinal);
        lock (dropped)
        {
            Assert.Contains(dropped, d => d.Contains("uid 65534", StringComparison.Ordinal));
        }
    }

    /// <summary>Connects as nobody with node and returns what it received (or the error code).</summary>
    private static async Task<string> AsNobodyAsync(string socketPath)
    {
        const string script = "const c=require('net').createConnection(process.argv[1]);let b=Buffer.alloc(0);" +
            "c.on('data',d=>{b=Buffer.concat([b,d])});c.on('close',()=>process.stdout.write(b.toString('latin1')));" +
            "c.on('error',e=>process.stdout.write('ERR '+e.code));";
        var start = new ProcessStartInfo("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "node", "-e", script, socketPath])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using Process process = Process.Start(start)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        string output = await process.StandardOutput.ReadToEndAsync(timeout.Token);
        string error = await process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        return output + error;
    }

    /// <summary>Before: a socket file left by a leader killed with SIGKILL stopped the next hub from starting.</summary>
    [Fact]
    public async Task AStaleSocketFile_IsReplaced_ButALiveHubOrAnotherFileIsNot()
    {
        // A listener killed with SIGKILL leaves its socket file behind (.NET removes its own on dispose, so node does it).
        using (Process crashed = Process.Start(new ProcessStartInfo("node",
            ["-e", "require('net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))", SocketPath]))!)
        {
            await crashed.WaitForExitAsync();
        }

        Assert.True(File.Exists(SocketPath));
        using SyncStrategy leader = Leader();
        using (FollowerHub hub = Hub(leader, SocketPath))
        {
            using BaseFollower follower = BaseFollower.Connect(SocketPath, new FollowerOptions { MaxPageCount = 256, ExpectedIdentity = "m"u8.ToArray() });
            using SyncStrategy other = Leader();
            Assert.Throws<IOException>(() => Hub(other, SocketPath)); // a live hub keeps its socket
        }

        string regular = Path.Combine(_dir, "not-a-socket");
        File.WriteAllText(regular, "keep me");
        using SyncStrategy third = Leader();
        Assert.Throws<IOException>(() => Hub(third, regular));
        Assert.Equal("keep me", File.ReadAllText(regular));
    }
}

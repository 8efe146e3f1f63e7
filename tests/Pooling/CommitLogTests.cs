using System.Diagnostics;
using System.Security.Cryptography;
using CowWasm.Pool.Log;
using CowWasm.Tests.Support;
using FsCheck;
using FsCheck.Fluent;

namespace CowWasm.Tests.Pooling;

/// <summary>
/// The commit log: what is appended is read back in order across segments and reopenings; a torn last record is cut
/// and reported; any other damage, a gap or another module's log stops with the file and offset; concurrent appends
/// share fsyncs; and every append acknowledged before a SIGKILL is there after it (child processes).
/// </summary>
public sealed class CommitLogTests : IDisposable
{
    private static readonly byte[] s_identity = SHA256.HashData("kv.wat"u8);
    private readonly string _dir = Directory.CreateTempSubdirectory("cowwasm-log-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>The payload the tests and the crash probe write for commit <paramref name="sequence"/>.</summary>
    internal static byte[] PayloadOf(long sequence) => CowWasm.CrashProbe.Probe.PayloadOf(sequence);

    private CommitLog Open(string? dir = null, Action<string, long, string>? torn = null, long segmentBytes = 16 * 1024) =>
        CommitLog.Open(dir ?? _dir, s_identity, tornTail: torn, segmentBytes: segmentBytes);

    private static async Task AppendAsync(CommitLog log, long from, long to)
    {
        for (long s = from; s <= to; s++)
        {
            await log.AppendAsync(s, PayloadOf(s));
        }
    }

    /// <summary>For the property (FsCheck's body is synchronous): each append is awaited before the next.</summary>
    private static void AppendAll(CommitLog log, long from, long to)
    {
        for (long s = from; s <= to; s++)
        {
            ValueTask durable = log.AppendAsync(s, PayloadOf(s));
            if (!durable.IsCompleted)
            {
                durable.AsTask().GetAwaiter().GetResult();
            }
        }
    }

    private static void AssertHolds(CommitLog log, long after, long last)
    {
        long expected = after + 1;
        foreach (CommitLogEntry entry in log.ReadAfter(after))
        {
            Assert.Equal(expected, entry.Sequence);
            Assert.True(entry.Payload.Span.SequenceEqual(PayloadOf(expected)), $"commit {expected}'s bytes differ");
            expected++;
        }

        Assert.Equal(last + 1, expected);
    }

    [CowProperty]
    public Property Appends_ReadBackInOrder_AcrossSegmentsAndReopenings() =>
        Prop.ForAll(Gen.Choose(1, 120).SelectMany(n => Gen.Choose(0, n).Select(k => (n, k))).ToArbitrary(), c =>
        {
            string dir = Path.Combine(_dir, Guid.NewGuid().ToString("N"));
            using (CommitLog log = Open(dir))
            {
                AppendAll(log, 1, c.n);
                AssertHolds(log, 0, c.n);
            }

            using CommitLog reopened = Open(dir);
            Assert.Equal(c.n, reopened.LastSequence);
            AssertHolds(reopened, c.k, c.n);
            long bytes = 64 + Enumerable.Range(1, c.n).Sum(s => 16L + PayloadOf(s).Length);
            Assert.Equal(bytes > 16 * 1024, Directory.GetFiles(dir, "*.cwlog").Length > 1); // more than a segment's worth rolls over
        });

    [Fact]
    public async Task ConcurrentAppenders_ShareFsyncs()
    {
        using CommitLog log = Open(segmentBytes: CommitLog.DefaultSegmentBytes);
        var order = new Lock();
        long next = 0;
        await Task.WhenAll(Enumerable.Range(0, 64).Select(_ => Task.Run(async () =>
        {
            for (int i = 0; i < 20; i++)
            {
                ValueTask durable;
                lock (order)
                {
                    long s = ++next;
                    durable = log.AppendAsync(s, PayloadOf(s)); // written in order under the lock; the fsync is awaited outside it
                }

                await durable;
            }
        })));
        Assert.Equal(64 * 20, log.LastSequence);
        Assert.True(log.Flushes < 64 * 20, $"{log.Flushes} fsyncs for {64 * 20} appends: none shared");
        AssertHolds(log, 0, 64 * 20);
    }

    [Fact]
    public async Task AnAppendOutOfOrder_IsRefused()
    {
        using CommitLog log = Open();
        await AppendAsync(log, 1, 3);
        Assert.Contains("the next is 4, not 6", (await Assert.ThrowsAsync<ArgumentException>(() => log.AppendAsync(6, PayloadOf(6)).AsTask())).Message);
        await log.AppendAsync(4, PayloadOf(4));
    }

    [Theory]
    [InlineData("cut inside the payload")]
    [InlineData("cut inside the header")]
    [InlineData("zeros after the last record")]
    [InlineData("last record's bytes garbled")]
    public async Task ATornLastRecord_IsCutAndReported_AndTheRestReplays(string how)
    {
        string segment;
        long recordStart;
        using (CommitLog log = Open(segmentBytes: CommitLog.DefaultSegmentBytes))
        {
            await AppendAsync(log, 1, 9);
            recordStart = new FileInfo(Directory.GetFiles(_dir, "*.cwlog").Single()).Length;
            await log.AppendAsync(10, PayloadOf(10));
            segment = Directory.GetFiles(_dir, "*.cwlog").Single();
        }

        long length = new FileInfo(segment).Length;
        using (var file = new FileStream(segment, FileMode.Open))
        {
            switch (how)
            {
                case "cut inside the payload": file.SetLength(length - 1); break;
                case "cut inside the header": file.SetLength(recordStart + 7); break;
                case "zeros after the last record": file.SetLength(recordStart); file.SetLength(recordStart + 4096); break;
                case "last record's bytes garbled": file.Position = length - 1; file.WriteByte(0x5A); break;
            }
        }

        var reported = new List<(string, long)>();
        using (CommitLog reopened = Open(torn: (path, offset, _) => reported.Add((path, offset)), segmentBytes: CommitLog.DefaultSegmentBytes))
        {
            Assert.Equal([(segment, recordStart)], reported);
            Assert.Equal(9, reopened.LastSequence);
            AssertHolds(reopened, 0, 9);
            await reopened.AppendAsync(10, PayloadOf(10)); // the log goes on where the torn record was
        }

        using CommitLog again = Open(segmentBytes: CommitLog.DefaultSegmentBytes);
        AssertHolds(again, 0, 10);
    }

    [Fact]
    public async Task AFlippedBitBeforeTheLastRecord_StopsStartUp_NamingFileAndOffset()
    {
        long third;
        using (CommitLog log = Open(segmentBytes: CommitLog.DefaultSegmentBytes))
        {
            await AppendAsync(log, 1, 2);
            third = new FileInfo(Directory.GetFiles(_dir, "*.cwlog").Single()).Length;
            await AppendAsync(log, 3, 6);
        }

        string segment = Directory.GetFiles(_dir, "*.cwlog").Single();
        using (var file = new FileStream(segment, FileMode.Open))
        {
            file.Position = third + 20; // inside commit 3's payload
            int b = file.ReadByte();
            file.Position = third + 20;
            file.WriteByte((byte)(b ^ 0x10));
        }

        var e = Assert.Throws<CommitLogFormatException>(() => Open(segmentBytes: CommitLog.DefaultSegmentBytes));
        Assert.Equal((segment, third), (e.Path, e.Offset));
        Assert.Contains("checksum", e.Message);
    }

    [Fact]
    public async Task AnotherModulesLog_AMissingSegment_AndAForeignFile_AreRefused()
    {
        using (CommitLog log = Open(segmentBytes: 2048))
        {
            await AppendAsync(log, 1, 12);
        }

        Assert.Contains("another module", Assert.Throws<CommitLogFormatException>(() =>
            CommitLog.Open(_dir, SHA256.HashData("basic.wat"u8))).Message);

        string[] segments = [.. Directory.GetFiles(_dir, "*.cwlog").Order(StringComparer.Ordinal)];
        Assert.True(segments.Length >= 3, $"{segments.Length} segments");
        File.Move(segments[1], segments[1] + ".moved");
        Assert.Contains("the segment before ends at", Assert.Throws<CommitLogFormatException>(() => Open(segmentBytes: 2048)).Message);
        File.Move(segments[1] + ".moved", segments[1]);

        File.WriteAllText(Path.Combine(_dir, "00000000000000000099.cwlog"), "not a segment");
        Assert.Throws<CommitLogFormatException>(() => Open(segmentBytes: 2048));
    }

    [Fact]
    public async Task Segments_ASnapshotCovers_AreDeleted_AndTheRestStillReads()
    {
        using (CommitLog log = Open(segmentBytes: 2048))
        {
            await AppendAsync(log, 1, 40);
            int before = Directory.GetFiles(_dir, "*.cwlog").Length;
            int deleted = log.DeleteThrough(25);
            Assert.True(deleted > 0 && deleted < before, $"{deleted} of {before}");
            AssertHolds(log, 25, 40);
            await log.AppendAsync(41, PayloadOf(41));
            Assert.Contains("open elsewhere", Assert.Throws<IOException>(() => Open(segmentBytes: 2048)).Message); // one writer
        }

        using CommitLog reopened = Open(segmentBytes: 2048);
        Assert.Equal(41, reopened.LastSequence);
        AssertHolds(reopened, 25, 41);
    }

    [Fact]
    public void EveryAppendAcknowledgedBeforeASigkill_IsThereAfterIt()
    {
        var random = new Random(20261207);
        int kills = 0, acknowledgedTotal = 0, beyond = 0;
        for (int round = 0; round < 20; round++)
        {
            string probe = Path.Combine(AppContext.BaseDirectory, "CowWasm.CrashProbe.dll");
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (string arg in new[] { probe, "commit-log", _dir })
            {
                start.ArgumentList.Add(arg);
            }

            start.Environment["DOTNET_DbgEnableMiniDump"] = "0";
            long acknowledged = 0;
            using (Process child = Process.Start(start)!)
            {
                int wanted = random.Next(5, 400);
                while (child.StandardOutput.ReadLine() is { } line)
                {
                    if (line.StartsWith("acked ", StringComparison.Ordinal))
                    {
                        acknowledged = Math.Max(acknowledged, long.Parse(line[6..], System.Globalization.CultureInfo.InvariantCulture));
                        if (--wanted == 0)
                        {
                            child.Kill(); // SIGKILL, mid-stream: appends in flight, fsyncs pending
                            kills++;
                            break;
                        }
                    }
                }

                Assert.True(child.WaitForExit(TimeSpan.FromMinutes(1)), "the probe did not end");
                Assert.True(wanted == 0, $"the probe ended by itself: {child.StandardError.ReadToEnd()}");
            }

            using CommitLog log = CommitLog.Open(_dir, s_identity, tornTail: (_, _, _) => { });
            Assert.True(log.LastSequence >= acknowledged, $"round {round}: commit {acknowledged} was acknowledged, the log ends at {log.LastSequence}");
            AssertHolds(log, 0, log.LastSequence); // and nothing is half there
            acknowledgedTotal += (int)acknowledged;
            beyond += (int)(log.LastSequence - acknowledged);
        }

        Assert.Equal(20, kills);
        Console.WriteLine($"20 SIGKILLs; {acknowledgedTotal} acknowledged appends all kept; {beyond} written but unacknowledged when killed");
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Text;
using CowWasm.Bench.Comparison;
using CowWasm.Memory;
using CowWasm.Memory.Sharing;
using CowWasm.Memory.Sync;

namespace CowWasm.Bench.Sharing;

/// <summary>
/// <c>followers [COMMITS]</c>: same-host followers (src/CowMemory/Sharing) against the in-process pool they extend.
/// (1) How long until a follower process's replica shows a commit of 17 dirty pages (the pages a Trealla assertz
/// changes), vs the in-process SharedBase commit with one replica: the follower child prints each sequence the moment
/// it applied it; the leader times Commit() start → that line. (2) The private memory (Private_Dirty and Pss of the
/// replica mappings) of 4 follower processes × 4 replicas vs 1 follower process × 16, each replica having read all
/// 4,096 pages of the base and scribbled on 64 (every replica touches its pages before any process is measured: Pss
/// divides a shared page by all its mappings). Writes docs/results/followers.md and keys in summary.json.
/// <c>follow-child SOCKET REPLICAS</c> is the child.
/// </summary>
internal static class FollowerBench
{
    private const long BasePages = 4096;
    private const int DirtyPages = 17;
    private const int ScratchPages = 64;

    public static async Task<int> RunAsync(string[] args)
    {
        int commits = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 300;
        string dir = Directory.CreateTempSubdirectory("cowwasm-followers-").FullName;
        try
        {
            using SyncStrategy leader = SyncStrategy.Create(new SyncOptions
            {
                Strategy = SyncStrategyKind.SharedBase, InitialPageCount = BasePages, MaxPageCount = BasePages * 2, SkipUnchangedPages = true,
            });
            for (long page = 0; page < BasePages; page++)
            {
                leader.Leader.GetPage(page).Fill((byte)(page % 251 + 1));
            }

            leader.Commit();
            Replica local = leader.CreateReplica();
            var random = new Random(42);
            void Dirty()
            {
                for (int i = 0; i < DirtyPages; i++)
                {
                    leader.Leader.GetPage(random.NextInt64(BasePages)).Fill((byte)random.Next(1, 256));
                }
            }

            TimeSpan inProcess = Measure.Median(commits, Dirty, () => leader.Commit());
            Console.WriteLine($"in-process SharedBase commit, {DirtyPages} pages, 1 replica: {inProcess.TotalMicroseconds:0} µs");
            local.Dispose();

            string socket = Path.Combine(dir, "hub.sock");
            long sequence = 0;
            using var hub = FollowerHub.Attach(leader, socket, default, () => []);
            double followerUs, commitWithFollowerUs;
            using (var child = FollowerChild.Start(socket, 1))
            {
                var times = new double[commits];
                var commitTimes = new double[commits];
                for (int i = 0; i < commits; i++)
                {
                    Dirty();
                    long start = Stopwatch.GetTimestamp();
                    leader.Commit();
                    commitTimes[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
                    sequence++;
                    child.WaitFor(sequence);
                    times[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
                }

                Array.Sort(times);
                Array.Sort(commitTimes);
                followerUs = times[commits / 2];
                commitWithFollowerUs = commitTimes[commits / 2];
            }

            Console.WriteLine($"follower process sees the commit: {followerUs:0} µs (median of {commits})");

            // Memory: 1 process x 16 replicas, then 4 processes x 4.
            (long Dirty, long Pss) one, four = (0, 0);
            using (var single = FollowerChild.Start(socket, 16))
            {
                single.Touch();
                one = single.Footprint();
            }

            var children = Enumerable.Range(0, 4).Select(_ => FollowerChild.Start(socket, 4)).ToList();
            try
            {
                children.ForEach(c => c.Touch()); // all replicas of all processes map the pages before any is measured
                foreach (FollowerChild c in children)
                {
                    (long d, long p) = c.Footprint();
                    four = (four.Dirty + d, four.Pss + p);
                }
            }
            finally
            {
                children.ForEach(c => c.Dispose());
            }

            Console.WriteLine($"replica memory, 1 process x 16: Private_Dirty {one.Dirty / 1048576.0:0.0} MiB, Pss {one.Pss / 1048576.0:0.0} MiB");
            Console.WriteLine($"replica memory, 4 processes x 4: Private_Dirty {four.Dirty / 1048576.0:0.0} MiB, Pss {four.Pss / 1048576.0:0.0} MiB");

            var keys = new Dictionary<string, object?>
            {
                ["followers_inprocess_commit_us"] = Math.Round(inProcess.TotalMicroseconds, 1),
                ["followers_follower_sees_commit_us"] = Math.Round(followerUs, 1),
                ["followers_leader_commit_with_follower_us"] = Math.Round(commitWithFollowerUs, 1),
                ["followers_visibility_vs_inprocess"] = Math.Round(followerUs / inProcess.TotalMicroseconds, 2),
                ["followers_private_dirty_4x4_vs_1x16"] = Math.Round(four.Dirty / (double)Math.Max(1, one.Dirty), 2),
                ["followers_pss_4x4_vs_1x16"] = Math.Round(four.Pss / (double)Math.Max(1, one.Pss), 2),
                ["followers_measured"] = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture),
            };
            var md = new StringBuilder();
            md.AppendLine("# Followers on one host (`followers`)");
            md.AppendLine();
            md.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"Measured {keys["followers_measured"]} on {Environment.ProcessorCount} CPUs, one run, idle machine; " +
                $"`dotnet bench/bin/Release/net10.0/CowWasm.Bench.dll followers {commits}`. Base of {BasePages} pages; commits of " +
                $"{DirtyPages} random dirty pages; followers are child processes (`follow-child`)."));
            md.AppendLine();
            md.AppendLine("| measure | value |");
            md.AppendLine("|---|---:|");
            md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| in-process SharedBase commit (1 replica), median | {inProcess.TotalMicroseconds:0} µs |"));
            md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| the leader's commit with a follower attached (prepare, pin, write, commit frame), median | {commitWithFollowerUs:0} µs |"));
            md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| commit start → a follower process applied it (and said so on a pipe), median | {followerUs:0} µs |"));
            md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| replica Private_Dirty, 1 process × 16 | {one.Dirty / 1048576.0:0.0} MiB |"));
            md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| replica Private_Dirty, 4 processes × 4 | {four.Dirty / 1048576.0:0.0} MiB |"));
            md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| replica Pss, 1 process × 16 | {one.Pss / 1048576.0:0.0} MiB |"));
            md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| replica Pss, 4 processes × 4 | {four.Pss / 1048576.0:0.0} MiB |"));
            md.AppendLine();
            foreach ((string key, object? value) in keys)
            {
                md.AppendLine(CultureInfo.InvariantCulture, $"- `{key}` = {value}");
            }

            string results = Path.Combine(RuntimeVariantsProbe.RepoRoot(), "docs", "results");
            File.WriteAllText(Path.Combine(results, "followers.md"), md.ToString());
            RuntimeVariantsProbe.MergeSummary(Path.Combine(results, "summary.json"), keys);
            Console.Write(md);
            return 0;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The child: follows, reads every page and scribbles on <see cref="ScratchPages"/> in each replica, reports.</summary>
    public static int Child(string[] args)
    {
        int replicas = int.Parse(args[1], CultureInfo.InvariantCulture);
        using BaseFollower follower = BaseFollower.Connect(args[0], new FollowerOptions { ReplicaCount = replicas, MaxPageCount = BasePages * 2 });
        var stdout = Console.Out;
        follower.Applied = sequence =>
        {
            stdout.WriteLine(sequence.ToString(CultureInfo.InvariantCulture));
            stdout.Flush();
        };
        stdout.WriteLine("ready");
        stdout.Flush();
        var rented = new List<FollowedReplica>();
        while (Console.ReadLine() is { } line && line != "exit")
        {
            if (line == "touch")
            {
                long sum = 0;
                for (int i = 0; i < replicas; i++)
                {
                    FollowedReplica replica = follower.RentAsync().AsTask().GetAwaiter().GetResult();
                    rented.Add(replica);
                    for (long page = 0; page < replica.Memory.PageCount; page++)
                    {
                        sum += replica.Memory.ReadSpan(Pages.ToBytes(page) + 7, 1)[0];
                    }

                    for (int s = 0; s < ScratchPages; s++)
                    {
                        replica.Memory.GetPage(s * 61 % replica.Memory.PageCount).Fill(0x5A);
                    }
                }

                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"touched {sum}"));
                stdout.Flush();
            }
            else if (line == "footprint")
            {
                (long dirty, long pss) = Measure.Footprint(rented.Select(r => r.Memory));
                rented.ForEach(r => follower.Return(r));
                rented.Clear();
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"footprint {dirty} {pss}"));
                stdout.Flush();
            }
        }

        return 0;
    }

    private sealed class FollowerChild : IDisposable
    {
        private readonly Process _process;

        private FollowerChild(Process process) => _process = process;

        public static FollowerChild Start(string socket, int replicas)
        {
            var start = new ProcessStartInfo("dotnet") { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (string arg in new[] { Path.Combine(AppContext.BaseDirectory, "CowWasm.Bench.dll"), "follow-child", socket, $"{replicas}" })
            {
                start.ArgumentList.Add(arg);
            }

            var child = new FollowerChild(Process.Start(start)!);
            if (child._process.StandardOutput.ReadLine() != "ready")
            {
                throw new InvalidOperationException("The follower child did not start.");
            }

            return child;
        }

        public void WaitFor(long sequence)
        {
            while (_process.StandardOutput.ReadLine() is { } line)
            {
                if (long.TryParse(line, CultureInfo.InvariantCulture, out long applied) && applied >= sequence)
                {
                    return;
                }
            }

            throw new InvalidOperationException("The follower child ended.");
        }

        /// <summary>Every replica reads all pages and scribbles on some; they stay rented until <see cref="Footprint"/>.</summary>
        public void Touch()
        {
            _process.StandardInput.WriteLine("touch");
            _process.StandardInput.Flush();
            while (_process.StandardOutput.ReadLine() is { } line)
            {
                if (line.StartsWith("touched ", StringComparison.Ordinal))
                {
                    return;
                }
            }

            throw new InvalidOperationException("The follower child ended.");
        }

        public (long Dirty, long Pss) Footprint()
        {
            _process.StandardInput.WriteLine("footprint");
            _process.StandardInput.Flush();
            while (_process.StandardOutput.ReadLine() is { } line)
            {
                if (line.StartsWith("footprint ", StringComparison.Ordinal))
                {
                    string[] parts = line.Split(' ');
                    return (long.Parse(parts[1], CultureInfo.InvariantCulture), long.Parse(parts[2], CultureInfo.InvariantCulture));
                }
            }

            throw new InvalidOperationException("The follower child ended.");
        }

        public void Dispose()
        {
            _process.StandardInput.WriteLine("exit");
            _process.StandardInput.Flush();
            if (!_process.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                _process.Kill(entireProcessTree: true);
            }

            _process.Dispose();
        }
    }
}

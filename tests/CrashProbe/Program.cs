using System.Runtime.InteropServices;
using CowWasm.CrashProbe;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

// Crash-class scenarios, run by GuardPageCrashTests in a child process:
//   CowWasm.CrashProbe <scenario> <bounds.wat> <cache dir>
// Each prints what worked before the fault it is about, so the test can tell the crash came where it should.
//   control               a native fault with no CowWasm handler installed (how .NET reports it)
//   outside-guest         the guard-page handler is installed and has turned a guest fault into a trap; then a native
//                         fault outside any guest call
//   in-host-call          a native fault inside a host function that a guard-page guest called
//   guest-trap            only the guest fault: the process must exit normally
//   mixed-traps           both backends in one process (the native guard-page handler and Wasmtime's handler both
//                         installed): 4 threads, each 300 rounds of a native guest trap, a Wasmtime guest trap and a
//                         caught NullReferenceException; the process must exit normally
//   mixed-outside         the same, then a native fault outside any guest call: it must crash as the control does
//   mixed-in-wasmtime-host-call
//                         the same, then a native fault inside a host function a Wasmtime guest called
//   big-frames            a guest function with a 320 KB native frame recursing until the stack runs out, on a
//                         default thread and on a 256 KiB thread: both must trap with stack exhaustion
//   emfile                a cache hit while the process has no file descriptor left (EMFILE): the load fails with
//                         the error, the entry survives, and once descriptors are free it loads from the cache
//   follower SOCKET -     a follower process (FollowerTests): for each line N on stdin, waits for commit N, rents a
//                         replica and prints "seq S pages P sha256 HEX"; "exit" ends it
//   commit-log DIR        appends to the commit log in DIR from 8 concurrent tasks, printing "acked N" once commit N is
//                         durable, until killed (CommitLogTests SIGKILLs it and checks every acknowledged commit is there)
//   replica URL NAME KV.wat CACHE_DIR
//                         a follower host through NATS JetStream (ReplicationProcessTests): prints "started at S" and
//                         "applied S" for each commit; for each line N on stdin, waits for commit N and prints
//                         "seq S sha256 HEX" of the memory a read sees; "exit" ends it
if (args is ["follower", var socketPath, _])
{
    return Probe.Follow(socketPath);
}

if (args is ["commit-log", var logDir])
{
    return await Probe.CommitLogAsync(logDir);
}

if (args is ["replica", var url, var name, var kvWat, var cacheDir])
{
    return await ReplicaProbe.RunAsync(url, name, kvWat, cacheDir);
}

if (args.Length != 3)
{
    Console.Error.WriteLine("usage: CowWasm.CrashProbe control|outside-guest|in-host-call|guest-trap|big-frames|emfile BOUNDS.wat CACHE_DIR");
    return 2;
}

string scenario = args[0];
if (scenario == "big-frames")
{
    return Probe.BigFrames(args[2]);
}

if (scenario == "emfile")
{
    return Probe.OutOfDescriptors(args[1], args[2]);
}

if (scenario.StartsWith("mixed-", StringComparison.Ordinal))
{
    return Probe.Mixed(scenario, args[1], args[2]);
}

if (scenario == "control")
{
    Probe.Say("before native fault");
    Probe.NativeFault();
    return 0;
}

var options = new ArtifactOptions { CacheDirectory = args[2], BoundsChecks = BoundsChecks.GuardPages };
using WasmModule module = WasmModule.Load(WatAssembler.Assemble(File.ReadAllText(args[1])), options);
var linker = new Linker()
    .Define("env", "reenter", [], [WasmValueKind.I32], (caller, a, r) => r[0] = 0)
    .Define("env", "native_fault", [], [], (caller, a, r) => Probe.NativeFault());
using WasmInstance guest = module.Instantiate(linker);
try
{
    guest.GetFunction("load8").Invoke([65536], stackalloc ulong[1]);
    return 3;
}
catch (WasmTrapException trap) when (trap.Kind == TrapKind.OutOfBounds && GuardPages.ClaimedFaults > 0)
{
    Probe.Say("guest fault trapped");
}

try
{
    string? nothing = args.Length > 99 ? "never" : null;
    Probe.Say($"length {nothing!.Length}");
    return 4;
}
catch (NullReferenceException)
{
    Probe.Say("null reference caught");
}

switch (scenario)
{
    case "outside-guest":
        Probe.Say("before native fault");
        Probe.NativeFault();
        break;
    case "in-host-call":
        Probe.Say("before native fault");
        guest.GetFunction("call_native_fault").Invoke([], []);
        break;
    case "guest-trap":
        break;
    default:
        Console.Error.WriteLine($"unknown scenario {scenario}");
        return 2;
}

Probe.Say("survived");
return 0;

namespace CowWasm.CrashProbe
{
    public static partial class Probe
    {
        /// <summary>40,000 i64 locals built at -O0 (every local a stack slot: a 320 KB frame), recursing n times.</summary>
        public static string BigFrameWat(int locals) =>
            $"(module (memory 1) (func $big (export \"big\") (param i32) (result i64) (local {string.Join(' ', Enumerable.Repeat("i64", locals))}) " +
            $"(local.set 1 (i64.extend_i32_u (local.get 0))) (local.set {locals} (i64.const 7)) " +
            "(if (i32.gt_s (local.get 0) (i32.const 0)) (then (local.set 1 (call $big (i32.sub (local.get 0) (i32.const 1)))))) " +
            $"(i64.add (local.get 1) (local.get {locals}))))";

        public static int BigFrames(string cacheDirectory)
        {
            var options = new ArtifactOptions { CacheDirectory = cacheDirectory, OptimizationFlag = "-O0" };
            using WasmModule module = WasmModule.Load(WatAssembler.Assemble(BigFrameWat(40_000)), options);
            using WasmInstance guest = module.Instantiate(new Linker());
            string Run()
            {
                try
                {
                    guest.GetFunction("big").Invoke([100_000], stackalloc ulong[1]);
                    return "returned";
                }
                catch (WasmTrapException trap)
                {
                    return trap.Kind.ToString();
                }
            }

            Say($"default thread: {Run()}");
            string small = "";
            var thread = new Thread(() => small = Run(), maxStackSize: 256 * 1024);
            thread.Start();
            thread.Join();
            Say($"256 KiB thread: {small}");
            Say($"default thread again: {Run()}");
            return 0;
        }

        public static int OutOfDescriptors(string watPath, string cacheDirectory)
        {
            var options = new ArtifactOptions { CacheDirectory = cacheDirectory };
            byte[] wasm = WatAssembler.Assemble(File.ReadAllText(watPath));
            Artifact built = ArtifactCompiler.Compile(wasm, options); // built or cached: every code path is loaded now
            ArtifactCompiler.Compile(wasm, options);

            // A low soft limit keeps the loop short; then take every descriptor that is left.
            var limit = new RLimit { Current = 512, Maximum = 512 };
            if (SetRLimit(7 /* RLIMIT_NOFILE */, ref limit) != 0)
            {
                Say("setrlimit failed");
                return 5;
            }

            // Leave 0, 1, 2 descriptors free: with none the load fails at its first open; a cache hit holds one
            // descriptor at a time, so one is enough. (Whether a failure deletes the entry is pinned down by
            // ArtifactCacheTests with EISDIR: here a delete would fail for want of a descriptor as well.)
            for (int free = 0; free <= 2; free++)
            {
                var held = new List<Microsoft.Win32.SafeHandles.SafeFileHandle>();
                Exception? failure = null;
                try
                {
                    while (held.Count < 4096)
                    {
                        held.Add(File.OpenHandle("/dev/null"));
                    }
                }
                catch (IOException)
                {
                    // no descriptor left
                }

                try
                {
                    for (int i = 0; i < free && held.Count > 0; i++)
                    {
                        held[^1].Dispose();
                        held.RemoveAt(held.Count - 1);
                    }

                    ArtifactCompiler.Compile(wasm, options);
                }
                catch (Exception e)
                {
                    failure = e;
                }
                finally
                {
                    foreach (var handle in held)
                    {
                        handle.Dispose();
                    }
                }

                Say($"{free} free: " + (failure is null ? "load succeeded" : $"load failed: {failure.GetType().Name}: {failure.Message}"));
                if (!File.Exists(built.LibraryPath))
                {
                    Say($"{free} free: entry deleted");
                    ArtifactCompiler.Compile(wasm, options);
                }
            }

            Say($"from cache afterwards: {ArtifactCompiler.Compile(wasm, options).FromCache}");
            return 0;
        }

        [StructLayout(LayoutKind.Sequential)]
        private struct RLimit
        {
            public ulong Current;
            public ulong Maximum;
        }

        [LibraryImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
        private static partial int SetRLimit(int resource, ref RLimit limit);

        public static int Follow(string socketPath)
        {
            using var follower = CowWasm.Memory.Sharing.BaseFollower.Connect(socketPath,
                new CowWasm.Memory.Sharing.FollowerOptions { ReplicaCount = 2, MaxPageCount = 256 });
            Say($"connected at {follower.Sequence}");
            while (Console.ReadLine() is { } line && line != "exit")
            {
                long target = long.Parse(line, System.Globalization.CultureInfo.InvariantCulture);
                follower.WaitForSequenceAsync(target).Wait(TimeSpan.FromSeconds(30));
                var replica = follower.RentAsync().AsTask().GetAwaiter().GetResult();
                string digest = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(
                    replica.Memory.GetSpan(0, checked((int)replica.Memory.ByteLength))));
                long sequence = replica.Sequence, pages = replica.Memory.PageCount;
                bool consistent = follower.Return(replica);
                Say($"seq {sequence} pages {pages} sha256 {digest} consistent {consistent}");
            }

            return 0;
        }

        public static void Say(string what)
        {
            Console.WriteLine(what);
            Console.Out.Flush();
        }

        /// <summary>Reads an unmapped address in native code (libc's strlen): a SIGSEGV no managed frame can own.</summary>
        public static void NativeFault() => _ = Strlen(0x18);

        [LibraryImport("libc", EntryPoint = "strlen")]
        private static partial nuint Strlen(nint text);
    }
}

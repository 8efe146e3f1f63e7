using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Cli;

/// <summary>
/// The build variants <c>compile</c> and <c>trealla-setup</c> accept, each a separate cache entry:
/// <c>--no-store-barrier</c>, <c>--software-bounds-checks</c>, <c>--no-loop-interrupt-checks</c>, <c>--no-signaling-nans</c>.
/// </summary>
internal static class ArtifactFlags
{
    public const string Help = "[--no-store-barrier] [--software-bounds-checks] [--no-loop-interrupt-checks] [--no-signaling-nans]";

    private static readonly string[] s_flags =
        ["--no-store-barrier", "--software-bounds-checks", "--no-loop-interrupt-checks", "--no-signaling-nans"];

    /// <summary>The options the flags in <paramref name="args"/> ask for, and the arguments that are not flags.</summary>
    public static (ArtifactOptions Options, string[] Arguments) Parse(string[] args) =>
        (new ArtifactOptions
        {
            StoreBarrier = !args.Contains(s_flags[0]),
            BoundsChecks = args.Contains(s_flags[1]) ? BoundsChecks.Software : BoundsChecks.GuardPages,
            LoopInterruptChecks = !args.Contains(s_flags[2]),
            SignalingNans = !args.Contains(s_flags[3]),
        }, [.. args.Where(a => !s_flags.Contains(a))]);
}

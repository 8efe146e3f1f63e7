using System.CommandLine;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Cli;

/// <summary>
/// The build variants <c>compile</c> and <c>trealla-setup</c> accept, each a separate cache entry (for measuring what a
/// default costs): <c>--no-store-barrier</c>, <c>--software-bounds-checks</c>, <c>--no-loop-interrupt-checks</c>,
/// <c>--no-signaling-nans</c>.
/// </summary>
internal sealed class ArtifactFlags
{
    private readonly Option<bool> _noStoreBarrier = new("--no-store-barrier")
    {
        Description = "variant: guest stores mark no dirty pages (no StoreBarrier tracker)",
    };

    private readonly Option<bool> _softwareBounds = new("--software-bounds-checks")
    {
        Description = "variant: every load and store compares its address (no guard pages)",
    };

    private readonly Option<bool> _noLoopChecks = new("--no-loop-interrupt-checks")
    {
        Description = "variant: only function entries poll for interruption",
    };

    private readonly Option<bool> _noSignalingNans = new("--no-signaling-nans")
    {
        Description = "variant: gcc may fold x * 1.0 to x (signaling NaNs come out unquieted)",
    };

    /// <summary>Adds the flags to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        command.Add(_noStoreBarrier);
        command.Add(_softwareBounds);
        command.Add(_noLoopChecks);
        command.Add(_noSignalingNans);
    }

    /// <summary>The options the flags in <paramref name="parsed"/> ask for.</summary>
    public ArtifactOptions Read(ParseResult parsed) => new()
    {
        StoreBarrier = !parsed.GetValue(_noStoreBarrier),
        BoundsChecks = parsed.GetValue(_softwareBounds) ? BoundsChecks.Software : BoundsChecks.GuardPages,
        LoopInterruptChecks = !parsed.GetValue(_noLoopChecks),
        SignalingNans = !parsed.GetValue(_noSignalingNans),
    };
}

using CowWasm.Memory;
using CowWasm.Memory.Native;
using CowWasm.Memory.Trackers;

namespace CowWasm.Tests.Support;

/// <summary>A fact that needs a kernel feature: skipped, with the probe's reason, where the kernel lacks it.</summary>
public sealed class KernelFactAttribute : FactAttribute
{
    public KernelFactAttribute(KernelFeature feature)
    {
        if (!KernelFeatures.IsSupported(feature))
        {
            Skip = $"kernel lacks {feature}: {KernelFeatures.Describe(feature)}";
        }
    }
}

/// <summary>A theory that needs a kernel feature: skipped, with the probe's reason, where the kernel lacks it.</summary>
public sealed class KernelTheoryAttribute : TheoryAttribute
{
    public KernelTheoryAttribute(KernelFeature feature)
    {
        if (!KernelFeatures.IsSupported(feature))
        {
            Skip = $"kernel lacks {feature}: {KernelFeatures.Describe(feature)}";
        }
    }
}

internal static class Trackers
{
    /// <summary>Tracker kinds this kernel supports (unsupported ones have their own not-supported tests).</summary>
    public static IEnumerable<TrackerKind> Supported =>
        Enum.GetValues<TrackerKind>().Where(DirtyTracker.IsSupported);
}

/// <summary>Process resource counts for leak checks.</summary>
internal static class ProcessResources
{
    public static int OpenFds() => Directory.GetFiles("/proc/self/fd").Length;

    public static int Mappings() => File.ReadAllLines("/proc/self/maps").Length;
}

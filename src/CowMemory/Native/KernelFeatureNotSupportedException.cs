namespace CowWasm.Memory.Native;

/// <summary>
/// The running kernel lacks a feature the requested object needs (for example soft-dirty bits when the kernel
/// was built without <c>CONFIG_MEM_SOFT_DIRTY</c>, or <c>PAGEMAP_SCAN</c> before Linux 6.7).
/// Thrown instead of returning answers that would be silently wrong.
/// </summary>
public sealed class KernelFeatureNotSupportedException : NotSupportedException
{
    /// <summary>Creates the exception for <paramref name="feature"/>, with the reason the probe found.</summary>
    public KernelFeatureNotSupportedException(KernelFeature feature, string reason)
        : base($"{feature} is not supported on this kernel ({Environment.OSVersion.VersionString}): {reason}")
    {
        Feature = feature;
    }

    /// <summary>The missing feature.</summary>
    public KernelFeature Feature { get; }
}

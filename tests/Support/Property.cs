using CowWasm.Memory;
using CowWasm.Memory.Native;
using FsCheck.Xunit;

namespace CowWasm.Tests.Support;

/// <summary>
/// FsCheck.Xunit's <see cref="PropertyAttribute"/> with this suite's knobs: the case count from
/// <c>COWWASM_PROPERTY_CASES</c> (default 200) for long runs, and <c>COWWASM_PROPERTY_SEED=&lt;seed&gt;,&lt;gamma&gt;</c> to
/// replay a failure (FsCheck prints the pair with every failure; <c>[CowProperty(Replay = "seed,gamma")]</c> on the one
/// method does the same). Methods return an FsCheck <c>Property</c> built with <c>Prop.ForAll</c> over the suite's own
/// generators (<c>Arbitrary</c>), so the generated inputs and their shrinking are FsCheck's.
/// </summary>
public sealed class CowPropertyAttribute : PropertyAttribute
{
    /// <summary>Cases per property when COWWASM_PROPERTY_CASES does not say.</summary>
    public const int DefaultCases = 200;

    public CowPropertyAttribute()
    {
        MaxTest = int.TryParse(Environment.GetEnvironmentVariable("COWWASM_PROPERTY_CASES"), out int n) && n > 0 ? n : DefaultCases;
        if (Environment.GetEnvironmentVariable("COWWASM_PROPERTY_SEED") is { Length: > 0 } replay)
        {
            Replay = replay;
        }

        QuietOnSuccess = true;
    }

    /// <summary>A property that needs a kernel feature: skipped, saying why, where the kernel lacks it.</summary>
    public CowPropertyAttribute(KernelFeature feature)
        : this()
    {
        if (!KernelFeatures.IsSupported(feature))
        {
            Skip = $"kernel lacks {feature}: {KernelFeatures.Describe(feature)}";
        }
    }
}

/// <summary>
/// Configurations a property checks on every generated input: each row of a table (an xunit <c>TheoryData</c>), in order,
/// so every configuration is exercised on every case (not drawn at random, which could leave one out), and a failure
/// names the configuration that failed. FsCheck then shrinks the input against all of them.
/// </summary>
internal static class Configurations
{
    public static void Each(IEnumerable<object?[]> rows, Action<object?[]> body)
    {
        int count = 0;
        foreach (object?[] row in rows)
        {
            count++;
            try
            {
                body(row);
            }
            catch (Exception e)
            {
                throw new Xunit.Sdk.XunitException($"configuration {string.Join("/", row.Select(v => v?.ToString() ?? "none"))}: {e.Message}", e);
            }
        }

        Assert.True(count > 0, "no configuration to check");
    }
}

using FsCheck;
using FsCheck.Fluent;

namespace CowWasm.Tests.Support;

/// <summary>
/// Runs FsCheck 3 properties from xunit facts (FsCheck.Xunit is not served here). Case count from
/// COWWASM_PROPERTY_CASES (default 200); the seed is chosen here, printed on failure, and replayable with
/// COWWASM_PROPERTY_SEED=&lt;seed&gt;,&lt;gamma&gt;.
/// </summary>
internal static class Properties
{
    public static int Cases =>
        int.TryParse(Environment.GetEnvironmentVariable("COWWASM_PROPERTY_CASES"), out int n) && n > 0 ? n : 200;

    public static void Check<T>(Arbitrary<T> arbitrary, Action<T> body, string name)
    {
        (ulong seed, ulong gamma) = ChooseSeed();
        Config config = Config.QuickThrowOnFailure.WithMaxTest(Cases).WithReplay(seed, gamma).WithName(name);
        try
        {
            Prop.ForAll(arbitrary, body).Check(config);
        }
        catch (Exception e)
        {
            throw new Xunit.Sdk.XunitException(
                $"Property '{name}' failed. Replay with COWWASM_PROPERTY_SEED={seed},{gamma}\n{e.Message}");
        }
    }

    private static (ulong Seed, ulong Gamma) ChooseSeed()
    {
        string? replay = Environment.GetEnvironmentVariable("COWWASM_PROPERTY_SEED");
        if (replay is not null)
        {
            string[] parts = replay.Split(',');
            return (ulong.Parse(parts[0]), ulong.Parse(parts[1]));
        }

        // Gamma must be odd for FsCheck's SplitMix generator.
        return ((ulong)Random.Shared.NextInt64(), (ulong)Random.Shared.NextInt64() | 1);
    }
}

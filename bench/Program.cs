using BenchmarkDotNet.Running;
using CowWasm.Bench;

if (args is ["trealla-setup", ..])
{
    return await TreallaTool.SetupAsync();
}

if (args is ["prolog-pool", ..])
{
    return await TreallaPoolProbe.RunAsync(args[1..]);
}

if (args is ["prolog", ..])
{
    return await TreallaTool.QueryAsync(args[1..]);
}

if (args is ["snapshot-get", ..])
{
    return SnapshotTool.Get(args[1..]);
}

if (args is ["prolog-snapshot", ..])
{
    return await SnapshotTool.PrologAsync(args[1..]);
}

if (args is ["compile", ..])
{
    return ArtifactTool.Run(args[1..]);
}

if (args is ["compare", ..])
{
    return CowWasm.Bench.Comparison.ComparisonRunner.Run(args[1..]);
}

if (args is ["demo", ..])
{
    return EngineDemo.Run(args[1..]);
}

BenchmarkSwitcher.FromAssembly(typeof(EngineDemo).Assembly).Run(args);
return 0;

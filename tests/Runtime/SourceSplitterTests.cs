using System.Diagnostics;
using System.Text.RegularExpressions;
using CowWasm.Runtime.Native;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Runtime;

/// <summary>
/// The parallel build's split of wasm2c's C (SourceSplitter), on wasm2c's real output for the test guests: where each
/// piece goes, the segment loads as a table, and a clear error for C of another shape. That the split artifacts run is
/// what the rest of the runtime suite checks (every native test guest, and Trealla, whose code is split into several
/// units, is built this way).
/// </summary>
public sealed partial class SourceSplitterTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cowwasm-split-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Translate(string guest)
    {
        File.WriteAllBytes(Path.Combine(_dir, guest + ".wasm"), TestModules.Wasm(guest));
        var start = new ProcessStartInfo("wasm2c") { WorkingDirectory = _dir, RedirectStandardError = true };
        foreach (string arg in new[] { guest + ".wasm", "-n", GlueGenerator.ModuleName, "-o", guest + ".c" })
        {
            start.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(start)!;
        string errors = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, errors);
        return File.ReadAllText(Path.Combine(_dir, guest + ".c"));
    }

    [GeneratedRegex(@"^static [A-Za-z0-9_]+ (w2c_\w+)\(Z_m_instance_t\* instance[^)]*\) \{$", RegexOptions.Multiline)]
    private static partial Regex StaticDefinition();

    [Fact]
    public void EveryGuestFunction_IsDefinedInExactlyOneCodeUnit_AndNoneInTheDataUnit()
    {
        string source = Translate("kv");
        string[] functions = [.. StaticDefinition().Matches(source).Select(m => m.Groups[1].Value)];
        Assert.NotEmpty(functions);

        SourceSplitter.Split split = SourceSplitter.Apply(source)!;
        Assert.Single(split.Code); // a small module: one code unit
        foreach (string function in functions)
        {
            string definition = $"{function}(Z_m_instance_t* instance";
            Assert.DoesNotContain(definition, split.Data, StringComparison.Ordinal);
            Assert.Equal(1, split.Code.Count(c => c.Contains(definition, StringComparison.Ordinal)));
        }

        Assert.DoesNotContain(StaticDefinition().Matches(string.Concat(split.Code)), _ => true); // no guest function stays static
        Assert.Contains("extern u32 func_types[", split.Code[0], StringComparison.Ordinal); // the call-indirect types: defined once
        Assert.Matches(@"(?m)^__attribute__\(\(visibility\(""hidden""\)\)\) u32 func_types\[\d+\];$", split.Data);
        Assert.Contains("init_memories", split.Data, StringComparison.Ordinal);
    }

    [Fact]
    public void CodeUnits_GrowWithTheModule_UpToTheirCap()
    {
        Assert.Equal(1, SourceSplitter.CodePartsFor(1));
        Assert.Equal(1, SourceSplitter.CodePartsFor(SourceSplitter.BytesPerCodePart));
        Assert.Equal(2, SourceSplitter.CodePartsFor(SourceSplitter.BytesPerCodePart + 1));
        Assert.Equal(SourceSplitter.MaxCodeParts, SourceSplitter.CodePartsFor(long.MaxValue / 2));
    }

    [Fact]
    public void ManySegmentLoads_BecomeOneTableAndALoop_InTheirOrder_AndAFewStayAsTheyAre()
    {
        string Loads(int n) => string.Concat(Enumerable.Range(0, n).Select(i =>
            $"  LOAD_DATA(instance->w2c_memory, {1000 + (i * 8)}u, data_segment_data_w2c_d{i}, {1 + (i % 5)});\n"));
        string Function(int n) => "static void init_memories(Z_m_instance_t* instance) {\n" +
            "  wasm_rt_allocate_memory(&instance->w2c_memory, 1, 65536);\n" + Loads(n) + "}\n";

        string many = SourceSplitter.TableDrivenLoads(Function(40));
        Assert.Contains("static const struct { u32 offset; const u8* data; u32 size; } cw_loads_0[] = {", many, StringComparison.Ordinal);
        Assert.Contains("for (u32 cw_i = 0; cw_i < 40u; cw_i++)", many, StringComparison.Ordinal);
        Assert.DoesNotContain("LOAD_DATA(instance->w2c_memory, 1000u", many, StringComparison.Ordinal);
        int first = many.IndexOf("{1000u, data_segment_data_w2c_d0, 1},", StringComparison.Ordinal);
        int last = many.IndexOf("{1312u, data_segment_data_w2c_d39, 5},", StringComparison.Ordinal);
        Assert.True(first >= 0 && last > first, "the table keeps the loads in order");
        Assert.True(many.IndexOf("cw_loads_0[] =", StringComparison.Ordinal) < many.IndexOf("static void init_memories", StringComparison.Ordinal),
            "the table is defined before the function");
        Assert.Contains("wasm_rt_allocate_memory", many, StringComparison.Ordinal);

        string few = Function(SourceSplitter.MinTableLoads - 1);
        Assert.Equal(few, SourceSplitter.TableDrivenLoads(few));
    }

    [Fact]
    public void COfAnotherShape_IsRefusedNamingWhatIsMissing_AndAModuleWithoutFunctionsIsNotSplit()
    {
        string source = Translate("kv");
        // Definitions without their declarations: not the shape the split expects.
        string broken = string.Join('\n', source.Split('\n').Where(l => !Regex.IsMatch(l, @"^static [A-Za-z0-9_]+ w2c_\w+\(Z_m_instance_t\*[^)]*\);$")));
        var e = Assert.Throws<ArtifactCompilationException>(() => SourceSplitter.Apply(broken));
        Assert.Contains("wasm2c --version", e.Message, StringComparison.Ordinal);

        Assert.Null(SourceSplitter.Apply("#include \"wasm-rt.h\"\nstatic void init_globals(Z_m_instance_t* instance) {\n}\n"));
    }
}

using System.Text;
using System.Text.RegularExpressions;

namespace CowWasm.Runtime.Native;

/// <summary>
/// Splits wasm2c's C (1.0.32, after <see cref="RuntimeHooks"/> and <see cref="StoreBarrier"/>) into translation units
/// gcc can compile in parallel: one <em>data</em> unit — the declarations, globals, data and element segments, the
/// <c>init_*</c> functions (Trealla's <c>init_memories</c> is one function of 68,345 segment loads), the exports and
/// instantiation — compiled without optimisation, and <see cref="CodePartsFor"/> <em>code</em> units, each a run of
/// consecutive guest functions, compiled with the build's optimisation. Guest functions stop being <c>static</c> (they
/// are hidden in the shared object instead, so calls between units stay direct); the call-indirect type table
/// (<c>func_types</c>) is defined once, in the data unit. Every unit starts with the same preamble (wasm2c's macros and
/// <c>static inline</c> helpers).
/// </summary>
/// <remarks>
/// The split is textual, like the other edits: the source must have exactly the shape below or the build fails saying
/// so. The number of code units depends only on the module (about one per <see cref="BytesPerCodePart"/> of function
/// text, at most <see cref="MaxCodeParts"/>), never on the machine, so the same module always makes the same artifact;
/// how many run at once is the machine's business (<see cref="ArtifactBuilder"/>).
/// </remarks>
internal static partial class SourceSplitter
{
    /// <summary>Names this way of splitting in the cache key (<see cref="ArtifactBuilder.Fingerprint"/>).</summary>
    public const string Version = "split3";

    /// <summary>Function text per code unit (bytes of C); a module with less is not split.</summary>
    public const int BytesPerCodePart = 3 << 20;

    /// <summary>The most code units: each one re-parses the preamble and declarations, and calls between units cannot be inlined.</summary>
    public const int MaxCodeParts = 8;

    private const string Hidden = "__attribute__((visibility(\"hidden\"))) ";

    /// <summary>The data unit's C and the code units' C.</summary>
    public sealed record Split(string Data, IReadOnlyList<string> Code);

    /// <summary>Code units for <paramref name="functionBytes"/> of function definitions.</summary>
    public static int CodePartsFor(long functionBytes) =>
        (int)Math.Clamp((functionBytes + BytesPerCodePart - 1) / BytesPerCodePart, 1, MaxCodeParts);

    /// <summary>Splits <paramref name="source"/>; null for a module without functions (nothing to split).</summary>
    /// <exception cref="ArtifactCompilationException">The source does not have wasm2c 1.0.32's shape.</exception>
    public static Split? Apply(string source)
    {
        string[] lines = source.Split('\n');
        int declarationsStart = Array.FindIndex(lines, l => Declaration().IsMatch(l));
        if (declarationsStart < 0)
        {
            Require(!lines.Any(l => Definition().IsMatch(l)), "the guest functions' declarations");
            return null;
        }

        int declarationsEnd = declarationsStart;
        while (declarationsEnd < lines.Length && Declaration().IsMatch(lines[declarationsEnd]))
        {
            declarationsEnd++;
        }

        int definitionsStart = Array.FindIndex(lines, declarationsEnd, l => Definition().IsMatch(l));
        Require(definitionsStart > declarationsEnd, "the guest functions' definitions");
        var functions = new List<(int Start, int End)>(); // [Start, End): the definition, up to and including its closing brace
        int at = definitionsStart;
        while (at < lines.Length && Definition().IsMatch(lines[at]))
        {
            int end = Array.IndexOf(lines, "}", at + 1);
            Require(end > at, $"the end of the function on line {at + 1}");
            functions.Add((at, end + 1));
            at = end + 1;
            while (at < lines.Length && lines[at].Length == 0)
            {
                at++;
            }
        }

        Require(functions.Count == declarationsEnd - declarationsStart, "one definition per declaration, consecutively");
        int typesLine = Array.FindIndex(lines, 0, declarationsStart, l => FuncTypes().IsMatch(l));

        // The preamble every unit shares, but for the call-indirect type table: defined in the data unit, extern elsewhere.
        string Preamble(string typesPrefix) =>
            string.Join('\n', lines[..declarationsStart].Select((l, i) => i == typesLine ? typesPrefix + l["static ".Length..] : l));
        string sharedPreamble = Preamble("extern ");
        string declarations = string.Join('\n', lines[declarationsStart..declarationsEnd].Select(l => Hidden + l["static ".Length..]));

        // Segments a guest function names (memory.init, table.init on passive segments): defined in the data unit, so
        // they stop being static there and are declared in the code units that use them.
        var shared = new HashSet<string>(StringComparer.Ordinal);
        foreach ((int start, int end) in functions)
        {
            for (int i = start; i < end; i++)
            {
                foreach (Match segment in Segment().Matches(lines[i]))
                {
                    shared.Add(segment.Value);
                }
            }
        }

        var data = new StringBuilder();
        data.Append(Preamble(Hidden));
        data.Append('\n').Append(declarations).Append('\n');
        data.Append(TableDrivenLoads(string.Join('\n', lines[declarationsEnd..definitionsStart].Select(l => Unstatic(l, shared))))).Append('\n');
        data.Append(string.Join('\n', lines[functions[^1].End..]));

        long[] sizes = [.. functions.Select(f => lines[f.Start..f.End].Sum(l => (long)l.Length + 1))];
        long functionBytes = sizes.Sum();
        int parts = CodePartsFor(functionBytes);
        var code = new List<string>(parts);
        int next = 0;
        long done = 0;
        for (int part = 0; part < parts; part++)
        {
            // Consecutive functions (a source file's functions sit together in the module, so its callers and callees
            // mostly share a unit), about the same amount of text per unit.
            long target = functionBytes * (part + 1) / parts;
            var unit = new StringBuilder();
            unit.Append(sharedPreamble).Append('\n').Append(declarations).Append('\n');
            foreach (string segment in shared.Order(StringComparer.Ordinal))
            {
                unit.Append(Hidden).Append(segment.StartsWith("data_", StringComparison.Ordinal)
                    ? $"extern const u8 {segment}[];\n"
                    : $"extern const wasm_elem_segment_expr_t {segment}[];\n");
            }

            while (next < functions.Count && (part == parts - 1 || done < target))
            {
                (int start, int end) = functions[next];
                unit.Append(Hidden).Append(lines[start]["static ".Length..]).Append('\n');
                unit.Append(string.Join('\n', lines[(start + 1)..end])).Append("\n\n");
                done += sizes[next++];
            }

            code.Add(unit.ToString());
        }

        return new Split(data.ToString(), code);
    }

    /// <summary>
    /// Runs of <see cref="MinTableLoads"/> or more consecutive segment loads in <c>init_memories</c> become a loop over a
    /// static table of (offset, bytes, size), defined just before the function, in the same order. Trealla's 68,345
    /// loads (small segments a snapshotting tool left) made gcc spend 30 s and 2.7 GB on that one function even without
    /// optimisation; as a table the whole data unit takes 2.4 s and 210 MB. The loop runs the same <c>LOAD_DATA</c> (its
    /// bounds check, and the store barrier's mark), so loading is unchanged, in the same order.
    /// </summary>
    internal static string TableDrivenLoads(string text)
    {
        var tables = new StringBuilder();
        int count = 0;
        string result = LoadRun().Replace(text, run =>
        {
            MatchCollection loads = Load().Matches(run.Value);
            string memory = loads[0].Groups["memory"].Value;
            if (loads.Any(l => l.Groups["memory"].Value != memory))
            {
                return run.Value; // loads into several memories: left as they are
            }

            string name = $"cw_loads_{count++}";
            tables.Append("static const struct { u32 offset; const u8* data; u32 size; } ").Append(name).Append("[] = {\n");
            foreach (Match load in loads)
            {
                tables.Append("  {").Append(load.Groups["offset"].Value).Append("u, ").Append(load.Groups["data"].Value).Append(", ")
                    .Append(load.Groups["size"].Value).Append("},\n");
            }

            tables.Append("};\n");
            return $"  for (u32 cw_i = 0; cw_i < {loads.Count}u; cw_i++) {{\n" +
                   $"    LOAD_DATA(instance->{memory}, {name}[cw_i].offset, {name}[cw_i].data, {name}[cw_i].size);\n  }}\n";
        });
        if (count == 0)
        {
            return text;
        }

        int function = result.IndexOf("static void init_memories(", StringComparison.Ordinal);
        Require(function >= 0, "init_memories");
        return string.Concat(result.AsSpan(0, function), tables.ToString(), "\n", result.AsSpan(function));
    }

    /// <summary>A segment's definition, made visible to the other units when a guest function names it.</summary>
    private static string Unstatic(string line, HashSet<string> shared)
    {
        if (shared.Count == 0 || !line.StartsWith("static const ", StringComparison.Ordinal))
        {
            return line;
        }

        Match segment = Segment().Match(line);
        return segment.Success && shared.Contains(segment.Value) ? Hidden + line["static ".Length..] : line;
    }

    /// <summary>Consecutive loads that become one table.</summary>
    public const int MinTableLoads = 16;

    private static void Require(bool ok, string what)
    {
        if (!ok)
        {
            throw new ArtifactCompilationException(
                $"wasm2c's output does not have {what} where CowWasm's parallel build expects them: a wabt other than 1.0.32? " +
                "Run `wasm2c --version`.");
        }
    }

    // static u32 w2c_f29(Z_module_instance_t*, u32);
    [GeneratedRegex(@"^static [A-Za-z0-9_]+ w2c_\w+\(Z_" + GlueGenerator.ModuleName + @"_instance_t\*[^)]*\);$")]
    private static partial Regex Declaration();

    // static u32 w2c_f29(Z_module_instance_t* instance, u32 w2c_p0) {
    [GeneratedRegex(@"^static [A-Za-z0-9_]+ w2c_\w+\(Z_" + GlueGenerator.ModuleName + @"_instance_t\* instance[^)]*\) \{$")]
    private static partial Regex Definition();

    //   LOAD_DATA(instance->w2c_memory, 8064376u, data_segment_data_w2c_d0, 4);
    [GeneratedRegex(@"^  LOAD_DATA\(instance->(?<memory>\w+), (?<offset>\d+)u, (?<data>data_segment_data_w2c_d\d+), (?<size>\d+)\);$", RegexOptions.Multiline)]
    private static partial Regex Load();

    [GeneratedRegex(@"(?:^  LOAD_DATA\(instance->\w+, \d+u, data_segment_data_w2c_d\d+, \d+\);\n){16,}", RegexOptions.Multiline)]
    private static partial Regex LoadRun();

    [GeneratedRegex(@"\b(?:data_segment_data_w2c_d\d+|elem_segment_exprs_w2c_e\d+)\b")]
    private static partial Regex Segment();

    // static u32 func_types[41];
    [GeneratedRegex(@"^static u32 func_types\[\d+\];$")]
    private static partial Regex FuncTypes();
}

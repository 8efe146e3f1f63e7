using System.Buffers.Binary;
using System.Text;
using CowWasm.Runtime;

namespace CowWasm.Prolog;

/// <summary>
/// Drives one Trealla Prolog guest instance (libtpl-js, as in the npm package <c>trealla</c>): consults program
/// text, runs queries and parses their answers. Works the same on a plain instance, a pool's leader and a replica:
/// the interpreter handle and every pointer it uses are guest addresses, valid in every identical copy of memory.
/// </summary>
/// <remarks>
/// <para><b>Protocol</b> (docs/trealla-abi.md): a goal runs as <c>js_ask("…")</c> under <c>pl_capture</c>; the
/// capture holds the goal's own output, <c>\x03</c>, then one JSON answer line. <c>pl_redo</c> gives the next
/// answer while <c>pl_query</c>/<c>pl_redo</c> return 1; <c>pl_done</c> ends a query early.</para>
/// <para><b>One live query at a time</b>, and none may be live when the instance is copied (a commit or a clone):
/// <see cref="QueryOnce"/> and <see cref="Consult"/> always finish theirs; an enumeration of <see cref="Query"/>
/// finishes it when enumerated to the end or disposed.</para>
/// <para><b>Thread-safety:</b> none; an instance runs on one thread at a time (the runtime enforces it).</para>
/// </remarks>
public sealed class PrologInterpreter
{
    private const byte StartOfOutput = 0x02;
    private const byte EndOfOutput = 0x03;

    private readonly IGuestInstance _guest;
    private readonly uint _pl;
    private readonly IGuestFunction _realloc, _free, _capture, _captureRead, _captureFree, _query, _redo, _done;
    private bool _live;

    private PrologInterpreter(IGuestInstance guest, uint pl, Dictionary<string, IGuestFunction> exports)
    {
        _guest = guest;
        _pl = pl;
        _realloc = exports["canonical_abi_realloc"];
        _free = exports["canonical_abi_free"];
        _capture = exports["pl_capture"];
        _captureRead = exports["pl_capture_read"];
        _captureFree = exports["pl_capture_free"];
        _query = exports["pl_query"];
        _redo = exports["pl_redo"];
        _done = exports["pl_done"];
    }

    /// <summary>The default of <see cref="MaxAnswerBytes"/>: 16 MiB.</summary>
    public const int DefaultMaxAnswerBytes = 16 << 20;

    /// <summary>
    /// The largest answer copied out of the guest (its JSON line plus what the goal printed while producing it). A larger
    /// one is not copied: it becomes the error answer <c>error(resource_error(answer_bytes), Bytes)</c>, which ends the
    /// query like any error.
    /// </summary>
    public int MaxAnswerBytes
    {
        get => _maxAnswerBytes;
        set => _maxAnswerBytes = value >= 64 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "At least 64 bytes.");
    }

    private int _maxAnswerBytes = DefaultMaxAnswerBytes;

    /// <summary>The guest instance this driver talks to.</summary>
    public IGuestInstance Guest => _guest;

    /// <summary>The interpreter handle (a guest address).</summary>
    public uint Handle => _pl;

    /// <summary>
    /// Sets up the interpreter in a freshly instantiated guest: <c>pl_global()</c>, then <c>set_opt(pl, 1)</c>
    /// (tail-call frame reuse; the package's snapshot has it off). Changes guest memory: on a pool, do it in a write.
    /// </summary>
    /// <exception cref="WasmLinkException">The guest lacks the Trealla exports.</exception>
    public static PrologInterpreter Initialize(IGuestInstance guest)
    {
        ArgumentNullException.ThrowIfNull(guest);
        Dictionary<string, IGuestFunction> exports = ResolveExports(guest);
        uint pl = (uint)Call(exports["pl_global"]);
        if (pl == 0)
        {
            throw new InvalidOperationException("pl_global() returned a null interpreter.");
        }

        Call(exports["set_opt"], pl, 1);
        return new PrologInterpreter(guest, pl, exports);
    }

    /// <summary>
    /// The module every goal runs in (<c>user</c>): where unqualified <c>assertz</c>/<c>retract</c> inside a goal land,
    /// and where <see cref="Consult"/> puts clauses by default. Goals may still qualify other modules (<c>m:g</c>).
    /// </summary>
    public const string QueryModule = "user";

    /// <summary>Attaches to an interpreter that <see cref="Initialize"/> set up in this memory (or a copy of it).</summary>
    public static PrologInterpreter Attach(IGuestInstance guest, uint handle)
    {
        ArgumentNullException.ThrowIfNull(guest);
        return new PrologInterpreter(guest, handle, ResolveExports(guest));
    }

    /// <summary>Attaches (<see cref="Attach(IGuestInstance, uint)"/>) with an answer budget (<see cref="MaxAnswerBytes"/>).</summary>
    public static PrologInterpreter Attach(IGuestInstance guest, uint handle, int maxAnswerBytes)
    {
        PrologInterpreter driver = Attach(guest, handle);
        driver.MaxAnswerBytes = maxAnswerBytes;
        return driver;
    }

    /// <summary>
    /// Loads program text (clauses and directives) into <paramref name="module"/>, as if consulted from a file.
    /// </summary>
    /// <remarks>
    /// Trealla's loader reports a bad clause or directive by printing <c>Error: …</c> and carrying on with the rest;
    /// this method turns any such line into an exception, so that a pool write rolls the whole text back.
    /// </remarks>
    /// <returns>What loading printed (warnings, directive output).</returns>
    /// <exception cref="PrologException">Loading raised, or reported errors: the error term is
    /// <c>consult_error(Module, Messages)</c> with the loader's messages as a string.</exception>
    public string Consult(string programText, string module = QueryModule)
    {
        ArgumentNullException.ThrowIfNull(programText);
        ArgumentException.ThrowIfNullOrEmpty(module);
        PrologAnswer answer = QueryOnce($"{PrologSyntax.QuoteAtom(module)}:'$load_chars'({PrologSyntax.QuoteString(programText)})")
            .ThrowIfError();
        string[] errors = answer.Output.Split('\n').Where(line => line.StartsWith("Error:", StringComparison.Ordinal)).ToArray();
        if (errors.Length > 0 || answer.Kind != PrologAnswerKind.Success)
        {
            string messages = errors.Length > 0 ? string.Join("\n", errors) : "the loader failed";
            throw new PrologException(PrologTerm.Compound("consult_error", PrologTerm.Atom(module), new PrologString(messages)));
        }

        return answer.Output;
    }

    /// <summary>The first answer of <paramref name="goal"/> (success, failure or error); the query is then closed.</summary>
    /// <param name="goal">Goal text, e.g. <c>member(X, [a,b])</c>; a final full stop is optional.</param>
    public PrologAnswer QueryOnce(string goal)
    {
        PrologAnswer first = Start(goal, out bool more, out uint subquery);
        if (more)
        {
            Close(subquery);
        }

        return first;
    }

    /// <summary>
    /// Every solution of <paramref name="goal"/>, lazily and in order. Ends after the last solution; if the goal
    /// raises, the last item is the <see cref="PrologAnswerKind.Error"/> answer. Disposing the enumerator early
    /// closes the query.
    /// </summary>
    public IEnumerable<PrologAnswer> Query(string goal)
    {
        ArgumentNullException.ThrowIfNull(goal);
        return Solutions(goal);
    }

    /// <summary>
    /// Passes up to <paramref name="maxSolutions"/> solutions of <paramref name="goal"/> to <paramref name="onAnswer"/>
    /// as <see cref="Query"/> finds them, awaiting each before the next is computed; the token is checked between
    /// solutions. Returns how many were passed on. The query is closed when this returns or throws.
    /// </summary>
    public async ValueTask<int> QueryEachAsync(string goal, int maxSolutions, Func<PrologAnswer, ValueTask> onAnswer,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(onAnswer);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxSolutions);
        int count = 0;
        using IEnumerator<PrologAnswer> answers = Query(goal).GetEnumerator(); // disposing closes the query
        while (count < maxSolutions && answers.MoveNext())
        {
            await onAnswer(answers.Current).ConfigureAwait(false);
            count++;
            cancellationToken.ThrowIfCancellationRequested();
        }

        return count;
    }

    private IEnumerable<PrologAnswer> Solutions(string goal)
    {
        PrologAnswer answer = Start(goal, out bool more, out uint subquery);
        try
        {
            while (answer.Kind != PrologAnswerKind.Failure)
            {
                yield return answer;
                if (!more || answer.Kind == PrologAnswerKind.Error)
                {
                    yield break;
                }

                answer = Next(subquery, out more);
            }
        }
        finally
        {
            if (more)
            {
                Close(subquery);
            }
        }
    }

    private PrologAnswer Start(string goal, out bool more, out uint subquery)
    {
        ArgumentNullException.ThrowIfNull(goal);
        if (_live)
        {
            throw new InvalidOperationException("A query is still open on this interpreter; finish or dispose its enumeration first.");
        }

        string trimmed = PrologSyntax.WithoutFinalFullStop(goal); // one final full stop is tolerated

        // js_ask runs its goal in the guest's own module (wasm): an unqualified assertz there would land in wasm:f/1
        // while clauses consulted into user read user:f/1. Every goal runs as user:(Goal); the newlines keep a
        // trailing % comment in the goal from swallowing the parenthesis.
        byte[] text = Encoding.UTF8.GetBytes($"js_ask({PrologSyntax.QuoteString($"{QueryModule}:(\n{trimmed}\n)")}).\0");
        uint goalAddress = Allocate(text.Length, 1);
        uint slot = Allocate(4, 4);
        text.CopyTo(_guest.GetMemory(goalAddress, text.Length));
        try
        {
            Call(_capture, _pl);
            more = Call(_query, _pl, goalAddress, slot, 0) == 1;
            subquery = more ? BinaryPrimitives.ReadUInt32LittleEndian(_guest.ReadMemory(slot, 4)) : 0;
        }
        finally
        {
            Release(goalAddress, text.Length, 1);
            Release(slot, 4, 4);
        }

        _live = more;
        try
        {
            return ReadAnswer();
        }
        catch when (more)
        {
            Close(subquery); // an unreadable answer must not leave the query open
            throw;
        }
    }

    private PrologAnswer Next(uint subquery, out bool more)
    {
        Call(_capture, _pl);
        more = Call(_redo, subquery) == 1;
        _live = more;
        try
        {
            return ReadAnswer(exhaustedIfEmpty: !more);
        }
        catch when (more)
        {
            more = false;
            Close(subquery);
            throw;
        }
    }

    private void Close(uint subquery)
    {
        _live = false;
        Call(_done, subquery);
    }

    /// <summary>
    /// Reads and frees the capture (<see cref="Frame"/> splits it). A redo that finds no more solutions returns 0 and
    /// captures nothing (<paramref name="exhaustedIfEmpty"/>): that is the final failure.
    /// </summary>
    private PrologAnswer ReadAnswer(bool exhaustedIfEmpty = false)
    {
        uint slots = Allocate(16, 4);
        byte[] captured;
        try
        {
            Call(_captureRead, _pl, slots, slots + 4, slots + 8, slots + 12);
            uint address = BinaryPrimitives.ReadUInt32LittleEndian(_guest.ReadMemory(slots, 4));
            uint length = BinaryPrimitives.ReadUInt32LittleEndian(_guest.ReadMemory(slots + 4, 4));
            if (length > (uint)_maxAnswerBytes)
            {
                Call(_captureFree, _pl);
                return PrologAnswer.Raised(PrologTerm.Compound("error",
                    PrologTerm.Compound("resource_error", PrologTerm.Atom("answer_bytes")), new PrologInteger(length)));
            }

            captured = length == 0 ? [] : _guest.ReadMemory(address, (int)length).ToArray();
            Call(_captureFree, _pl);
        }
        finally
        {
            Release(slots, 16, 4);
            _guest.Wasi?.ClearOutput(); // the C side's stdio noise; answers come through the capture
        }

        if (captured.Length == 0 && exhaustedIfEmpty)
        {
            return PrologAnswer.Failure();
        }

        PrologAnswer answer = Frame(captured);
        answer.CapturedBytes = captured.Length;
        return answer;
    }

    /// <summary>
    /// Splits one capture into the goal's output and its answer. The guest's <c>js_ask</c> writes
    /// <c>[\x02] output \x03 json \n</c>, where <i>output</i> is whatever the goal printed — possibly \x03 and whole
    /// forged answer lines — so the answer is found from the end: the suffix after the last \x03 from which the rest
    /// parses as an answer line. The goal's bytes always come before the frame, so they cannot replace it. A capture
    /// that holds no readable answer (a guest bug: Trealla 0.17.10's <c>atom_concat/3</c> redo reports a solution and
    /// prints nothing) becomes an error answer naming the raw text, never an exception.
    /// </summary>
    internal static PrologAnswer Frame(ReadOnlySpan<byte> captured)
    {
        ReadOnlySpan<byte> body = captured;
        if (!body.IsEmpty && body[^1] == (byte)'\n')
        {
            body = body[..^1];
        }

        for (int end = body.LastIndexOf(EndOfOutput); end >= 0; end = body[..end].LastIndexOf(EndOfOutput))
        {
            ReadOnlySpan<byte> line = body[(end + 1)..];
            int newline = line.IndexOf((byte)'\n');
            string json = Encoding.UTF8.GetString(newline < 0 ? line : line[..newline]); // the answer is one line
            if (!json.StartsWith("{\"status\":", StringComparison.Ordinal))
            {
                continue; // this \x03 was the goal's
            }

            ReadOnlySpan<byte> output = body[..end];
            if (!output.IsEmpty && output[0] == StartOfOutput)
            {
                output = output[1..];
            }

            try
            {
                return PrologAnswer.Parse(json, Encoding.UTF8.GetString(output));
            }
            catch (FormatException)
            {
                // not an answer line: keep looking further back
            }
        }

        return PrologAnswer.Raised(
            PrologTerm.Compound("cowwasm_unreadable_answer", new PrologString(Encoding.UTF8.GetString(captured))),
            Encoding.UTF8.GetString(captured));
    }

    private uint Allocate(int size, int align)
    {
        uint address = (uint)Call(_realloc, 0, 0, (uint)align, (uint)size);
        return address != 0 ? address : throw new InsufficientMemoryException($"The guest could not allocate {size} bytes.");
    }

    private void Release(uint address, int size, int align) => Call(_free, address, (uint)size, (uint)align);

    private static readonly string[] s_exports =
    [
        "pl_global", "set_opt", "canonical_abi_realloc", "canonical_abi_free", "pl_capture", "pl_capture_read",
        "pl_capture_free", "pl_query", "pl_redo", "pl_done",
    ];

    private static Dictionary<string, IGuestFunction> ResolveExports(IGuestInstance guest)
    {
        var exports = new Dictionary<string, IGuestFunction>();
        var missing = new List<string>();
        foreach (string name in s_exports)
        {
            try
            {
                exports[name] = guest.GetFunction(name);
            }
            catch (KeyNotFoundException)
            {
                missing.Add(name);
            }
        }

        return missing.Count == 0
            ? exports
            : throw new ArgumentException(
                $"The guest is not a Trealla (libtpl-js) module: it lacks the exports {string.Join(", ", missing)}.", nameof(guest));
    }

    private static ulong Call(IGuestFunction function, params ReadOnlySpan<ulong> args)
    {
        Span<ulong> results = stackalloc ulong[1];
        function.Invoke(args, results[..function.Type.Results.Count]);
        return function.Type.Results.Count == 0 ? 0 : results[0];
    }
}

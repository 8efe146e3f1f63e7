using System.Buffers;
using System.Diagnostics;
using System.Text.Json;
using System.Threading.RateLimiting;
using CowWasm.Prolog;
using CowWasm.Runtime;
using Microsoft.Extensions.Logging;

namespace CowWasm.Server;

/// <summary>A finished reply: an HTTP status, a JSON object, and for a 503 when to try again.</summary>
internal readonly record struct Reply(int Status, ReadOnlyMemory<byte> Body, int RetryAfterSeconds = 0);

/// <summary>
/// One request's deadline, from its arrival to its last byte: the wait for the backend, the guest's time and writing the
/// reply all come out of it (<see cref="Token"/> fires when it passes or the client goes away).
/// </summary>
internal sealed class RequestScope : IDisposable
{
    private readonly CancellationTokenSource _timer;
    private readonly CancellationTokenSource _deadline;
    private readonly long _start = Stopwatch.GetTimestamp();

    public RequestScope(TimeSpan timeout, CancellationToken aborted)
    {
        Timeout = timeout;
        Aborted = aborted;
        _timer = new CancellationTokenSource(timeout);
        _deadline = CancellationTokenSource.CreateLinkedTokenSource(aborted, _timer.Token);
    }

    public TimeSpan Timeout { get; }

    /// <summary>The client went away (or the service is stopping the connection).</summary>
    public CancellationToken Aborted { get; }

    /// <summary>Fires at the deadline or when the client goes away.</summary>
    public CancellationToken Token => _deadline.Token;

    /// <summary>
    /// The deadline passed. Its own timer says so, not the token: Kestrel aborts the request when a flush is cancelled,
    /// so by the time the failure is handled the client looks gone too.
    /// </summary>
    public bool Expired => _timer.IsCancellationRequested;

    /// <summary>
    /// A token for writing the reply: what is left of the deadline, but at least a second, so a reply finished just
    /// before the deadline (or an error reply after it) still reaches a client that reads; null scope: a second. With a
    /// second or more left that is the scope's own token, and nothing is allocated; otherwise <paramref name="owned"/> is
    /// a new source for the caller to dispose.
    /// </summary>
    /// <param name="scope">The request's scope, made with <paramref name="aborted"/>; or null.</param>
    /// <param name="aborted">The client (or connection) going away.</param>
    /// <param name="owned">The source behind the token when one had to be made, else null.</param>
    public static CancellationToken ReplyWindow(RequestScope? scope, CancellationToken aborted, out CancellationTokenSource? owned)
    {
        TimeSpan left = scope is null ? TimeSpan.Zero : scope.Timeout - Stopwatch.GetElapsedTime(scope._start);
        if (left >= TimeSpan.FromSeconds(1) && !scope!.Token.IsCancellationRequested)
        {
            owned = null;
            return scope.Token; // fires at the deadline (or when the client goes away), a second or more from now
        }

        owned = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        owned.CancelAfter(TimeSpan.FromSeconds(1));
        return owned.Token;
    }

    /// <summary>What is left of the deadline (at least 1 ms, so a guest call that starts still gets a bound).</summary>
    public TimeSpan Remaining => TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerMillisecond, (Timeout - Stopwatch.GetElapsedTime(_start)).Ticks));

    public void Dispose()
    {
        _deadline.Dispose();
        _timer.Dispose();
    }
}

/// <summary>
/// The service's operations, shared by HTTP and TCP: validation, deadlines, running them on the backend, and every
/// failure turned into a status with a JSON error (<see cref="Fail"/>), logged. Thread-safe.
/// </summary>
internal sealed partial class PrologService(IPrologBackend backend, ServerOptions options, AccessToken token, ILogger<PrologService> log)
    : IDisposable
{
    /// <summary>Admission to the backend, and the service's meter.</summary>
    private readonly ServiceAdmission _admission = new(options);

    private readonly SemaphoreSlim _snapshotting = new(1, 1);

    // Requests admitted to the backend: running now and finished, reads ([0]) and writes ([1]); for GET /stats.
    private readonly long[] _running = new long[2];
    private readonly long[] _finished = new long[2];
    private readonly long _started = Stopwatch.GetTimestamp();
    private long _lastSnapshot = long.MinValue;

    /// <summary>The service's meter ("CowWasm.Server").</summary>
    public const string MeterName = ServiceAdmission.MeterName;

    public IPrologBackend Backend => backend;

    public ServerOptions Options => options;

    public AccessToken Token => token;

    /// <summary>Starts a request's deadline (<c>timeoutMs</c>, or the default).</summary>
    /// <exception cref="ServiceException">The timeout is out of range.</exception>
    public RequestScope Begin(int? timeoutMs, CancellationToken aborted) => new(Deadline(timeoutMs), aborted);

    /// <summary>A snapshot's deadline: it names none, and gets the longest a request may have (<c>--max-timeout-ms</c>).</summary>
    public RequestScope BeginSnapshot(CancellationToken aborted) => new(options.MaxTimeout, aborted);

    /// <summary>Up to <c>limit</c> answers, collected: the whole reply is built before it is sent.</summary>
    public async Task<Reply> QueryAsync(string? goal, int? limit, RequestScope scope)
    {
        try
        {
            string text = Required(goal, "goal");
            int max = Limit(limit, options.MaxLimit, "non-streaming");
            var answers = new List<PrologAnswer>();
            (int count, bool truncated) = await RunQueryAsync(text, max, scope, answer =>
            {
                answers.Add(answer);
                return ValueTask.CompletedTask;
            }).ConfigureAwait(false);

            PrologAnswer? last = answers.Count > 0 ? answers[^1] : null;
            if (last is { Kind: PrologAnswerKind.Error } && answers.Count == 1 && IsSyntaxError(last.Error!))
            {
                LogRefused("query", 400, $"syntax error: {last.Error}");
                return PrologError(400, "syntax_error", "The goal is not valid Prolog.", last.Error!);
            }

            return Json(200, json =>
            {
                json.WriteString("result", last switch
                {
                    null => "failure",
                    { Kind: PrologAnswerKind.Error } => "error",
                    _ => "success",
                });
                json.WriteStartArray("answers");
                foreach (PrologAnswer answer in answers)
                {
                    if (answer.Kind == PrologAnswerKind.Success)
                    {
                        TermJson.WriteBindings(json, answer);
                    }
                }

                json.WriteEndArray();
                if (last is { Kind: PrologAnswerKind.Error })
                {
                    json.WritePropertyName("error");
                    TermJson.Write(json, last.Error!);
                }

                json.WriteBoolean("limitReached", truncated || (count == max && last is { Kind: PrologAnswerKind.Success }));
                if (truncated)
                {
                    json.WriteBoolean("truncated", true); // stopped at --max-reply-bytes, not at the limit
                }

                string output = string.Concat(answers.Select(a => a.Output));
                if (output.Length > 0)
                {
                    json.WriteString("output", output);
                }
            });
        }
        catch (Exception e)
        {
            return Fail(e, "query");
        }
    }

    /// <summary>Checks a streaming query's arguments before anything is sent.</summary>
    /// <exception cref="ServiceException">A missing goal or a limit out of range.</exception>
    public (string Goal, int Limit) CheckStream(QueryRequest request) =>
        (Required(request.Goal, "goal"), Limit(request.Limit, options.MaxStreamLimit, "streaming"));

    /// <summary>
    /// Runs a query on the backend once admitted, passing each answer on, within the request's deadline and the reply
    /// budget (<see cref="ServerOptions.MaxReplyBytes"/>, counted in the bytes the guest produced): an answer that would
    /// pass the budget is not passed on and the query stops, <c>truncated</c>.
    /// </summary>
    /// <exception cref="ServiceException">503: the queue is full.</exception>
    /// <exception cref="TimeoutException">The deadline passed (waiting, in the guest, or passing an answer on).</exception>
    public async Task<(int Count, bool Truncated)> RunQueryAsync(string goal, int limit, RequestScope scope, Func<PrologAnswer, ValueTask> onAnswer)
    {
        long bytes = 0;
        bool truncated = false;
        int count = await AdmittedAsync(scope, read: true, async () =>
        {
            try
            {
                return await backend.QueryAsync(goal, limit, scope.Remaining, answer =>
                {
                    bytes += answer.CapturedBytes;
                    if (bytes > options.MaxReplyBytes)
                    {
                        truncated = true;
                        throw new ReplyBudgetExceededException();
                    }

                    return onAnswer(answer);
                }, scope.Token).ConfigureAwait(false);
            }
            catch (ReplyBudgetExceededException)
            {
                return -1;
            }
        }).ConfigureAwait(false);
        return truncated ? (limit, true) : (count, false);
    }

    /// <summary>Stops a query at the reply budget; never leaves the service.</summary>
    private sealed class ReplyBudgetExceededException : Exception;

    /// <summary>
    /// Waits for admission within the deadline, then runs <paramref name="run"/>; the deadline passing anywhere in it
    /// becomes a <see cref="TimeoutException"/>.
    /// </summary>
    private async Task<T> AdmittedAsync<T>(RequestScope scope, bool read, Func<Task<T>> run)
    {
        RateLimitLease lease;
        try
        {
            lease = await _admission.Limiter.AcquireAsync(1, scope.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (scope.Expired)
        {
            throw new TimeoutException($"The request's {scope.Timeout.TotalMilliseconds:0} ms deadline passed while it waited for the backend.");
        }

        using (lease)
        {
            if (!lease.IsAcquired)
            {
                throw new ServiceException(503, "busy",
                    $"The service is busy: {options.EffectiveMaxConcurrentRequests} requests running and {options.MaxQueuedRequests} waiting; try again shortly.")
                {
                    RetryAfterSeconds = 1,
                };
            }

            int kind = read ? 0 : 1;
            Interlocked.Increment(ref _running[kind]);
            try
            {
                return await run().ConfigureAwait(false);
            }
            catch (OperationCanceledException e) when (scope.Expired)
            {
                throw new TimeoutException($"The request ran past its {scope.Timeout.TotalMilliseconds:0} ms deadline and was interrupted.", e);
            }
            finally
            {
                Interlocked.Decrement(ref _running[kind]);
                Interlocked.Increment(ref _finished[kind]);
            }
        }
    }

    public Task<Reply> ConsultAsync(string? text, string? module, RequestScope scope) =>
        WriteAsync("consult", scope, async () =>
        {
            string program = Required(text, "text");
            string output = await backend.WriteAsync(p => p.Consult(program, module ?? PrologInterpreter.QueryModule),
                scope.Remaining, scope.Token).ConfigureAwait(false);
            return Json(200, json =>
            {
                json.WriteString("result", "ok");
                if (output.Length > 0)
                {
                    json.WriteString("output", output);
                }
            });
        });

    public Task<Reply> AssertAsync(string? clause, RequestScope scope) =>
        WriteAsync("assert", scope, async () =>
        {
            string goal = ClauseGoal(Required(clause, "clause"), "assertz");
            await backend.WriteAsync(p => p.QueryOnce(goal).ThrowIfError(), scope.Remaining, scope.Token).ConfigureAwait(false);
            return Json(200, json => json.WriteString("result", "ok"));
        });

    public Task<Reply> RetractAsync(string? clause, RequestScope scope) =>
        WriteAsync("retract", scope, async () =>
        {
            string goal = ClauseGoal(Required(clause, "clause"), "retract");
            PrologAnswer answer = await backend.WriteAsync(p => p.QueryOnce(goal).ThrowIfError(), scope.Remaining, scope.Token)
                .ConfigureAwait(false);
            return Json(200, json =>
            {
                json.WriteString("result", "ok");
                json.WriteBoolean("retracted", answer.IsSuccess);
            });
        });

    /// <summary>
    /// Saves (and publishes) a snapshot: one at a time, and at most one per <see cref="ServerOptions.MinSnapshotInterval"/>
    /// (each holds the write gate while it copies the committed state): 429 with <c>Retry-After</c> otherwise.
    /// </summary>
    public Task<Reply> SnapshotAsync(RequestScope scope) =>
        WriteAsync("snapshot", scope, async () =>
        {
            string? path = options.EffectiveSnapshotPath;
            if (path is null && backend.State.PublishedSequence is null)
            {
                throw new ServiceException(409, "no_snapshot_path",
                    "The service was started without --snapshot, a durable data directory or --replicate-to, so it has nowhere to save one.");
            }

            if (!_snapshotting.Wait(0))
            {
                throw new ServiceException(429, "snapshot_in_progress", "A snapshot is being saved; try again when it is done.") { RetryAfterSeconds = 1 };
            }

            try
            {
                TimeSpan since = Stopwatch.GetElapsedTime(Interlocked.Read(ref _lastSnapshot));
                if (Interlocked.Read(ref _lastSnapshot) != long.MinValue && since < options.MinSnapshotInterval)
                {
                    int wait = (int)Math.Ceiling((options.MinSnapshotInterval - since).TotalSeconds);
                    throw new ServiceException(429, "snapshot_too_soon",
                        $"A snapshot was saved {since.TotalSeconds:0.#} s ago; the service saves at most one per {options.MinSnapshotInterval.TotalSeconds:0.#} s.")
                    {
                        RetryAfterSeconds = Math.Max(1, wait),
                    };
                }

                Reply reply = await SaveSnapshotAsync(path, scope.Token).ConfigureAwait(false);
                Interlocked.Exchange(ref _lastSnapshot, Stopwatch.GetTimestamp());
                return reply;
            }
            finally
            {
                _snapshotting.Release();
            }
        });

    private async Task<Reply> SaveSnapshotAsync(string? path, CancellationToken cancellationToken)
    {
        long bytes = 0;
        if (path is not null)
        {
            await backend.SaveSnapshotAsync(path, cancellationToken).ConfigureAwait(false);
            bytes = new FileInfo(path).Length;
            LogSnapshotSaved(path, bytes);
        }

        long? published = await backend.PublishSnapshotAsync(cancellationToken).ConfigureAwait(false);
        return Json(200, json =>
        {
            json.WriteString("result", "ok");
            if (path is not null)
            {
                json.WriteString("path", path);
                json.WriteNumber("bytes", bytes);
            }

            if (published is { } sequence)
            {
                json.WriteNumber("published_sequence", sequence); // the commit of the snapshot new replicas start from
            }
        });
    }

    public Reply Health()
    {
        Exception? fault = backend.FaultCause;
        return Json(fault is null ? 200 : 503, json =>
        {
            json.WriteString("health", fault is null ? "ok" : "faulted");
            json.WriteString("backend", backend.Name);
            json.WriteNumber("replicas", backend.Replicas);
            BackendState state = backend.State;
            if (state.Sequence is { } sequence)
            {
                json.WriteNumber("sequence", sequence); // a follower: the leader's commit it has applied
            }

            if (state.PublishedSequence is { } published)
            {
                json.WriteNumber("published_sequence", published); // stored by JetStream
            }

            if (state.ReplicationFault is { } replicationFault)
            {
                json.WriteString("replication_fault", replicationFault);
            }

            if (fault is not null)
            {
                json.WriteString("fault", fault.Message);
            }
        });
    }

    /// <summary>
    /// <c>GET /stats</c>, what the browser console polls: requests running and finished (reads, writes), the queue, the
    /// backend's sequence and pages committed. Counters since start; the console turns their differences into rates.
    /// </summary>
    public Reply Stats()
    {
        BackendState state = backend.State;
        return Json(200, json =>
        {
            json.WriteString("backend", backend.Name);
            json.WriteString("role", options.FollowSocket is not null || options.FollowNats is not null ? "follower" : "leader");
            json.WriteNumber("replicas", backend.Replicas);
            json.WriteNumber("readsRunning", Interlocked.Read(ref _running[0]));
            json.WriteNumber("writesRunning", Interlocked.Read(ref _running[1]));
            json.WriteNumber("queued", _admission.Queued);
            json.WriteNumber("reads", Interlocked.Read(ref _finished[0]));
            json.WriteNumber("writes", Interlocked.Read(ref _finished[1]));
            WriteOptional(json, "sequence", state.Sequence);
            WriteOptional(json, "publishedSequence", state.PublishedSequence);
            WriteOptional(json, "committedPages", state.CommittedPages);
            json.WriteNumber("uptimeSeconds", Math.Round(Stopwatch.GetElapsedTime(_started).TotalSeconds, 3));
            json.WriteString("health", backend.FaultCause is null ? "ok" : "faulted");
        });

        static void WriteOptional(Utf8JsonWriter json, string name, long? value)
        {
            if (value is { } v)
            {
                json.WriteNumber(name, v);
            }
            else
            {
                json.WriteNull(name);
            }
        }
    }

    /// <summary>Turns a failure into its reply, and logs it (client errors at Information, ours at Error).</summary>
    public Reply Fail(Exception e, string operation)
    {
        Reply reply = e switch
        {
            ServiceException s => Error(s.Status, s.Code, s.Message) with { RetryAfterSeconds = s.RetryAfterSeconds },
            PrologException p when IsSyntaxError(p.Error) => PrologError(400, "syntax_error", "The text is not valid Prolog.", p.Error),
            PrologException p => PrologError(422, "prolog_error", "The write raised an error and was rolled back.", p.Error),
            TimeoutException => Error(504, "timeout", e.Message),
            OperationCanceledException => Error(499, "cancelled", "The client went away or the request was cancelled."),
            ObjectDisposedException => Error(503, "shutting_down", "The service is shutting down."),
            CowWasm.Replication.ReplicationException => Error(503, "replication_unavailable", e.Message),
            InvalidOperationException when backend.FaultCause is not null =>
                Error(503, "faulted", $"The backend cannot serve: {backend.FaultCause.Message}"),
            NotSupportedException => Error(501, "not_supported", e.Message),
            // The request's own goal made the guest stop: the client's doing, answered and logged as such (no stack trace).
            GuestExitException => Error(422, "halted",
                $"The goal stopped the interpreter ({e.Message}); halt is not served. Its replica was reset (a write was rolled back)."),
            WasmTrapException trap => Error(422, "guest_trap",
                $"The goal made the guest trap ({trap.Kind}: {trap.Message}); its replica was reset (a write was rolled back)."),
            InsufficientMemoryException => Error(422, "resource_error", $"The guest ran out of memory: {e.Message}"),
            _ => Error(500, "internal", "The request failed inside the service; see its log."),
        };
        _admission.Refused.Add(1, new KeyValuePair<string, object?>("status", reply.Status));
        if (reply.Status == 500)
        {
            LogFailed(e, operation, reply.Status);
        }
        else if (reply.Status > 500)
        {
            LogUnavailable(operation, reply.Status, e.Message);
        }
        else
        {
            LogRefused(operation, reply.Status, e.Message);
        }

        return reply;
    }

    public static Reply Error(int status, string code, string message) => Json(status, json =>
    {
        json.WriteString("error", code);
        json.WriteString("message", message);
    });

    public static Reply Json(int status, Action<Utf8JsonWriter> members)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            members(json);
            json.WriteEndObject();
        }

        return new Reply(status, buffer.WrittenMemory);
    }

    /// <summary>A syntax error: <c>error(syntax_error(…), …)</c> from a goal, or the loader's message from a consult.</summary>
    public static bool IsSyntaxError(PrologTerm error) => error switch
    {
        PrologCompound { Functor: "error", Args: [PrologCompound { Functor: "syntax_error" } or PrologAtom { Name: "syntax_error" }, ..] } => true,
        PrologCompound { Functor: "consult_error", Args: [_, PrologString { Value: var message }] } =>
            message.Contains("syntax error", StringComparison.OrdinalIgnoreCase),
        _ => false,
    };

    private static Reply PrologError(int status, string code, string message, PrologTerm term) => Json(status, json =>
    {
        json.WriteString("error", code);
        json.WriteString("message", message);
        json.WritePropertyName("term");
        TermJson.Write(json, term);
        json.WriteString("text", term.ToString());
    });

    private async Task<Reply> WriteAsync(string operation, RequestScope scope, Func<Task<Reply>> run)
    {
        try
        {
            return await AdmittedAsync(scope, read: false, run).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            return Fail(e, operation);
        }
    }

    /// <summary>
    /// A goal that parses <paramref name="clause"/> as one term and passes it to assertz/retract: the clause travels as a
    /// quoted atom, so its text is never run as a goal (<c>a)), halt, ((b</c> is a syntax error, not a halt). It is read
    /// inside parentheses (after one final full stop is dropped), so text holding two clauses (<c>p. q.</c>) is a syntax
    /// error instead of <c>p</c> with <c>q</c> silently dropped; the newlines keep a trailing <c>%</c> comment from
    /// swallowing the closing parenthesis.
    /// </summary>
    private static string ClauseGoal(string clause, string predicate) =>
        $"read_term_from_atom({PrologTerm.Atom($"(\n{PrologSyntax.WithoutFinalFullStop(clause)}\n)")}, CowwasmClause, []), {predicate}(CowwasmClause)";

    private static string Required(string? value, string name) =>
        string.IsNullOrWhiteSpace(value) ? throw new ServiceException(400, "bad_request", $"\"{name}\" is required.") : value;

    private static int Limit(int? limit, int max, string kind) => limit switch
    {
        null => Math.Min(10, max),
        < 1 => throw new ServiceException(400, "bad_request", "\"limit\" must be at least 1."),
        _ when limit > max => throw new ServiceException(400, "bad_request",
            $"\"limit\" is at most {max} for a {kind} query" + (kind == "streaming" ? "." : "; ask for \"stream\": true to get more.")),
        _ => limit.Value,
    };

    private TimeSpan Deadline(int? timeoutMs) => timeoutMs switch
    {
        null => options.DefaultTimeout,
        < 1 => throw new ServiceException(400, "bad_request", "\"timeoutMs\" must be at least 1."),
        _ when TimeSpan.FromMilliseconds(timeoutMs.Value) > options.MaxTimeout => throw new ServiceException(400, "bad_request",
            $"\"timeoutMs\" is at most {options.MaxTimeout.TotalMilliseconds:0}."),
        _ => TimeSpan.FromMilliseconds(timeoutMs.Value),
    };

    /// <summary>Frees the admission limiter.</summary>
    public void Dispose()
    {
        _admission.Dispose();
        _snapshotting.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "{Operation} failed with {Status}")]
    private partial void LogFailed(Exception error, string operation, int status);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Operation} answered {Status}: {Reason}")]
    private partial void LogUnavailable(string operation, int status, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Operation} answered {Status}: {Reason}")]
    private partial void LogRefused(string operation, int status, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Snapshot saved to {Path} ({Bytes} bytes)")]
    private partial void LogSnapshotSaved(string path, long bytes);
}

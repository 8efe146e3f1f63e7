using System.Buffers;
using System.Text.Json;
using CowWasm.Prolog;
using Microsoft.Extensions.Logging;

namespace CowWasm.Server;

/// <summary>A finished reply: an HTTP status and a JSON object.</summary>
internal readonly record struct Reply(int Status, ReadOnlyMemory<byte> Body);

/// <summary>
/// The service's operations, shared by HTTP and TCP: validation, deadlines, running them on the backend, and every
/// failure turned into a status with a JSON error (<see cref="Fail"/>), logged. Thread-safe.
/// </summary>
internal sealed partial class PrologService(IPrologBackend backend, ServerOptions options, ILogger<PrologService> log)
{
    public IPrologBackend Backend => backend;

    public ServerOptions Options => options;

    /// <summary>Up to <c>limit</c> answers, collected: the whole reply is built before it is sent.</summary>
    public async Task<Reply> QueryAsync(string? goal, int? limit, int? timeoutMs, CancellationToken cancellationToken)
    {
        try
        {
            string text = Required(goal, "goal");
            int max = Limit(limit, options.MaxLimit, "non-streaming");
            var answers = new List<PrologAnswer>();
            int count = await backend.QueryAsync(text, max, Deadline(timeoutMs), answer =>
            {
                answers.Add(answer);
                return ValueTask.CompletedTask;
            }, cancellationToken).ConfigureAwait(false);

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

                json.WriteBoolean("limitReached", count == max && last is { Kind: PrologAnswerKind.Success });
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
    public (string Goal, int Limit, TimeSpan Timeout) CheckStream(QueryRequest request) =>
        (Required(request.Goal, "goal"), Limit(request.Limit, options.MaxStreamLimit, "streaming"), Deadline(request.TimeoutMs));

    public Task<Reply> ConsultAsync(string? text, string? module, int? timeoutMs, CancellationToken cancellationToken) =>
        WriteAsync("consult", async () =>
        {
            string program = Required(text, "text");
            string output = await backend.WriteAsync(p => p.Consult(program, module ?? PrologInterpreter.QueryModule),
                Deadline(timeoutMs), cancellationToken).ConfigureAwait(false);
            return Json(200, json =>
            {
                json.WriteString("result", "ok");
                if (output.Length > 0)
                {
                    json.WriteString("output", output);
                }
            });
        });

    public Task<Reply> AssertAsync(string? clause, int? timeoutMs, CancellationToken cancellationToken) =>
        WriteAsync("assert", async () =>
        {
            string goal = ClauseGoal(Required(clause, "clause"), "assertz");
            await backend.WriteAsync(p => p.QueryOnce(goal).ThrowIfError(), Deadline(timeoutMs), cancellationToken).ConfigureAwait(false);
            return Json(200, json => json.WriteString("result", "ok"));
        });

    public Task<Reply> RetractAsync(string? clause, int? timeoutMs, CancellationToken cancellationToken) =>
        WriteAsync("retract", async () =>
        {
            string goal = ClauseGoal(Required(clause, "clause"), "retract");
            PrologAnswer answer = await backend.WriteAsync(p => p.QueryOnce(goal).ThrowIfError(), Deadline(timeoutMs), cancellationToken)
                .ConfigureAwait(false);
            return Json(200, json =>
            {
                json.WriteString("result", "ok");
                json.WriteBoolean("retracted", answer.IsSuccess);
            });
        });

    public Task<Reply> SnapshotAsync(CancellationToken cancellationToken) =>
        WriteAsync("snapshot", async () =>
        {
            string? path = options.EffectiveSnapshotPath;
            if (path is null && backend.State.PublishedSequence is null)
            {
                throw new ServiceException(409, "no_snapshot_path",
                    "The service was started without --snapshot, a durable data directory or --replicate-to, so it has nowhere to save one.");
            }

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
        });

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

    /// <summary>Turns a failure into its reply, and logs it (client errors at Information, ours at Error).</summary>
    public Reply Fail(Exception e, string operation)
    {
        Reply reply = e switch
        {
            ServiceException s => Error(s.Status, s.Code, s.Message),
            PrologException p when IsSyntaxError(p.Error) => PrologError(400, "syntax_error", "The text is not valid Prolog.", p.Error),
            PrologException p => PrologError(422, "prolog_error", "The write raised an error and was rolled back.", p.Error),
            TimeoutException => Error(504, "timeout", e.Message),
            OperationCanceledException => Error(499, "cancelled", "The client went away or the request was cancelled."),
            ObjectDisposedException => Error(503, "shutting_down", "The service is shutting down."),
            CowWasm.Replication.ReplicationException => Error(503, "replication_unavailable", e.Message),
            InvalidOperationException when backend.FaultCause is not null =>
                Error(503, "faulted", $"The backend cannot serve: {backend.FaultCause.Message}"),
            NotSupportedException => Error(501, "not_supported", e.Message),
            _ => Error(500, "internal", "The request failed inside the service; see its log."),
        };
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

    private async Task<Reply> WriteAsync(string operation, Func<Task<Reply>> run)
    {
        try
        {
            return await run().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            return Fail(e, operation);
        }
    }

    /// <summary>
    /// A goal that parses <paramref name="clause"/> as one term and passes it to assertz/retract: the clause travels as a
    /// quoted atom, so its text is never run as a goal (<c>a)), halt, ((b</c> is a syntax error, not a halt).
    /// </summary>
    private static string ClauseGoal(string clause, string predicate) =>
        $"read_term_from_atom({PrologTerm.Atom(clause)}, CowwasmClause, []), {predicate}(CowwasmClause)";

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

    [LoggerMessage(Level = LogLevel.Error, Message = "{Operation} failed with {Status}")]
    private partial void LogFailed(Exception error, string operation, int status);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Operation} answered {Status}: {Reason}")]
    private partial void LogUnavailable(string operation, int status, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Operation} answered {Status}: {Reason}")]
    private partial void LogRefused(string operation, int status, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Snapshot saved to {Path} ({Bytes} bytes)")]
    private partial void LogSnapshotSaved(string path, long bytes);
}

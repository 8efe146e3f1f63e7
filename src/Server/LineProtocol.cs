using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Text.Json;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CowWasm.Server;

/// <summary>
/// The raw TCP protocol, on System.IO.Pipelines through Kestrel's connection middleware: one JSON request per line
/// (<see cref="LineRequest"/>), one JSON reply per line, <c>{"id":…,"status":…, …the HTTP reply's members}</c>.
/// <para>A connection authenticates first: <c>{"op":"auth","token":…}</c> (reads may skip it under
/// <see cref="ServerOptions.AnonymousReads"/>). A wrong token, a write before authenticating, or a line that is not a
/// request (not JSON, an unknown op or member) gets its error reply and closes the connection: requests in flight finish,
/// nothing more is read.</para>
/// <para>Requests are pipelined: reads start when their line arrives and replies go out as they finish, tagged by id, in
/// any order; writes (consult, assert, retract, snapshot) run one after another in arrival order. Backpressure both ways:
/// at most <see cref="ServerOptions.MaxInFlightPerConnection"/> requests run per connection (the reader stops reading
/// until one finishes, so the client's sends block in TCP), and a reply waits for the client to read — within the
/// request's deadline, after which the connection is cut. A line longer than the request limit gets a 413 reply and
/// closes the connection (its end cannot be found without reading it); the transport buffers more than the limit, so
/// such a line is always seen. A line begun and not finished within <see cref="ServerOptions.HeaderTimeout"/>, or a
/// connection idle for <see cref="ServerOptions.IdleTimeout"/>, is closed. On shutdown the connection stops reading,
/// finishes what is in flight, and closes.</para>
/// </summary>
internal sealed partial class LineProtocol(PrologService service, IHostApplicationLifetime lifetime, ILogger<LineProtocol> log)
    : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed, lifetime.ApplicationStopping);
        PipeReader input = connection.Transport.Input;
        PipeWriter output = connection.Transport.Output;
        using var slots = new SemaphoreSlim(service.Options.MaxInFlightPerConnection);
        using var writeLock = new SemaphoreSlim(1, 1);
        var inFlight = new List<Task>();
        var state = new ConnectionState(connection, output, writeLock, slots);
        int maxLine = service.Options.MaxRequestBytes;
        LogConnected(connection.ConnectionId, connection.RemoteEndPoint?.ToString());
        try
        {
            bool closing = false;
            while (!closing && !stopping.IsCancellationRequested)
            {
                ReadResult read;
                using (var wait = CancellationTokenSource.CreateLinkedTokenSource(stopping.Token))
                {
                    // A started line must finish within the header timeout; an idle connection (nothing in flight) is
                    // closed after the idle timeout; one waiting for its own replies is not timed.
                    inFlight.RemoveAll(t => t.IsCompleted);
                    TimeSpan? limit = state.PartialLine
                        ? service.Options.HeaderTimeout - Stopwatch.GetElapsedTime(state.LineStarted) // since the line began, not this read
                        : inFlight.Count == 0 ? service.Options.IdleTimeout : null;
                    if (limit is { } timeout)
                    {
                        wait.CancelAfter(timeout > TimeSpan.Zero ? timeout : TimeSpan.Zero);
                    }

                    try
                    {
                        read = await input.ReadAsync(wait.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
                    {
                        if (state.PartialLine)
                        {
                            await state.ReplyAsync(null, PrologService.Error(408, "line_timeout",
                                $"A request line must arrive whole within {service.Options.HeaderTimeout.TotalMilliseconds:0} ms."), null).ConfigureAwait(false);
                        }

                        LogTimedOut(connection.ConnectionId, state.PartialLine ? "a line was begun and not finished" : "idle");
                        break;
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                }

                ReadOnlySequence<byte> buffer = read.Buffer;
                bool tooLong = false;
                while (!closing && TryTakeLine(ref buffer, out ReadOnlySequence<byte> line))
                {
                    if (line.Length > maxLine)
                    {
                        tooLong = true;
                        break;
                    }

                    if (IsBlank(line))
                    {
                        continue;
                    }

                    closing = await TakeAsync(line, state, inFlight).ConfigureAwait(false);
                }

                if (!closing && (tooLong || buffer.Length > maxLine))
                {
                    // No end in sight within the limit: answer and close, since the next line's start is unknown.
                    await state.ReplyAsync(null, PrologService.Error(413, "too_large", $"A request line is limited to {maxLine} bytes."), null)
                        .ConfigureAwait(false);
                    LogLineTooLong(connection.ConnectionId, maxLine);
                    input.AdvanceTo(read.Buffer.End);
                    break;
                }

                if (buffer.Length > 0 && !state.PartialLine)
                {
                    state.LineStarted = Stopwatch.GetTimestamp();
                }

                state.PartialLine = buffer.Length > 0;
                input.AdvanceTo(buffer.Start, buffer.End);
                if (read.IsCompleted || read.IsCanceled)
                {
                    if (buffer.Length > 0)
                    {
                        LogHalfLine(connection.ConnectionId, buffer.Length); // a frame the client never finished
                    }

                    break;
                }
            }

            await Task.WhenAll(inFlight).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (connection.ConnectionClosed.IsCancellationRequested)
        {
            // the client went away; requests in flight see the same token
        }
        catch (ConnectionResetException)
        {
        }
        finally
        {
            await Task.WhenAll(inFlight).ConfigureAwait(false);
            await input.CompleteAsync().ConfigureAwait(false);
            await output.CompleteAsync().ConfigureAwait(false);
            LogDisconnected(connection.ConnectionId);
        }
    }

    /// <summary>
    /// One complete line: authenticates, or starts the request (a write after the connection's previous write), or
    /// refuses it. True when the connection must close after it.
    /// </summary>
    private async Task<bool> TakeAsync(ReadOnlySequence<byte> line, ConnectionState state, List<Task> inFlight)
    {
        byte[] bytes = line.ToArray();
        LineRequest request;
        try
        {
            request = JsonSerializer.Deserialize(bytes, RequestJson.Default.LineRequest)
                ?? throw new JsonException("The line is JSON null; an object is expected.");
            if (!IsKnown(request.Op))
            {
                throw new ServiceException(400, "bad_request",
                    $"Unknown op \"{request.Op}\": one of auth, query, consult, assert, retract, snapshot, health.");
            }
        }
        catch (Exception e) when (e is JsonException or ServiceException or ArgumentException or InvalidOperationException)
        {
            // Not a request: answer (to its id, if it has one) and close — it is not a client speaking this protocol.
            Reply refused = service.Fail(e is JsonException ? new ServiceException(400, "bad_json", $"The line is not a valid request: {e.Message}") : e, "line");
            await state.ReplyAsync(IdOf(bytes), refused, null).ConfigureAwait(false);
            return true;
        }

        if (request.Op == "auth")
        {
            bool ok = request.Token is { } token && service.Token.MatchesToken(token);
            state.Authenticated |= ok;
            await state.ReplyAsync(request.Id, ok
                ? PrologService.Json(200, json => json.WriteString("result", "ok"))
                : service.Fail(new ServiceException(401, "unauthorized", "The token is not this service's."), "auth"), null).ConfigureAwait(false);
            return !ok;
        }

        bool write = request.Op is "consult" or "assert" or "retract" or "snapshot";
        bool open = request.Op == "health" || (!write && service.Options.AnonymousReads);
        if (!state.Authenticated && !open)
        {
            await state.ReplyAsync(request.Id, service.Fail(new ServiceException(401, "unauthorized",
                $"Send {{\"op\":\"auth\",\"token\":…}} first: \"{request.Op}\" needs the service's token."), "line"), null).ConfigureAwait(false);
            return true;
        }

        await state.Slots.WaitAsync(state.Connection.ConnectionClosed).ConfigureAwait(false);
        Task previousWrite = state.LastWrite;
        Task running = RunAsync(request, state, write ? previousWrite : Task.CompletedTask);
        if (write)
        {
            state.LastWrite = running;
        }

        inFlight.Add(running);
        return false;
    }

    private static bool IsKnown(string op) => op is "auth" or "query" or "consult" or "assert" or "retract" or "snapshot" or "health";

    private async Task RunAsync(LineRequest request, ConnectionState state, Task after)
    {
        CancellationToken closed = state.Connection.ConnectionClosed;
        try
        {
            await Task.Yield(); // the reader goes on to the next line while this request runs
            await after.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing); // the connection's writes keep their order
            RequestScope? scope = null;
            Reply reply;
            try
            {
                scope = request.Op is "health" ? null : request.Op is "snapshot"
                    ? service.BeginSnapshot(closed)
                    : service.Begin(request.TimeoutMs, closed);
                reply = await DispatchAsync(request, scope).ConfigureAwait(false);
            }
            catch (Exception e) when (e is ServiceException or ArgumentException)
            {
                reply = service.Fail(e, "line");
            }

            using (scope)
            {
                await state.ReplyAsync(request.Id, reply, scope).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (closed.IsCancellationRequested || e is ConnectionResetException or InvalidOperationException)
        {
            // the client is gone (or the pipe completed): nobody to answer
        }
        finally
        {
            state.Slots.Release();
        }
    }

    private static JsonElement? IdOf(byte[] line)
    {
        try
        {
            using JsonDocument document = JsonDocument.Parse(line);
            return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("id", out JsonElement id)
                ? id.Clone()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private Task<Reply> DispatchAsync(LineRequest r, RequestScope? scope) => r.Op switch
    {
        "query" => service.QueryAsync(r.Goal, r.Limit, scope!),
        "consult" => service.ConsultAsync(r.Text, r.Module, scope!),
        "assert" => service.AssertAsync(r.Clause, scope!),
        "retract" => service.RetractAsync(r.Clause, scope!),
        "snapshot" => service.SnapshotAsync(scope!),
        _ => Task.FromResult(service.Health()),
    };

    /// <summary>What the requests of one connection share: where replies go, the in-flight slots, the order of writes.</summary>
    private sealed class ConnectionState(ConnectionContext connection, PipeWriter output, SemaphoreSlim writeLock, SemaphoreSlim slots)
    {
        public ConnectionContext Connection => connection;

        public SemaphoreSlim Slots => slots;

        public bool Authenticated { get; set; }

        /// <summary>The reader holds bytes of a line whose end has not arrived.</summary>
        public bool PartialLine { get; set; }

        /// <summary>When the first bytes of that line arrived (<see cref="Stopwatch.GetTimestamp"/>).</summary>
        public long LineStarted { get; set; }

        /// <summary>The connection's last write: the next one starts after it. Read and set by the reader only.</summary>
        public Task LastWrite { get; set; } = Task.CompletedTask;

        /// <summary>
        /// Writes <c>{"id":…,"status":…,</c> then the reply's members, and a newline; one reply at a time. It waits while the
        /// client does not read (backpressure), but not past the request's deadline or a second, whichever is later
        /// (<see cref="RequestScope.ReplyWindow"/>): then the connection is cut.
        /// </summary>
        public async Task ReplyAsync(JsonElement? id, Reply reply, RequestScope? scope)
        {
            CancellationToken closed = connection.ConnectionClosed;
            CancellationToken either = RequestScope.ReplyWindow(scope, closed, out CancellationTokenSource? owned);
            using CancellationTokenSource? window = owned; // disposed when this reply is written (null: the scope's own token)
            try
            {
                await writeLock.WaitAsync(either).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!closed.IsCancellationRequested)
            {
                connection.Abort(new ConnectionAbortedException("A reply could not be written before its deadline: the client is not reading."));
                return;
            }

            try
            {
                using (var json = new Utf8JsonWriter(output))
                {
                    json.WriteStartObject();
                    json.WritePropertyName("id");
                    if (id is { } value)
                    {
                        value.WriteTo(json);
                    }
                    else
                    {
                        json.WriteNullValue();
                    }

                    json.WriteNumber("status", reply.Status);
                    if (reply.RetryAfterSeconds > 0)
                    {
                        json.WriteNumber("retryAfterSeconds", reply.RetryAfterSeconds);
                    }

                    json.Flush();
                }

                ReadOnlySpan<byte> members = reply.Body.Span[1..]; // the reply object without its opening brace
                if (members.Length > 1)
                {
                    output.Write(","u8);
                }

                output.Write(members);
                output.Write("\n"u8);
                await output.FlushAsync(either).ConfigureAwait(false); // waits while the client does not read: backpressure
            }
            catch (OperationCanceledException) when (!closed.IsCancellationRequested)
            {
                connection.Abort(new ConnectionAbortedException("A reply could not be written before its deadline: the client is not reading."));
            }
            finally
            {
                writeLock.Release();
            }
        }
    }

    private static bool TryTakeLine(ref ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> line)
    {
        SequencePosition? end = buffer.PositionOf((byte)'\n');
        if (end is null)
        {
            line = default;
            return false;
        }

        line = buffer.Slice(0, end.Value);
        buffer = buffer.Slice(buffer.GetPosition(1, end.Value));
        return true;
    }

    private static bool IsBlank(ReadOnlySequence<byte> line)
    {
        foreach (ReadOnlyMemory<byte> segment in line)
        {
            foreach (byte b in segment.Span)
            {
                if (b is not ((byte)' ' or (byte)'\r' or (byte)'\t'))
                {
                    return false;
                }
            }
        }

        return true;
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "TCP connection {Connection} from {Remote}")]
    private partial void LogConnected(string connection, string? remote);

    [LoggerMessage(Level = LogLevel.Debug, Message = "TCP connection {Connection} closed")]
    private partial void LogDisconnected(string connection);

    [LoggerMessage(Level = LogLevel.Warning, Message = "TCP connection {Connection}: a line over {Limit} bytes; closing")]
    private partial void LogLineTooLong(string connection, int limit);

    [LoggerMessage(Level = LogLevel.Information, Message = "TCP connection {Connection} closed: {Why}")]
    private partial void LogTimedOut(string connection, string why);

    [LoggerMessage(Level = LogLevel.Information, Message = "TCP connection {Connection} ended in the middle of a {Bytes}-byte line")]
    private partial void LogHalfLine(string connection, long bytes);
}

using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CowWasm.Server;

/// <summary>
/// The raw TCP protocol, on System.IO.Pipelines through Kestrel's connection middleware: one JSON request per line
/// (<see cref="LineRequest"/>), one JSON reply per line, <c>{"id":…,"status":…, …the HTTP reply's members}</c>.
/// Requests are pipelined: each starts when its line arrives and replies go out as they finish, tagged by id, in any
/// order. Backpressure both ways: at most <see cref="ServerOptions.MaxInFlightPerConnection"/> requests run per
/// connection (the reader stops reading until one finishes, so the client's sends block in TCP), and a reply waits for
/// the client to read (the writer's flush). A line longer than the request limit gets a 413 reply and closes the
/// connection (its end cannot be found without reading it); a malformed line gets a 400 and the connection goes on.
/// On shutdown the connection stops reading, finishes what is in flight, and closes.
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
        int maxLine = service.Options.MaxRequestBytes;
        LogConnected(connection.ConnectionId, connection.RemoteEndPoint?.ToString());
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                ReadResult read;
                try
                {
                    read = await input.ReadAsync(stopping.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                ReadOnlySequence<byte> buffer = read.Buffer;
                bool tooLong = false;
                while (TryTakeLine(ref buffer, out ReadOnlySequence<byte> line))
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

                    byte[] copy = line.ToArray(); // the pipe's buffer is released below; the request outlives it
                    await slots.WaitAsync(connection.ConnectionClosed).ConfigureAwait(false);
                    inFlight.RemoveAll(t => t.IsCompleted);
                    inFlight.Add(RunAsync(copy, output, writeLock, slots, connection.ConnectionClosed));
                }

                if (tooLong || buffer.Length > maxLine)
                {
                    // No end in sight within the limit: answer and close, since the next line's start is unknown.
                    await ReplyAsync(output, writeLock, null, PrologService.Error(413, "too_large",
                        $"A request line is limited to {maxLine} bytes."), connection.ConnectionClosed).ConfigureAwait(false);
                    LogLineTooLong(connection.ConnectionId, maxLine);
                    input.AdvanceTo(read.Buffer.End);
                    break;
                }

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

    private async Task RunAsync(byte[] line, PipeWriter output, SemaphoreSlim writeLock, SemaphoreSlim slots, CancellationToken closed)
    {
        try
        {
            await Task.Yield(); // the reader goes on to the next line while this request runs
            JsonElement? id = null;
            Reply reply;
            try
            {
                LineRequest request = JsonSerializer.Deserialize(line, RequestJson.Default.LineRequest)
                    ?? throw new ServiceException(400, "bad_request", "The line is JSON null; an object is expected.");
                id = request.Id;
                reply = await DispatchAsync(request, closed).ConfigureAwait(false);
            }
            catch (Exception e) when (e is JsonException or ServiceException or ArgumentException or InvalidOperationException)
            {
                id = IdOf(line); // a line that is not a valid request may still carry an id to answer to
                reply = service.Fail(e is JsonException ? new ServiceException(400, "bad_json", $"The line is not a valid request: {e.Message}") : e, "line");
            }

            await ReplyAsync(output, writeLock, id, reply, closed).ConfigureAwait(false);
        }
        catch (Exception e) when (closed.IsCancellationRequested || e is ConnectionResetException or InvalidOperationException)
        {
            // the client is gone (or the pipe completed): nobody to answer
        }
        finally
        {
            slots.Release();
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

    private Task<Reply> DispatchAsync(LineRequest r, CancellationToken token) => r.Op switch
    {
        "query" => service.QueryAsync(r.Goal, r.Limit, r.TimeoutMs, token),
        "consult" => service.ConsultAsync(r.Text, r.Module, r.TimeoutMs, token),
        "assert" => service.AssertAsync(r.Clause, r.TimeoutMs, token),
        "retract" => service.RetractAsync(r.Clause, r.TimeoutMs, token),
        "snapshot" => service.SnapshotAsync(token),
        "health" => Task.FromResult(service.Health()),
        _ => throw new ServiceException(400, "bad_request",
            $"Unknown op \"{r.Op}\": one of query, consult, assert, retract, snapshot, health."),
    };

    /// <summary>Writes <c>{"id":…,"status":…,</c> then the reply's members, and a newline; one reply at a time.</summary>
    private static async Task ReplyAsync(PipeWriter output, SemaphoreSlim writeLock, JsonElement? id, Reply reply, CancellationToken closed)
    {
        await writeLock.WaitAsync(closed).ConfigureAwait(false);
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
                json.Flush();
            }

            ReadOnlySpan<byte> members = reply.Body.Span[1..]; // the reply object without its opening brace
            if (members.Length > 1)
            {
                output.Write(","u8);
            }

            output.Write(members);
            output.Write("\n"u8);
            await output.FlushAsync(closed).ConfigureAwait(false); // waits while the client does not read: backpressure
        }
        finally
        {
            writeLock.Release();
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

    [LoggerMessage(Level = LogLevel.Information, Message = "TCP connection {Connection} ended in the middle of a {Bytes}-byte line")]
    private partial void LogHalfLine(string connection, long bytes);
}

using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using CowWasm.Prolog;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace CowWasm.Server;

/// <summary>
/// The JSON API over HTTP: <c>POST /query</c> (collected, or NDJSON with <c>"stream": true</c>), <c>POST /consult</c>,
/// <c>POST /assert</c>, <c>POST /retract</c>, <c>POST /snapshot</c>, <c>GET /health</c>. Bodies are parsed strictly
/// (unknown members, malformed JSON and invalid UTF-8 are 400; bodies over the limit are 413).
/// </summary>
internal static class HttpApi
{
    public static void Map(IEndpointRouteBuilder app, PrologService service)
    {
        RequestDelegate health = context => Send(context, service.Health());
        RequestDelegate query = context => Handle(context, service, "query", RequestJson.Default.QueryRequest, Query, StreamAsync);
        RequestDelegate consult = context => Handle(context, service, "consult", RequestJson.Default.ConsultRequest, Consult);
        RequestDelegate assert = context => Handle(context, service, "assert", RequestJson.Default.ClauseRequest, Assert);
        RequestDelegate retract = context => Handle(context, service, "retract", RequestJson.Default.ClauseRequest, Retract);
        RequestDelegate snapshot = context => SnapshotAsync(context, service);
        app.MapGet("/health", health);
        app.MapPost("/query", query);
        app.MapPost("/consult", consult);
        app.MapPost("/assert", assert);
        app.MapPost("/retract", retract);
        app.MapPost("/snapshot", snapshot);
    }

    /// <summary>Runs a parsed request; null means the operation writes its own response (a streaming query).</summary>
    private delegate Task<Reply>? Operation<in T>(PrologService service, T request, CancellationToken cancellationToken);

    // Methods, not lambdas: ASP0016 takes a lambda returning Task<Reply> inside a RequestDelegate for a handler.
    private static Task<Reply>? Query(PrologService service, QueryRequest r, CancellationToken token) =>
        r.Stream == true ? null : service.QueryAsync(r.Goal, r.Limit, r.TimeoutMs, token);

    private static Task<Reply> Consult(PrologService service, ConsultRequest r, CancellationToken token) =>
        service.ConsultAsync(r.Text, r.Module, r.TimeoutMs, token);

    private static Task<Reply> Assert(PrologService service, ClauseRequest r, CancellationToken token) =>
        service.AssertAsync(r.Clause, r.TimeoutMs, token);

    private static Task<Reply> Retract(PrologService service, ClauseRequest r, CancellationToken token) =>
        service.RetractAsync(r.Clause, r.TimeoutMs, token);

    /// <summary>
    /// Parses the body as <typeparamref name="T"/> and runs <paramref name="run"/>; when that returns null (a streaming
    /// query), <paramref name="stream"/> writes the response itself.
    /// </summary>
    private static async Task Handle<T>(HttpContext context, PrologService service, string operation, JsonTypeInfo<T> type,
        Operation<T> run, Func<HttpContext, PrologService, T, Task>? stream = null)
        where T : class
    {
        CancellationToken token = context.RequestAborted;
        T request;
        try
        {
            request = await JsonSerializer.DeserializeAsync(context.Request.Body, type, token).ConfigureAwait(false)
                ?? throw new ServiceException(400, "bad_request", "The body is JSON null; an object is expected.");
        }
        catch (Exception e)
        {
            await Send(context, service.Fail(Translate(e), operation)).ConfigureAwait(false);
            return;
        }

        Task<Reply>? reply = run(service, request, token);
        if (reply is null)
        {
            await stream!(context, service, request).ConfigureAwait(false);
            return;
        }

        await Send(context, await reply.ConfigureAwait(false)).ConfigureAwait(false);
    }

    private static async Task SnapshotAsync(HttpContext context, PrologService service)
    {
        if (context.Request.ContentLength > 0 || context.Request.Headers.TransferEncoding.Count > 0)
        {
            await Send(context, service.Fail(new ServiceException(400, "bad_request",
                "POST /snapshot takes no body: the service saves to the path it was started with (--snapshot)."), "snapshot")).ConfigureAwait(false);
            return;
        }

        await Send(context, await service.SnapshotAsync(context.RequestAborted).ConfigureAwait(false)).ConfigureAwait(false);
    }

    /// <summary>What a body that could not be read means: too large (413), not JSON or not the request (400).</summary>
    private static Exception Translate(Exception e) => e switch
    {
        BadHttpRequestException bad => new ServiceException(bad.StatusCode, bad.StatusCode == 413 ? "too_large" : "bad_request", bad.Message),
        JsonException json => new ServiceException(400, "bad_json", $"The body is not a valid request: {json.Message}"),
        // Invalid UTF-8 surfaces from the reader as an InvalidOperationException or ArgumentException inside JsonException
        // on some paths; any other failure to read the body is the client's too.
        ArgumentException or InvalidOperationException or DecoderFallbackException =>
            new ServiceException(400, "bad_json", $"The body is not valid UTF-8 JSON: {e.Message}"),
        _ => e,
    };

    /// <summary>
    /// NDJSON: one <c>{"answer":{…}}</c> line per answer as the guest finds it, each flushed (a slow client holds the
    /// replica: the deadline still runs), then one final line — <c>{"result":"success"|"failure","count":n,"limitReached":b}</c>,
    /// or <c>{"result":"error","error":term}</c>, or, after a deadline or failure mid-stream, <c>{"result":"timeout"|…}</c>
    /// with the error. A request refused before its first line gets an ordinary JSON error reply.
    /// </summary>
    private static async Task StreamAsync(HttpContext context, PrologService service, QueryRequest request)
    {
        (string Goal, int Limit, TimeSpan Timeout) query;
        try
        {
            query = service.CheckStream(request);
        }
        catch (Exception e)
        {
            await Send(context, service.Fail(e, "query")).ConfigureAwait(false);
            return;
        }

        CancellationToken token = context.RequestAborted;
        PipeWriter body = context.Response.BodyWriter;
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/x-ndjson";
        var json = new Utf8JsonWriter(body);
        PrologAnswer? last = null;
        try
        {
            int count = await service.Backend.QueryAsync(query.Goal, query.Limit, query.Timeout, async answer =>
            {
                last = answer;
                if (answer.Kind != PrologAnswerKind.Success)
                {
                    return; // the error goes in the final line
                }

                json.Reset(body);
                json.WriteStartObject();
                json.WritePropertyName("answer");
                TermJson.WriteBindings(json, answer);
                json.WriteEndObject();
                await json.FlushAsync(token).ConfigureAwait(false);
                body.Write("\n"u8);
                FlushResult flushed = await body.FlushAsync(token).ConfigureAwait(false);
                if (flushed.IsCanceled || flushed.IsCompleted)
                {
                    throw new OperationCanceledException("The client stopped reading.");
                }
            }, token).ConfigureAwait(false);

            json.Reset(body);
            json.WriteStartObject();
            if (last is { Kind: PrologAnswerKind.Error })
            {
                json.WriteString("result", "error");
                json.WritePropertyName("error");
                TermJson.Write(json, last.Error!);
            }
            else
            {
                json.WriteString("result", count == 0 ? "failure" : "success");
                json.WriteNumber("count", count);
                json.WriteBoolean("limitReached", count == query.Limit);
            }

            json.WriteEndObject();
            await json.FlushAsync(token).ConfigureAwait(false);
            body.Write("\n"u8);
        }
        catch (Exception e) when (!token.IsCancellationRequested)
        {
            // Mid-stream: the status is sent; the failure is the last line.
            Reply reply = service.Fail(e, "query");
            body.Write(reply.Body.Span);
            body.Write("\n"u8);
        }
        catch (OperationCanceledException e)
        {
            service.Fail(e, "query"); // the client went away: log it; nobody is there to answer
        }
        finally
        {
            await json.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static Task Send(HttpContext context, Reply reply)
    {
        context.Response.StatusCode = reply.Status;
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = reply.Body.Length;
        return context.Response.Body.WriteAsync(reply.Body, context.RequestAborted).AsTask();
    }
}

using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using CowWasm.Prolog;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Net.Http.Headers;

namespace CowWasm.Server;

/// <summary>
/// The JSON API over HTTP: <c>POST /query</c> (collected, or NDJSON with <c>"stream": true</c>), <c>POST /consult</c>,
/// <c>POST /assert</c>, <c>POST /retract</c>, <c>POST /snapshot</c>, <c>GET /health</c>, <c>GET /stats</c> (what the
/// browser console polls; <see cref="ConsoleFiles"/> serves the console itself). Bodies are parsed strictly
/// (unknown members, malformed JSON and invalid UTF-8 are 400; bodies over the limit are 413).
/// </summary>
internal static class HttpApi
{
    public static void Map(IEndpointRouteBuilder app, PrologService service)
    {
        RequestDelegate health = context => Send(context, service.Health());
        RequestDelegate query = context => Handle(context, service, "query", read: true, RequestJson.Default.QueryRequest, Query, StreamAsync);
        RequestDelegate consult = context => Handle(context, service, "consult", read: false, RequestJson.Default.ConsultRequest, Consult);
        RequestDelegate assert = context => Handle(context, service, "assert", read: false, RequestJson.Default.ClauseRequest, Assert);
        RequestDelegate retract = context => Handle(context, service, "retract", read: false, RequestJson.Default.ClauseRequest, Retract);
        RequestDelegate snapshot = context => SnapshotAsync(context, service);
        app.MapGet("/health", health);
        app.MapGet("/stats", context => AuthorizeReadAsync(context, service, "stats", c => Send(c, service.Stats())));
        app.MapPost("/query", query);
        app.MapPost("/consult", consult);
        app.MapPost("/assert", assert);
        app.MapPost("/retract", retract);
        app.MapPost("/snapshot", snapshot);
    }

    /// <summary>Runs a parsed request; null means the operation writes its own response (a streaming query).</summary>
    private delegate Task<Reply>? Operation<in T>(PrologService service, T request, RequestScope scope);

    // Methods, not lambdas: ASP0016 takes a lambda returning Task<Reply> inside a RequestDelegate for a handler.
    private static Task<Reply>? Query(PrologService service, QueryRequest r, RequestScope scope) =>
        r.Stream == true ? null : service.QueryAsync(r.Goal, r.Limit, scope);

    private static Task<Reply> Consult(PrologService service, ConsultRequest r, RequestScope scope) =>
        service.ConsultAsync(r.Text, r.Module, scope);

    private static Task<Reply> Assert(PrologService service, ClauseRequest r, RequestScope scope) =>
        service.AssertAsync(r.Clause, scope);

    private static Task<Reply> Retract(PrologService service, ClauseRequest r, RequestScope scope) =>
        service.RetractAsync(r.Clause, scope);

    /// <summary>
    /// Checks the caller (<see cref="Authorized"/>) and the content type, parses the body as <typeparamref name="T"/>,
    /// starts the request's deadline and runs <paramref name="run"/>; when that returns null (a streaming query),
    /// <paramref name="stream"/> writes the response itself.
    /// </summary>
    private static async Task Handle<T>(HttpContext context, PrologService service, string operation, bool read, JsonTypeInfo<T> type,
        Operation<T> run, Func<HttpContext, PrologService, T, RequestScope, Task>? stream = null)
        where T : class
    {
        if (!await Authorized(context, service, operation, read).ConfigureAwait(false))
        {
            return;
        }

        T request;
        RequestScope scope;
        try
        {
            if (!IsJson(context.Request.ContentType))
            {
                throw new ServiceException(415, "unsupported_media_type",
                    $"POST /{operation} takes Content-Type: application/json (a cross-site form or text/plain post is refused).");
            }

            request = await JsonSerializer.DeserializeAsync(context.Request.Body, type, context.RequestAborted).ConfigureAwait(false)
                ?? throw new ServiceException(400, "bad_request", "The body is JSON null; an object is expected.");
            scope = service.Begin(TimeoutOf(request), context.RequestAborted);
        }
        catch (Exception e)
        {
            await Send(context, service.Fail(Translate(e), operation)).ConfigureAwait(false);
            return;
        }

        using (scope)
        {
            Task<Reply>? reply = run(service, request, scope);
            if (reply is null)
            {
                await stream!(context, service, request, scope).ConfigureAwait(false);
                return;
            }

            await Send(context, await reply.ConfigureAwait(false), scope).ConfigureAwait(false);
        }
    }

    private static int? TimeoutOf<T>(T request) => request switch
    {
        QueryRequest q => q.TimeoutMs,
        ConsultRequest c => c.TimeoutMs,
        ClauseRequest c => c.TimeoutMs,
        _ => null,
    };

    /// <summary>
    /// Whether the request carries the service's bearer token (reads pass without one under
    /// <see cref="ServerOptions.AnonymousReads"/>); if not, answers 401 with <c>WWW-Authenticate: Bearer</c>.
    /// </summary>
    private static async Task<bool> Authorized(HttpContext context, PrologService service, string operation, bool read)
    {
        if ((read && service.Options.AnonymousReads) || service.Token.Matches(context.Request.Headers.Authorization))
        {
            return true;
        }

        context.Response.Headers.WWWAuthenticate = "Bearer";
        bool sent = context.Request.Headers.Authorization.Count > 0;
        await Send(context, service.Fail(new ServiceException(401, "unauthorized", sent
            ? "The bearer token is not this service's."
            : $"/{operation} needs Authorization: Bearer <token> (the service prints where its token is kept when it starts)."),
            operation)).ConfigureAwait(false);
        return false;
    }

    /// <summary>Runs <paramref name="next"/> for a caller allowed to read (the token, or anonymous reads); else 401.</summary>
    public static async Task AuthorizeReadAsync(HttpContext context, PrologService service, string what, RequestDelegate next)
    {
        if (await Authorized(context, service, what, read: true).ConfigureAwait(false))
        {
            await next(context).ConfigureAwait(false);
        }
    }

    private static bool IsJson(string? contentType) =>
        contentType is not null && MediaTypeHeaderValue.TryParse(contentType, out MediaTypeHeaderValue? media) &&
        media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase) &&
        (!media.Charset.HasValue || media.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase));

    private static async Task SnapshotAsync(HttpContext context, PrologService service)
    {
        if (!await Authorized(context, service, "snapshot", read: false).ConfigureAwait(false))
        {
            return;
        }

        if (context.Request.ContentLength > 0 || context.Request.Headers.TransferEncoding.Count > 0)
        {
            await Send(context, service.Fail(new ServiceException(400, "bad_request",
                "POST /snapshot takes no body: the service saves to the path it was started with (--snapshot)."), "snapshot")).ConfigureAwait(false);
            return;
        }

        using RequestScope scope = service.BeginSnapshot(context.RequestAborted);
        await Send(context, await service.SnapshotAsync(scope).ConfigureAwait(false), scope).ConfigureAwait(false);
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
    /// NDJSON: one <c>{"answer":{…}}</c> line per answer as the guest finds it, each flushed, then one final line —
    /// <c>{"result":"success"|"failure","count":n,"limitReached":b}</c> (with <c>"truncated":true</c> when the reply budget
    /// stopped it), or <c>{"result":"error","error":term}</c>, or, after a deadline or failure mid-stream, the error object.
    /// The next answer is computed only after the previous one was flushed, so a client that reads slowly holds its
    /// replica — but never past the request's deadline: a flush still waiting then is cancelled, the replica is released
    /// and reset, and the connection is cut (the client can tell: no final line). A request refused before its first line
    /// gets an ordinary JSON error reply.
    /// </summary>
    private static async Task StreamAsync(HttpContext context, PrologService service, QueryRequest request, RequestScope scope)
    {
        (string Goal, int Limit) query;
        try
        {
            query = service.CheckStream(request);
        }
        catch (Exception e)
        {
            await Send(context, service.Fail(e, "query")).ConfigureAwait(false);
            return;
        }

        PipeWriter body = context.Response.BodyWriter;
        var json = new Utf8JsonWriter(body);
        PrologAnswer? last = null;
        bool started = false;
        try
        {
            (int count, bool truncated) = await service.RunQueryAsync(query.Goal, query.Limit, scope, async answer =>
            {
                last = answer;
                if (answer.Kind != PrologAnswerKind.Success)
                {
                    return; // the error goes in the final line
                }

                if (!started)
                {
                    started = true;
                    context.Response.StatusCode = 200;
                    context.Response.ContentType = "application/x-ndjson";
                }

                json.Reset(body);
                json.WriteStartObject();
                json.WritePropertyName("answer");
                TermJson.WriteBindings(json, answer);
                json.WriteEndObject();
                await json.FlushAsync(scope.Token).ConfigureAwait(false);
                body.Write("\n"u8);
                FlushResult flushed = await body.FlushAsync(scope.Token).ConfigureAwait(false);
                if (flushed.IsCanceled || flushed.IsCompleted)
                {
                    throw new OperationCanceledException("The client stopped reading.");
                }
            }).ConfigureAwait(false);

            if (!started)
            {
                context.Response.StatusCode = 200;
                context.Response.ContentType = "application/x-ndjson";
            }

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
                if (truncated)
                {
                    json.WriteBoolean("truncated", true);
                }
            }

            json.WriteEndObject();
            await json.FlushAsync(scope.Token).ConfigureAwait(false);
            body.Write("\n"u8);
            await body.FlushAsync(scope.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Reply reply = service.Fail(e, "query"); // logged either way
            if (scope.Aborted.IsCancellationRequested)
            {
                return; // the client went away, or Kestrel aborted the request when the deadline cancelled a flush
            }

            if (!started)
            {
                await Send(context, reply, scope).ConfigureAwait(false); // nothing sent yet: an ordinary reply
                return;
            }

            // Mid-stream: the status is sent; the failure is the last line. After the deadline (the backend is already
            // free) it gets a second to reach a client that is reading; one that is not loses its connection.
            body.Write(reply.Body.Span);
            body.Write("\n"u8);
            using var grace = CancellationTokenSource.CreateLinkedTokenSource(scope.Aborted);
            grace.CancelAfter(TimeSpan.FromSeconds(1));
            try
            {
                await body.FlushAsync(grace.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                context.Abort();
            }
        }
        finally
        {
            await json.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static async Task Send(HttpContext context, Reply reply, RequestScope? scope = null)
    {
        context.Response.StatusCode = reply.Status;
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = reply.Body.Length;
        if (reply.RetryAfterSeconds > 0)
        {
            context.Response.Headers.RetryAfter = reply.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        try
        {
            // The reply is written within the request's deadline, or a second (the backend is already free): a client
            // that does not read it by then loses its connection.
            CancellationToken window = RequestScope.ReplyWindow(scope, context.RequestAborted, out CancellationTokenSource? owned);
            using (owned)
            {
                await context.Response.Body.WriteAsync(reply.Body, window).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            context.Abort();
        }
    }
}

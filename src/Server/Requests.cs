using System.Text.Json;
using System.Text.Json.Serialization;

namespace CowWasm.Server;

/// <summary><c>POST /query</c>: up to <see cref="Limit"/> answers of <see cref="Goal"/> within <see cref="TimeoutMs"/>.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record QueryRequest
{
    /// <summary>The goal, e.g. <c>member(X, [1,2])</c> (a final full stop is optional).</summary>
    public required string Goal { get; init; }

    /// <summary>At most this many answers (default 10; up to the server's limit).</summary>
    public int? Limit { get; init; }

    /// <summary>The deadline in milliseconds (default: the server's).</summary>
    public int? TimeoutMs { get; init; }

    /// <summary>Answer as NDJSON, one line per answer, written as they are found.</summary>
    public bool? Stream { get; init; }
}

/// <summary><c>POST /consult</c>: loads program text into a module, as one write.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record ConsultRequest
{
    /// <summary>Program text (clauses and directives).</summary>
    public required string Text { get; init; }

    /// <summary>The module (default <c>user</c>).</summary>
    public string? Module { get; init; }

    /// <summary>The deadline in milliseconds.</summary>
    public int? TimeoutMs { get; init; }
}

/// <summary><c>POST /assert</c> and <c>POST /retract</c>: one clause, as one write.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record ClauseRequest
{
    /// <summary>The clause, e.g. <c>fact(1)</c> or <c>h(X) :- b(X)</c>: parsed as one term, never run as a goal.</summary>
    public required string Clause { get; init; }

    /// <summary>The deadline in milliseconds.</summary>
    public int? TimeoutMs { get; init; }
}

/// <summary>
/// One line of the TCP protocol: <see cref="Op"/> names the operation (<c>auth</c>, <c>query</c>, <c>consult</c>,
/// <c>assert</c>, <c>retract</c>, <c>snapshot</c>, <c>health</c>) and the other members are the HTTP request's. The reply line carries
/// the same <see cref="Id"/>.
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record LineRequest
{
    /// <summary>The client's tag for the reply (any JSON value).</summary>
    public JsonElement? Id { get; init; }

    /// <summary>The operation.</summary>
    public required string Op { get; init; }

    /// <summary>For <c>query</c>.</summary>
    public string? Goal { get; init; }

    /// <summary>For <c>query</c>.</summary>
    public int? Limit { get; init; }

    /// <summary>For every operation but <c>health</c>.</summary>
    public int? TimeoutMs { get; init; }

    /// <summary>For <c>consult</c>.</summary>
    public string? Text { get; init; }

    /// <summary>For <c>consult</c>.</summary>
    public string? Module { get; init; }

    /// <summary>For <c>assert</c> and <c>retract</c>.</summary>
    public string? Clause { get; init; }

    /// <summary>For <c>auth</c>: the service's bearer token.</summary>
    public string? Token { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(QueryRequest))]
[JsonSerializable(typeof(ConsultRequest))]
[JsonSerializable(typeof(ClauseRequest))]
[JsonSerializable(typeof(LineRequest))]
internal sealed partial class RequestJson : JsonSerializerContext;

using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.FileProviders;

namespace CowWasm.Server;

/// <summary>
/// The browser console at <c>/</c>: <c>Console/index.html</c>, <c>console.js</c> and <c>console.css</c>, embedded in this
/// assembly and served by ASP.NET Core's static-file middleware. They need no token (they hold no data); the page asks for
/// the token and sends it with each request. The headers keep other pages from framing it or injecting script.
/// </summary>
internal static class ConsoleFiles
{
    private const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

    public static void Use(WebApplication app)
    {
        var files = new EmbeddedFileProvider(typeof(ConsoleFiles).Assembly, "CowWasm.Server.Console");
        app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
        app.UseStaticFiles(new StaticFileOptions
        {
            FileProvider = files,
            OnPrepareResponse = context =>
            {
                IHeaderDictionary headers = context.Context.Response.Headers;
                headers.ContentSecurityPolicy = ContentSecurityPolicy;
                headers.XContentTypeOptions = "nosniff";
                headers["Referrer-Policy"] = "no-referrer";
                headers.CacheControl = "no-cache"; // a new build's console is picked up at once
            },
        });
    }
}

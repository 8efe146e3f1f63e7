using System.Formats.Tar;
using System.IO.Compression;
using System.Numerics;
using System.Text;
using CowWasm.Prolog;

namespace CowWasm.Tests.Prolog;

/// <summary>The answer parser, quoting and package extraction: no guest needed.</summary>
public sealed class PrologAnswerTests
{
    [Fact]
    public void Parse_EveryTermEncoding_BecomesTypedTerms()
    {
        PrologAnswer answer = PrologAnswer.Parse(
            """{"status":"success","answer":{"I":-7,"B":{"number":"-1267650600228229401496703205376"},"F":2.5,"E":1e300,""" +
            """ "A":{"functor":"héllo"},"S":"ü\n","L":[1,[]],"C":{"functor":"f","args":[{"functor":"a"},{"var":"_G1","attr":[]}]}}}""");
        Assert.Equal(PrologAnswerKind.Success, answer.Kind);
        Assert.Equal(new PrologInteger(-7), answer["I"]);
        Assert.Equal(new PrologInteger(-BigInteger.Pow(2, 100)), answer["B"]);
        Assert.Equal(new PrologFloat(2.5), answer["F"]);
        Assert.Equal(new PrologFloat(1e300), answer["E"]);
        Assert.Equal(PrologTerm.Atom("héllo"), answer["A"]);
        Assert.Equal(new PrologString("ü\n"), answer["S"]);
        Assert.Equal(PrologTerm.List(PrologTerm.Integer(1), PrologTerm.List()), answer["L"]);
        Assert.Equal(PrologTerm.Compound("f", PrologTerm.Atom("a"), new PrologVariable("_G1")), answer["C"]);
        Assert.Equal("f(a,_G1)", answer["C"].ToString());
    }

    [Fact]
    public void Parse_FailureAndError()
    {
        Assert.Equal(PrologAnswerKind.Failure, PrologAnswer.Parse("""{"status":"failure"}""").Kind);
        PrologAnswer error = PrologAnswer.Parse("""{"status":"error","error":{"functor":"error","args":[{"functor":"instantiation_error"},{"functor":"atom"}]}}""");
        Assert.Equal(PrologTerm.Compound("error", PrologTerm.Atom("instantiation_error"), PrologTerm.Atom("atom")), error.Error);
        var thrown = Assert.Throws<PrologException>(() => error.ThrowIfError());
        Assert.Equal(error.Error, thrown.Error);
    }

    [Theory]
    [InlineData("")]
    [InlineData("not json")]
    [InlineData("""{"status":"maybe"}""")]
    [InlineData("""{"answer":{}}""")]
    [InlineData("""{"status":"success","answer":{"X":{"weird":1}}}""")]
    [InlineData("""{"status":"error"}""")]
    public void Parse_Malformed_IsAFormatExceptionQuotingTheText(string json)
    {
        var e = Assert.Throws<FormatException>(() => PrologAnswer.Parse(json));
        Assert.Contains("Not a Trealla answer", e.Message);
    }

    [Theory]
    [InlineData("plain", "plain")]
    [InlineData("a\"b", "a\\\"b")]
    [InlineData("back\\slash", "back\\\\slash")]
    [InlineData("line\nbreak\ttab\r", "line\\nbreak\\ttab\\r")]
    [InlineData("bell\u0001", "bell\\x1\\")]
    [InlineData("ünï😀", "ünï😀")]
    [InlineData("it's", "it's")]
    public void EscapeDoubleQuoted_EscapesQuotesBackslashesAndControls(string text, string expected) =>
        Assert.Equal(expected, PrologSyntax.EscapeDoubleQuoted(text));

    [Theory]
    [InlineData("abc", "abc")]
    [InlineData("Abc", "'Abc'")]
    [InlineData("it's", "'it\\'s'")]
    [InlineData("hello world", "'hello world'")]
    [InlineData("[]", "[]")]
    [InlineData("", "''")]
    public void QuoteAtom_BareOnlyForPlainIdentifiers(string name, string expected) =>
        Assert.Equal(expected, PrologSyntax.QuoteAtom(name));

    [Fact]
    public void ExtractWasm_PicksTheLiteralWithThePinnedHash_AndRejectsOthers()
    {
        byte[] decoy = [0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0];
        byte[] package = Tarball(("package/trealla.js", $"var a=\"{Convert.ToBase64String(decoy)}\";"));
        var e = Assert.Throws<GuestPackageException>(() => TreallaPackage.ExtractWasm(new MemoryStream(package)));
        Assert.Contains("pinned SHA-256", e.Message);
        Assert.Contains("8 B with SHA-256", e.Message);
    }

    [Fact]
    public void ExtractWasm_NoScript_NoLiteral_NotATarball_AreClearErrors()
    {
        Assert.Contains("no package/trealla.js", Assert.Throws<GuestPackageException>(
            () => TreallaPackage.ExtractWasm(new MemoryStream(Tarball(("package/other.js", "x"))))).Message);
        Assert.Contains("no base64 wasm literal", Assert.Throws<GuestPackageException>(
            () => TreallaPackage.ExtractWasm(new MemoryStream(Tarball(("package/trealla.js", "nothing here"))))).Message);
        Assert.Contains("not a readable .tgz", Assert.Throws<GuestPackageException>(
            () => TreallaPackage.ExtractWasm(new MemoryStream(Encoding.ASCII.GetBytes("plain text, not gzip")))).Message);
    }

    [Fact]
    public void Verify_HashMismatch_NamesBothHashes()
    {
        var e = Assert.Throws<GuestPackageException>(() => TreallaPackage.Verify([1, 2, 3]));
        Assert.Contains(TreallaPackage.WasmSha256, e.Message);
        Assert.Contains("039058c6f2c0cb492c533b0a4d14ef77cc0f78abccced5287d84a1a2011cfb81", e.Message); // sha256 of 01 02 03
    }

    private static byte[] Tarball(params (string Name, string Text)[] files)
    {
        var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        using (var tar = new TarWriter(gzip))
        {
            foreach ((string name, string text) in files)
            {
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(text)) });
            }
        }

        return output.ToArray();
    }
}

using System.Buffers.Binary;
using System.Xml.Linq;
using CowWasm.Bench.Reporting;

namespace CowWasm.Bench.Tests;

/// <summary>The results plots (ScottPlot): both files written, readable, titled, every series in the legend, inside the image.</summary>
public sealed class ChartTests : IDisposable
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";
    private readonly string _dir = Directory.CreateTempSubdirectory("cowwasm-charts-").FullName;

    public void Dispose()
    {
        if (Environment.GetEnvironmentVariable("COWWASM_KEEP_CHARTS") is { Length: > 0 } keep)
        {
            foreach (string file in Directory.GetFiles(_dir))
            {
                File.Copy(file, Path.Combine(keep, Path.GetFileName(file)), overwrite: true);
            }
        }

        Directory.Delete(_dir, recursive: true);
    }

    private static (int Width, int Height) PngSize(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        Assert.True(bytes.AsSpan(0, 8).SequenceEqual(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }), "not a PNG");
        Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(bytes, 12, 4));
        return (BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
    }

    /// <summary>The SVG's text, and every text element's position (none may sit outside the image).</summary>
    private static string[] SvgTexts(string path)
    {
        XDocument svg = XDocument.Load(path);
        Assert.Equal(Svg + "svg", svg.Root!.Name);
        XElement[] texts = [.. svg.Descendants(Svg + "text")];
        foreach (XElement text in texts)
        {
            if (double.TryParse((string?)text.Attribute("x"), System.Globalization.CultureInfo.InvariantCulture, out double x))
            {
                Assert.InRange(x, 0, Chart.Width);
            }

            if (double.TryParse((string?)text.Attribute("y"), System.Globalization.CultureInfo.InvariantCulture, out double y))
            {
                Assert.InRange(y, 0, Chart.Height);
            }
        }

        return [.. texts.Select(t => t.Value.Trim())];
    }

    [Fact]
    public void ALineChart_IsWrittenAsPngAndSvg_WithTitleLabelsAndEverySeriesInTheLegend()
    {
        var chart = new LineChart { Title = "commit <latency> & co", XLabel = "replicas", YLabel = "µs", LogX = true, LogY = true };
        chart.Series.Add(new ChartSeries("FullCopy", [(1, 1000), (4, 4000), (16, 16000), (64, double.NaN)]));
        chart.Series.Add(new ChartSeries("SharedBase with a long legend name", [(1, 10), (4, 11), (16, 12), (64, 13)]));
        (string png, string svg) = chart.Save(_dir, "lines");

        Assert.Equal((Chart.Width, Chart.Height), PngSize(png));
        string[] texts = SvgTexts(svg);
        Assert.Contains("commit <latency> & co", texts);
        Assert.Contains("replicas", texts);
        Assert.Contains("FullCopy", texts);
        Assert.Contains("SharedBase with a long legend name", texts);
        Assert.Contains("1k", texts); // log ticks at powers of ten
        Assert.Equal([3, 4], chart.FinitePoints().Select(s => s.Points.Length)); // the skipped (NaN) point is left out, not drawn at zero
    }

    [Fact]
    public void ABarChart_WritesEachBarsLabelAndValue_AndTheReferenceLine()
    {
        var chart = new BarChart { Title = "seed ratio", XLabel = "configuration", YLabel = "locked ÷ pool", Reference = (1.0, "one locked interpreter") };
        chart.Bars.Add(new ChartBar("CowFile, keep", 1.39));
        chart.Bars.Add(new ChartBar("uffd, keep", 0.36));
        chart.Bars.Add(new ChartBar("default: barrier all, keep all, content", 1.82));
        chart.Bars.Add(new ChartBar("DirtyCopy, barrier, content", 1.72));
        (string png, string svg) = chart.Save(_dir, "bars");

        Assert.Equal((Chart.Width, Chart.Height), PngSize(png));
        string[] texts = SvgTexts(svg);
        Assert.Contains("CowFile, keep", texts);
        Assert.Contains("1.39", texts);
        Assert.Contains("0.36", texts);
        Assert.Contains("one locked interpreter", texts);
    }

    [Fact]
    public void NothingToDraw_OrAValueALogAxisCannotShow_IsAClearError_AndWritesNoFile()
    {
        var empty = new LineChart { Title = "empty", XLabel = "x", YLabel = "y" };
        empty.Series.Add(new ChartSeries("s", [(1, double.NaN)]));
        Assert.Contains("no finite points", Assert.Throws<InvalidOperationException>(() => empty.Save(_dir, "empty")).Message);

        var log = new LineChart { Title = "log", XLabel = "x", YLabel = "y", LogY = true };
        log.Series.Add(new ChartSeries("s", [(1, 0), (2, 3)]));
        Assert.Contains("logarithmic", Assert.Throws<InvalidOperationException>(() => log.Save(_dir, "log")).Message);

        var bars = new BarChart { Title = "none", XLabel = "x", YLabel = "y" };
        Assert.Contains("at least one bar", Assert.Throws<InvalidOperationException>(() => bars.Save(_dir, "none")).Message);
        Assert.Empty(Directory.GetFiles(_dir));
    }
}

using System.Globalization;
using System.Xml.Linq;
using CowWasm.Bench.Reporting;

namespace CowWasm.Bench.Tests;

public sealed class SvgChartTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    [Fact]
    public void Render_IsWellFormedSvg_WithOnePolylinePerSeries_InsideThePlotArea()
    {
        var chart = new SvgChart { Title = "commit <latency> & co", XLabel = "replicas", YLabel = "µs", LogX = true, LogY = true };
        chart.Series.Add(new ChartSeries("FullCopy", [(1, 1000), (4, 4000), (16, 16000), (64, double.NaN)]));
        chart.Series.Add(new ChartSeries("SharedBase", [(1, 10), (4, 11), (16, 12), (64, 13)]));
        XDocument svg = XDocument.Parse(chart.Render());

        Assert.Equal(Svg + "svg", svg.Root!.Name);
        Assert.Contains(svg.Descendants(Svg + "text"), t => t.Value == "commit <latency> & co");
        XElement[] lines = svg.Descendants(Svg + "polyline").ToArray();
        Assert.Equal(["FullCopy", "SharedBase"], lines.Select(l => (string)l.Attribute("data-series")!));
        (double X, double Y)[] full = Points(lines[0]);
        Assert.Equal(3, full.Length); // the skipped (NaN) point is left out, not drawn at zero
        Assert.Equal(4, Points(lines[1]).Length);
        Assert.All(lines.SelectMany(Points), p =>
        {
            Assert.InRange(p.X, 80, 720 - 190);
            Assert.InRange(p.Y, 40, 420 - 60);
        });
        Assert.True(full[0].Y > full[1].Y && full[1].Y > full[2].Y, "larger values are drawn higher");
        // On a log axis equal ratios are equal distances: 1→4 and 4→16 span the same pixels.
        Assert.Equal(full[1].X - full[0].X, full[2].X - full[1].X, 1);
        Assert.Equal(full[0].Y - full[1].Y, full[1].Y - full[2].Y, 1);
    }

    [Fact]
    public void Render_LinearAxis_StartsAtZero_AndHasTicks()
    {
        var chart = new SvgChart { Title = "t", XLabel = "x", YLabel = "y" };
        chart.Series.Add(new ChartSeries("s", [(0, 5), (10, 50)]));
        XDocument svg = XDocument.Parse(chart.Render());
        string[] labels = svg.Descendants(Svg + "text").Select(t => t.Value).ToArray();
        Assert.Contains("0", labels);
        Assert.Contains("50", labels);
        Assert.Contains("10", labels);
    }

    [Fact]
    public void Render_NothingFinite_OrNonPositiveOnALogAxis_IsAClearError()
    {
        var empty = new SvgChart { Title = "empty", XLabel = "x", YLabel = "y" };
        empty.Series.Add(new ChartSeries("s", [(1, double.NaN)]));
        Assert.Contains("no finite points", Assert.Throws<InvalidOperationException>(() => empty.Render()).Message);

        var log = new SvgChart { Title = "log", XLabel = "x", YLabel = "y", LogY = true };
        log.Series.Add(new ChartSeries("s", [(1, 0), (2, 3)]));
        Assert.Contains("logarithmic", Assert.Throws<InvalidOperationException>(() => log.Render()).Message);
    }

    private static (double X, double Y)[] Points(XElement polyline) =>
        ((string)polyline.Attribute("points")!).Split(' ')
            .Select(p => p.Split(','))
            .Select(p => (double.Parse(p[0], CultureInfo.InvariantCulture), double.Parse(p[1], CultureInfo.InvariantCulture)))
            .ToArray();
}

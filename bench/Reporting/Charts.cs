using System.Globalization;
using ScottPlot;
using ScottPlot.TickGenerators;

namespace CowWasm.Bench.Reporting;

/// <summary>One line of a chart: (x, y) points in x order; y may be missing (NaN) where a combination was skipped.</summary>
public sealed record ChartSeries(string Name, IReadOnlyList<(double X, double Y)> Points);

/// <summary>One bar of a bar chart.</summary>
public sealed record ChartBar(string Label, double Value);

/// <summary>
/// The results plots, drawn by ScottPlot and saved twice: <c>NAME.png</c> (what the Markdown results show) and
/// <c>NAME.svg</c> (scalable). The legend sits outside the plot area, to its right, so it never covers data and is never
/// cut: ScottPlot measures it and shrinks the data area to fit. Text needs a font: run.sh installs Debian's
/// <c>fonts-dejavu-core</c> where none is present.
/// </summary>
public abstract class Chart
{
    /// <summary>The image size in pixels (the SVG uses the same units).</summary>
    public const int Width = 880, Height = 460;

    public required string Title { get; init; }

    public required string XLabel { get; init; }

    public required string YLabel { get; init; }

    /// <summary>Draws the chart and writes <c>NAME.png</c> and <c>NAME.svg</c> into <paramref name="directory"/>.</summary>
    /// <returns>The two paths.</returns>
    /// <exception cref="InvalidOperationException">The chart has nothing finite to draw, or a value a log axis cannot show.</exception>
    public (string Png, string Svg) Save(string directory, string name)
    {
        Plot plot = Draw();
        try
        {
            Directory.CreateDirectory(directory);
            string png = Path.Combine(directory, name + ".png"), svg = Path.Combine(directory, name + ".svg");
            plot.SavePng(png, Width, Height);
            plot.SaveSvg(svg, Width, Height);
            return (png, svg);
        }
        finally
        {
            plot.Dispose();
        }
    }

    /// <summary>The plot, titled and labelled.</summary>
    protected abstract Plot Draw();

    protected Plot NewPlot()
    {
        var plot = new Plot();
        plot.Font.Set("DejaVu Sans"); // Debian's fonts-dejavu-core (ScottPlot falls back to its default where it is missing)
        plot.Title(Title);
        plot.XLabel(XLabel);
        plot.YLabel(YLabel);
        return plot;
    }

    /// <summary>Values 10^k on a log axis: 1, 10, 100, 1k, 10k, 1M.</summary>
    protected static string PowerOfTen(double exponent)
    {
        double value = Math.Pow(10, exponent);
        return value switch
        {
            >= 1e6 => (value / 1e6).ToString("0.##", CultureInfo.InvariantCulture) + "M",
            >= 1e3 => (value / 1e3).ToString("0.##", CultureInfo.InvariantCulture) + "k",
            _ => value.ToString("0.###", CultureInfo.InvariantCulture),
        };
    }

    /// <summary>A log₁₀ axis: data are plotted as their logarithms; ticks at powers of ten, minor ticks between.</summary>
    protected static void UseLogTicks(IAxis axis) => axis.TickGenerator = new NumericAutomatic
    {
        MinorTickGenerator = new LogMinorTickGenerator(),
        IntegerTicksOnly = true,
        LabelFormatter = PowerOfTen,
    };
}

/// <summary>Lines with markers, one per series; linear or log₁₀ axes.</summary>
public sealed class LineChart : Chart
{
    public bool LogX { get; init; }

    public bool LogY { get; init; }

    public List<ChartSeries> Series { get; } = [];

    /// <summary>The series as drawn: non-finite points left out (a skipped combination is not drawn at zero).</summary>
    internal IReadOnlyList<(string Name, (double X, double Y)[] Points)> FinitePoints() =>
        [.. Series.Select(s => (s.Name, Points: s.Points.Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y)).ToArray()))];

    protected override Plot Draw()
    {
        IReadOnlyList<(string Name, (double X, double Y)[] Points)> finite = FinitePoints();
        if (finite.All(s => s.Points.Length == 0))
        {
            throw new InvalidOperationException($"Chart '{Title}' has no finite points to plot.");
        }

        if ((LogX && finite.Any(s => s.Points.Any(p => p.X <= 0))) || (LogY && finite.Any(s => s.Points.Any(p => p.Y <= 0))))
        {
            throw new InvalidOperationException($"Chart '{Title}' has a value <= 0 on a logarithmic axis.");
        }

        Plot plot = NewPlot();
        foreach ((string name, (double X, double Y)[] points) in finite.Where(s => s.Points.Length > 0))
        {
            double[] xs = [.. points.Select(p => LogX ? Math.Log10(p.X) : p.X)];
            double[] ys = [.. points.Select(p => LogY ? Math.Log10(p.Y) : p.Y)];
            ScottPlot.Plottables.Scatter line = plot.Add.Scatter(xs, ys);
            line.LegendText = name;
            line.LineWidth = 2;
            line.MarkerSize = 7;
        }

        if (LogX)
        {
            UseLogTicks(plot.Axes.Bottom);
        }

        if (LogY)
        {
            UseLogTicks(plot.Axes.Left);
        }
        else
        {
            plot.Axes.SetLimitsY(0, finite.SelectMany(s => s.Points).Max(p => p.Y) * 1.08); // a linear value axis starts at zero
        }

        plot.ShowLegend(Edge.Right);
        return plot;
    }
}

/// <summary>Bars with their values written on them, and an optional reference line (a ratio of 1, a target).</summary>
public sealed class BarChart : Chart
{
    public List<ChartBar> Bars { get; } = [];

    /// <summary>A horizontal line drawn across the bars, and its legend text.</summary>
    public (double Value, string Label)? Reference { get; init; }

    /// <summary>How a bar's value is written on it.</summary>
    public string ValueFormat { get; init; } = "0.00";

    protected override Plot Draw()
    {
        if (Bars.Count == 0 || Bars.Any(b => !double.IsFinite(b.Value)))
        {
            throw new InvalidOperationException($"Chart '{Title}' needs at least one bar, and every value finite.");
        }

        Plot plot = NewPlot();
        var bars = Bars.Select((b, i) => new Bar
        {
            Position = i,
            Value = b.Value,
            Label = b.Value.ToString(ValueFormat, CultureInfo.InvariantCulture),
            FillColor = Colors.SteelBlue,
        }).ToList();
        ScottPlot.Plottables.BarPlot plotted = plot.Add.Bars(bars);
        plotted.ValueLabelStyle.FontSize = 13;
        plot.Axes.Bottom.SetTicks([.. Enumerable.Range(0, Bars.Count).Select(i => (double)i)], [.. Bars.Select(b => b.Label)]);
        int longest = Bars.Max(b => b.Label.Length);
        if (longest * 7 > (Width - 300) / Bars.Count)
        {
            // Too long to sit side by side: slanted, with room below the axis for the longest (about 7 px a character at
            // 30°: half its length in height) and the axis label under it.
            plot.Axes.Bottom.TickLabelStyle.Rotation = -30;
            plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleRight;
            plot.Axes.Bottom.MinimumSize = 35 + (longest * 3);
        }

        double top = Math.Max(Bars.Max(b => b.Value), Reference?.Value ?? 0) * 1.15;
        plot.Axes.SetLimitsY(0, top);
        if (Reference is { } reference)
        {
            ScottPlot.Plottables.HorizontalLine line = plot.Add.HorizontalLine(reference.Value);
            line.LegendText = reference.Label;
            line.LinePattern = LinePattern.Dashed;
            line.Color = Colors.Red;
            plot.ShowLegend(Edge.Right);
        }

        return plot;
    }
}

using System.Globalization;
using System.Xml.Linq;

namespace CowWasm.Bench.Reporting;

/// <summary>One line of a chart: (x, y) points in x order; y may be missing (NaN) where a combination was skipped.</summary>
public sealed record ChartSeries(string Name, IReadOnlyList<(double X, double Y)> Points);

/// <summary>
/// A small line-chart writer for the results plots. Hand-rolled because no plotting library is served here
/// (ScottPlot, OxyPlot and SkiaSharp are absent from the feed). Linear or log₁₀ axes, ticks, legend; output is
/// plain SVG 1.1 built with <see cref="System.Xml.Linq"/>, so text is always escaped.
/// </summary>
public sealed class SvgChart
{
    private const double Width = 720, Height = 420, Left = 80, Right = 190, Top = 40, Bottom = 60;
    private static readonly string[] s_palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];
    private static readonly XNamespace s_svg = "http://www.w3.org/2000/svg";

    public required string Title { get; init; }

    public required string XLabel { get; init; }

    public required string YLabel { get; init; }

    public bool LogX { get; init; }

    public bool LogY { get; init; }

    public List<ChartSeries> Series { get; } = [];

    /// <summary>Renders the chart.</summary>
    /// <exception cref="InvalidOperationException">No finite point, or a non-positive value on a log axis.</exception>
    public string Render()
    {
        var points = Series.SelectMany(s => s.Points).Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y)).ToList();
        if (points.Count == 0)
        {
            throw new InvalidOperationException($"Chart '{Title}' has no finite points to plot.");
        }

        if ((LogX && points.Any(p => p.X <= 0)) || (LogY && points.Any(p => p.Y <= 0)))
        {
            throw new InvalidOperationException($"Chart '{Title}' has a value <= 0 on a logarithmic axis.");
        }

        var x = new Axis(points.Min(p => p.X), points.Max(p => p.X), LogX, Left, Width - Right);
        var y = new Axis(points.Min(p => p.Y), points.Max(p => p.Y), LogY, Height - Bottom, Top);
        var root = new XElement(s_svg + "svg",
            new XAttribute("width", Width), new XAttribute("height", Height),
            new XAttribute("viewBox", $"0 0 {Width} {Height}"), new XAttribute("font-family", "sans-serif"), new XAttribute("font-size", 12),
            new XElement(s_svg + "rect", new XAttribute("width", Width), new XAttribute("height", Height), new XAttribute("fill", "white")),
            Text(Width / 2, 22, Title, "middle", 15),
            Text((Left + Width - Right) / 2, Height - 15, XLabel, "middle"),
            new XElement(s_svg + "text", new XAttribute("x", 18), new XAttribute("y", (Top + Height - Bottom) / 2),
                new XAttribute("text-anchor", "middle"), new XAttribute("transform", $"rotate(-90 18 {F((Top + Height - Bottom) / 2)})"), YLabel),
            Line(Left, Height - Bottom, Width - Right, Height - Bottom, "black"),
            Line(Left, Top, Left, Height - Bottom, "black"));
        foreach (double tick in x.Ticks())
        {
            double px = x.Map(tick);
            root.Add(Line(px, Height - Bottom, px, Height - Bottom + 5, "black"), Text(px, Height - Bottom + 18, Label(tick), "middle"));
        }

        foreach (double tick in y.Ticks())
        {
            double py = y.Map(tick);
            root.Add(Line(Left, py, Width - Right, py, "#e0e0e0"), Text(Left - 6, py + 4, Label(tick), "end"));
        }

        for (int i = 0; i < Series.Count; i++)
        {
            string color = s_palette[i % s_palette.Length];
            var finite = Series[i].Points.Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y)).OrderBy(p => p.X).ToList();
            if (finite.Count > 1)
            {
                root.Add(new XElement(s_svg + "polyline", new XAttribute("fill", "none"), new XAttribute("stroke", color),
                    new XAttribute("stroke-width", 2), new XAttribute("data-series", Series[i].Name),
                    new XAttribute("points", string.Join(" ", finite.Select(p => $"{F(x.Map(p.X))},{F(y.Map(p.Y))}")))));
            }

            foreach ((double px, double py) in finite)
            {
                root.Add(new XElement(s_svg + "circle", new XAttribute("cx", F(x.Map(px))), new XAttribute("cy", F(y.Map(py))),
                    new XAttribute("r", 3), new XAttribute("fill", color)));
            }

            double ly = Top + 10 + (i * 20);
            root.Add(Line(Width - Right + 15, ly, Width - Right + 40, ly, color, 2), Text(Width - Right + 46, ly + 4, Series[i].Name, "start"));
        }

        return new XDocument(new XDeclaration("1.0", "utf-8", null), root).Declaration + "\n" + root;
    }

    private static XElement Text(double x, double y, string text, string anchor, int size = 12) =>
        new(s_svg + "text", new XAttribute("x", F(x)), new XAttribute("y", F(y)), new XAttribute("text-anchor", anchor),
            new XAttribute("font-size", size), text);

    private static XElement Line(double x1, double y1, double x2, double y2, string color, double width = 1) =>
        new(s_svg + "line", new XAttribute("x1", F(x1)), new XAttribute("y1", F(y1)), new XAttribute("x2", F(x2)),
            new XAttribute("y2", F(y2)), new XAttribute("stroke", color), new XAttribute("stroke-width", width));

    private static string F(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);

    /// <summary>Tick label: 1,234 / 0.5 / 1e+06 style, short.</summary>
    internal static string Label(double v) =>
        Math.Abs(v) >= 1e6 || (Math.Abs(v) < 1e-2 && v != 0)
            ? v.ToString("0.#e+0", CultureInfo.InvariantCulture)
            : v.ToString("#,0.##", CultureInfo.InvariantCulture);

    /// <summary>Maps data values to pixels along one axis.</summary>
    internal readonly struct Axis
    {
        private readonly double _min, _max, _from, _to;
        private readonly bool _log;

        public Axis(double min, double max, bool log, double from, double to)
        {
            _log = log;
            (_min, _max) = log ? (Math.Log10(min), Math.Log10(max)) : (Math.Min(0, min), max);
            if (_max - _min < 1e-12)
            {
                (_min, _max) = (_min - 0.5, _max + 0.5);
            }

            (_from, _to) = (from, to);
        }

        public double Map(double value)
        {
            double v = _log ? Math.Log10(value) : value;
            return _from + ((v - _min) / (_max - _min) * (_to - _from));
        }

        public IEnumerable<double> Ticks()
        {
            if (_log)
            {
                for (int e = (int)Math.Floor(_min); e <= (int)Math.Ceiling(_max); e++)
                {
                    if (e >= _min - 1e-9 && e <= _max + 1e-9)
                    {
                        yield return Math.Pow(10, e);
                    }
                }

                yield break;
            }

            double step = NiceStep((_max - _min) / 5);
            for (double t = Math.Ceiling(_min / step) * step; t <= _max + (step * 1e-9); t += step)
            {
                yield return t;
            }
        }

        private static double NiceStep(double raw)
        {
            double magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw)));
            double fraction = raw / magnitude;
            return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * magnitude;
        }
    }
}

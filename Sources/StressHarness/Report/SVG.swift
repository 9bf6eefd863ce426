import Foundation

/// Inline SVG charts for `pagestorm report`: drawn by the project, no
/// JavaScript, no fonts or files from anywhere (docs/report.md).
public enum SVG {
    /// Text for HTML/SVG content and attribute values (both quote kinds escaped).
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    /// A coordinate with at most 2 decimals (no exponents, no NaN).
    public static func num(_ x: Double) -> String {
        guard x.isFinite else { return "0" }
        let r = (x * 100).rounded() / 100
        if r == r.rounded() && abs(r) < 1e15 { return String(Int64(r)) }
        return String(format: "%.2f", r)
    }

    /// Ten colours that stay apart on white (Tableau 10).
    public static let palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]
}

/// How an axis maps data to the page.
public enum AxisKind: Sendable, Equatable {
    case linear
    /// Base-10 logarithm; values <= 0 are drawn at the axis's low end.
    case log
    /// HdrHistogram's percentile axis: x = log10(1 / (1 - p/100)), so 90, 99,
    /// 99.9 ... sit at equal steps. Values are percentiles (0 <= p < 100).
    case percentile
    /// Evenly spaced categories at 0, 1, 2 ...; labels name them.
    case category([String])
}

/// A data range mapped onto a pixel range, with the axis's ticks.
public struct Scale: Sendable {
    public let kind: AxisKind
    public let lo: Double
    public let hi: Double
    public let from: Double
    public let to: Double
    /// Linear ticks at least this far apart (1 for whole-number data such as worker counts).
    public var minStep = 0.0

    /// `lo...hi` in data units (for `.log` both > 0; for `.percentile` in percent).
    public init(kind: AxisKind, lo: Double, hi: Double, from: Double, to: Double) {
        self.kind = kind
        self.from = from
        self.to = to
        switch kind {
        case .linear:
            let (a, b) = Scale.niceRange(lo, hi)
            self.lo = a; self.hi = b
        case .log:
            let l = max(lo, 1e-12), h = max(hi, l)
            self.lo = pow(10, floor(log10(l)))
            self.hi = max(pow(10, ceil(log10(h))), self.lo * 10)
        case .percentile:
            self.lo = min(max(lo, 0), 50)
            self.hi = 100 * (1 - pow(10, -max(ceil(Scale.t(max(hi, 99))), 2)))
        case .category(let c):
            self.lo = -0.5; self.hi = Double(max(c.count, 1)) - 0.5
        }
    }

    /// log10(1 / (1 - p/100)): the percentile axis's coordinate.
    public static func t(_ p: Double) -> Double { -log10(max(1 - min(p, 99.999_999) / 100, 1e-8)) }

    func u(_ v: Double) -> Double {
        switch kind {
        case .linear, .category: return v
        case .log: return log10(max(v, lo))
        case .percentile: return Scale.t(v)
        }
    }

    /// The pixel of data value `v` (clamped to the axis).
    public func px(_ v: Double) -> Double {
        let a = u(lo), b = u(hi)
        guard b > a else { return from }
        let f = min(max((u(v) - a) / (b - a), 0), 1)
        return from + f * (to - from)
    }

    /// Tick positions (data units) and their labels.
    public func ticks(format: (Double) -> String) -> [(Double, String)] {
        switch kind {
        case .linear:
            let step = max(Scale.niceStep((hi - lo) / 5), minStep)
            var out: [(Double, String)] = []
            var v = lo
            while v <= hi + step * 1e-9 { out.append((v, format(v))); v += step }
            return out
        case .log:
            var out: [(Double, String)] = []
            var e = log10(lo).rounded()
            while e <= log10(hi).rounded() { out.append((pow(10, e), format(pow(10, e)))); e += 1 }
            return out
        case .percentile:
            var out: [(Double, String)] = [(lo, Scale.percentLabel(lo))]
            var k = 1.0
            while true {
                let p = 100 * (1 - pow(10, -k))
                if p > hi + 1e-9 { break }
                if p > lo { out.append((p, Scale.percentLabel(p))) }
                k += 1
            }
            return out
        case .category(let c):
            return c.enumerated().map { (Double($0.offset), $0.element) }
        }
    }

    static func percentLabel(_ p: Double) -> String {
        var s = String(format: "%.6f", p)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s + "%"
    }

    /// 1, 2 or 5 times a power of ten, at least `x`.
    public static func niceStep(_ x: Double) -> Double {
        guard x > 0, x.isFinite else { return 1 }
        let p = pow(10, floor(log10(x)))
        for m in [1.0, 2, 5, 10] where m * p >= x * 0.999_999 { return m * p }
        return 10 * p
    }

    /// The range widened to whole steps (an empty range gets some room).
    public static func niceRange(_ lo: Double, _ hi: Double) -> (Double, Double) {
        var a = lo.isFinite ? lo : 0, b = hi.isFinite ? hi : 1
        if b < a { swap(&a, &b) }
        if a == b { if a == 0 { b = 1 } else { a = min(0, a); b = b > 0 ? b * 1.2 : 0 } }
        let step = niceStep((b - a) / 5)
        return (floor(a / step) * step, ceil(b / step) * step)
    }
}

/// A line chart (also markers and vertical rules): the report's one chart shape.
public struct Chart: Sendable {
    public enum Style: Sendable, Equatable {
        case line
        /// Dots only, no line.
        case markers
        /// A vertical line across the plot at each point's x (events).
        case rules
        /// A dashed line (references such as watermarks).
        case dashed
    }

    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]
        /// A band (min-max over repetitions): per x, the low and high y.
        public var band: [(x: Double, lo: Double, hi: Double)] = []
        public var style: Style = .line
        public var color: String? = nil

        public init(name: String, points: [(x: Double, y: Double)], band: [(x: Double, lo: Double, hi: Double)] = [], style: Style = .line, color: String? = nil) {
            self.name = name
            self.points = points
            self.band = band
            self.style = style
            self.color = color
        }
    }

    public var id: String
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var xKind: AxisKind = .linear
    public var yKind: AxisKind = .linear
    /// A fixed x range (charts that share a time axis); nil: the data's.
    public var xRange: (Double, Double)? = nil
    /// Start the y axis at 0 (linear only).
    public var yFromZero = true
    public var xFormat: @Sendable (Double) -> String = Chart.plain
    public var yFormat: @Sendable (Double) -> String = Chart.plain
    public var series: [Series]

    public init(id: String, title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.id = id
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
    }

    public static let plain: @Sendable (Double) -> String = { v in
        let a = abs(v)
        if a >= 1e9 { return SVG.num(v / 1e9) + "G" }
        if a >= 1e6 { return SVG.num(v / 1e6) + "M" }
        if a >= 1e4 { return SVG.num(v / 1e3) + "k" }
        return SVG.num(v)
    }

    /// Nanoseconds as 100 ns, 1 µs, 10 ms, 1 s.
    public static let ns: @Sendable (Double) -> String = { v in
        if v >= 1e9 { return SVG.num(v / 1e9) + " s" }
        if v >= 1e6 { return SVG.num(v / 1e6) + " ms" }
        if v >= 1e3 { return SVG.num(v / 1e3) + " µs" }
        return SVG.num(v) + " ns"
    }

    static let width = 960.0, plotLeft = 84.0, plotRight = 700.0, plotTop = 44.0, legendX = 716.0

    /// The chart as an `<svg>` element. Each series is a `<g class="series"
    /// data-series="NAME">` holding its marks, so a test (or a browser check)
    /// can find every series by name.
    public func svg() -> String {
        let drawn = series.filter { !$0.points.isEmpty || !$0.band.isEmpty }
        let legendRows = Double(series.count)
        let height = max(360.0, Chart.plotTop + 24 + legendRows * 18 + 20)
        let plotBottom = height - 64
        let xs = series.flatMap { $0.points.map(\.x) + $0.band.map(\.x) }
        let ys = series.filter { $0.style != .rules }.flatMap { $0.points.map(\.y) + $0.band.flatMap { [$0.lo, $0.hi] } }
        let finiteYs = ys.filter(\.isFinite)
        var (xlo, xhi) = xRange ?? (xs.min() ?? 0, xs.max() ?? 1)
        if case .log = xKind { xlo = xs.filter { $0 > 0 }.min() ?? 1 }
        var ylo = finiteYs.min() ?? 0, yhi = finiteYs.max() ?? 1
        if case .linear = yKind, yFromZero { ylo = min(0, ylo); if yhi <= ylo { yhi = ylo + 1 } }
        if case .log = yKind { ylo = finiteYs.filter { $0 > 0 }.min() ?? 1; yhi = max(yhi, ylo) }
        var x = Scale(kind: xKind, lo: xlo, hi: xhi, from: Chart.plotLeft, to: Chart.plotRight)
        if !xs.isEmpty && xs.allSatisfy({ $0 == $0.rounded() }) { x.minStep = 1 }
        let y = Scale(kind: yKind, lo: ylo, hi: yhi, from: plotBottom, to: Chart.plotTop)
        let n = SVG.num
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" data-chart=\"\(SVG.escape(id))\" width=\"\(n(Chart.width))\" height=\"\(n(height))\" viewBox=\"0 0 \(n(Chart.width)) \(n(height))\" role=\"img\" aria-label=\"\(SVG.escape(title))\">\n"
        s += "<title>\(SVG.escape(title))</title>\n"
        s += "<rect x=\"0\" y=\"0\" width=\"\(n(Chart.width))\" height=\"\(n(height))\" fill=\"#ffffff\"/>\n"
        s += "<text class=\"chart-title\" x=\"\(n(Chart.plotLeft))\" y=\"22\" font-size=\"15\" font-weight=\"bold\">\(SVG.escape(title))</text>\n"
        // Grid and ticks.
        s += "<g class=\"axis x-axis\" font-size=\"11\" text-anchor=\"middle\">\n"
        for (v, label) in x.ticks(format: xFormat) {
            let p = x.px(v)
            s += "<line x1=\"\(n(p))\" y1=\"\(n(Chart.plotTop))\" x2=\"\(n(p))\" y2=\"\(n(plotBottom))\" stroke=\"#e4e4e4\"/>"
            s += "<text x=\"\(n(p))\" y=\"\(n(plotBottom + 16))\">\(SVG.escape(label))</text>\n"
        }
        s += "<text class=\"axis-label\" x=\"\(n((Chart.plotLeft + Chart.plotRight) / 2))\" y=\"\(n(plotBottom + 40))\" font-size=\"12\">\(SVG.escape(xLabel))</text>\n</g>\n"
        s += "<g class=\"axis y-axis\" font-size=\"11\" text-anchor=\"end\">\n"
        for (v, label) in y.ticks(format: yFormat) {
            let p = y.px(v)
            s += "<line x1=\"\(n(Chart.plotLeft))\" y1=\"\(n(p))\" x2=\"\(n(Chart.plotRight))\" y2=\"\(n(p))\" stroke=\"#e4e4e4\"/>"
            s += "<text x=\"\(n(Chart.plotLeft - 6))\" y=\"\(n(p + 4))\">\(SVG.escape(label))</text>\n"
        }
        let midY = (Chart.plotTop + plotBottom) / 2
        s += "<text class=\"axis-label\" transform=\"translate(16,\(n(midY))) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">\(SVG.escape(yLabel))</text>\n</g>\n"
        s += "<rect x=\"\(n(Chart.plotLeft))\" y=\"\(n(Chart.plotTop))\" width=\"\(n(Chart.plotRight - Chart.plotLeft))\" height=\"\(n(plotBottom - Chart.plotTop))\" fill=\"none\" stroke=\"#888\"/>\n"
        // Series.
        for (i, se) in series.enumerated() {
            let color = se.color ?? SVG.palette[i % SVG.palette.count]
            s += "<g class=\"series\" data-series=\"\(SVG.escape(se.name))\" data-points=\"\(se.points.count)\">"
            if !se.band.isEmpty {
                var outline: [String] = se.band.map { "\(n(x.px($0.x))),\(n(y.px($0.hi)))" }
                outline.append(contentsOf: se.band.reversed().map { "\(n(x.px($0.x))),\(n(y.px($0.lo)))" })
                s += "<polygon class=\"band\" points=\"\(outline.joined(separator: " "))\" fill=\"\(color)\" fill-opacity=\"0.18\" stroke=\"none\"/>"
            }
            switch se.style {
            case .line, .dashed:
                if se.points.count > 1 {
                    let pts = se.points.map { "\(n(x.px($0.x))),\(n(y.px($0.y)))" }.joined(separator: " ")
                    s += "<polyline points=\"\(pts)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(se.style == .dashed ? " stroke-dasharray=\"6 4\"" : "")/>"
                }
                if se.points.count <= 40 && se.style == .line {
                    for p in se.points { s += "<circle cx=\"\(n(x.px(p.x)))\" cy=\"\(n(y.px(p.y)))\" r=\"3\" fill=\"\(color)\"/>" }
                }
            case .markers:
                for p in se.points { s += "<circle cx=\"\(n(x.px(p.x)))\" cy=\"\(n(y.px(p.y)))\" r=\"4\" fill=\"\(color)\" fill-opacity=\"0.8\"/>" }
            case .rules:
                for p in se.points {
                    s += "<line x1=\"\(n(x.px(p.x)))\" y1=\"\(n(Chart.plotTop))\" x2=\"\(n(x.px(p.x)))\" y2=\"\(n(plotBottom))\" stroke=\"\(color)\" stroke-width=\"1.5\"/>"
                }
            }
            s += "</g>\n"
        }
        // Legend.
        s += "<g class=\"legend\" font-size=\"12\">\n"
        for (i, se) in series.enumerated() {
            let color = se.color ?? SVG.palette[i % SVG.palette.count]
            let ly = Chart.plotTop + 8 + Double(i) * 18
            let dash = se.style == .dashed ? " stroke-dasharray=\"6 4\"" : ""
            s += "<line x1=\"\(n(Chart.legendX))\" y1=\"\(n(ly))\" x2=\"\(n(Chart.legendX + 22))\" y2=\"\(n(ly))\" stroke=\"\(color)\" stroke-width=\"\(se.style == .markers ? 6 : 2)\"\(dash)/>"
            let empty = drawn.contains { $0.name == se.name } ? "" : " (none)"
            s += "<text x=\"\(n(Chart.legendX + 28))\" y=\"\(n(ly + 4))\">\(SVG.escape(Chart.clip(se.name, 30) + empty))</text>\n"
        }
        s += "</g>\n</svg>"
        return s
    }

    static func clip(_ s: String, _ n: Int) -> String { s.count <= n ? s : String(s.prefix(n - 1)) + "…" }
}

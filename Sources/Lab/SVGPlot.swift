import Foundation
import Models

/// A line plot as inline SVG: one line per series, an optional band (minimum to maximum across
/// seeds) behind each, an optional dashed vertical marker (the training length), a legend, and
/// a log₂ or linear x axis. Self-contained: no script, no external style.
public struct SVGPlot {
    public struct Series {
        public var name: String
        public var color: String
        /// (x, y, low, high): the line through y, the band from low to high.
        public var points: [(x: Double, y: Double, low: Double, high: Double)]
        public init(name: String, color: String, points: [(x: Double, y: Double, low: Double, high: Double)]) {
            self.name = name; self.color = color; self.points = points
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    public var logX = false
    public var yRange: ClosedRange<Double>?
    public var marker: (x: Double, label: String)?
    public var width = 520.0, height = 300.0

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.series = series
    }

    /// The palette: colour-blind-safe (Okabe and Ito 2008), black and grey before their yellow,
    /// which is too faint for a line on white.
    public static let palette = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#999999", "#7F3C8D", "#F0E442"]

    public func render() -> String {
        // The legend's margin fits the longest name (about 6 px a character at 11 px), widening the figure.
        let longest = Double(series.map(\.name.count).max() ?? 0)
        let right = max(104, min(420, 30 + 6 * longest))
        let width = self.width + right - 104
        let left = 58.0, top = 30.0, bottom = 44.0
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        let finite = series.flatMap(\.points).filter { $0.y.isFinite }
        let xs = finite.map { logX ? log2($0.x) : $0.x }
        var x0 = xs.min() ?? 0, x1 = xs.max() ?? 1
        if x0 == x1 { x0 -= 1; x1 += 1 }
        let lows = finite.map { $0.low.isFinite ? $0.low : $0.y }, highs = finite.map { $0.high.isFinite ? $0.high : $0.y }
        var y0 = yRange?.lowerBound ?? (lows.min() ?? 0), y1 = yRange?.upperBound ?? (highs.max() ?? 1)
        if y0 == y1 { y0 -= 0.5; y1 += 0.5 }
        if yRange == nil {
            let pad = (y1 - y0) * 0.05
            // A non-negative metric keeps a 0 floor (a loss of −1e-7 is rounding, not a negative loss).
            y0 = (lows.min() ?? 0) >= -1e-4 * max(1, abs(y1)) ? max(0, y0 - pad) : y0 - pad
            y1 += pad
        }
        func px(_ x: Double) -> Double { left + ((logX ? log2(x) : x) - x0) / (x1 - x0) * plotWidth }
        func py(_ y: Double) -> Double { top + (1 - (min(max(y, y0), y1) - y0) / (y1 - y0)) * plotHeight }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var svg = ["<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(f(width)) \(f(height))\" width=\"\(f(width))\" height=\"\(f(height))\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"11\">"]
        svg.append("<rect x=\"0\" y=\"0\" width=\"\(f(width))\" height=\"\(f(height))\" fill=\"white\"/>")
        svg.append("<text x=\"\(f(width / 2))\" y=\"16\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">\(escape(title))</text>")
        // Grid and ticks.
        for i in 0...4 {
            let y = y0 + Double(i) / 4 * (y1 - y0)
            svg.append("<line x1=\"\(f(left))\" x2=\"\(f(left + plotWidth))\" y1=\"\(f(py(y)))\" y2=\"\(f(py(y)))\" stroke=\"#e5e5e5\"/>")
            svg.append("<text x=\"\(f(left - 6))\" y=\"\(f(py(y) + 4))\" text-anchor=\"end\">\(tick(y, span: y1 - y0))</text>")
        }
        // Log axes tick at the data's lengths; linear axes at round steps of 1, 2 or 5 × 10ᵏ.
        let dataTicks = Array(Set(finite.map(\.x))).sorted()
        let xTicks = logX ? (dataTicks.count <= 12 ? dataTicks : (Int(ceil(x0))...Int(floor(x1))).map { pow(2, Double($0)) })
            : SVGPlot.roundTicks(from: x0, to: x1, integers: dataTicks.allSatisfy { $0 == $0.rounded() })
        for x in xTicks {
            svg.append("<line x1=\"\(f(px(x)))\" x2=\"\(f(px(x)))\" y1=\"\(f(top))\" y2=\"\(f(top + plotHeight))\" stroke=\"#f0f0f0\"/>")
            svg.append("<text x=\"\(f(px(x)))\" y=\"\(f(top + plotHeight + 14))\" text-anchor=\"middle\">\(tick(x))</text>")
        }
        svg.append("<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotWidth))\" height=\"\(f(plotHeight))\" fill=\"none\" stroke=\"#888\"/>")
        svg.append("<text x=\"\(f(left + plotWidth / 2))\" y=\"\(f(height - 8))\" text-anchor=\"middle\">\(escape(xLabel))</text>")
        svg.append("<text transform=\"translate(14 \(f(top + plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel))</text>")
        if let marker, marker.x > 0 || !logX {
            let x = px(marker.x)
            svg.append("<line x1=\"\(f(x))\" x2=\"\(f(x))\" y1=\"\(f(top))\" y2=\"\(f(top + plotHeight))\" stroke=\"#444\" stroke-dasharray=\"4 3\"/>")
            svg.append("<text x=\"\(f(x + 3))\" y=\"\(f(top + 11))\" fill=\"#444\">\(escape(marker.label))</text>")
        }
        for s in series {
            let points = s.points.filter { $0.y.isFinite }.sorted { $0.x < $1.x }
            guard !points.isEmpty else { continue }
            if points.contains(where: { $0.high > $0.low }) {
                let upper = points.map { "\(f(px($0.x))),\(f(py($0.high)))" }, lower = points.reversed().map { "\(f(px($0.x))),\(f(py($0.low)))" }
                svg.append("<polygon points=\"\((upper + lower).joined(separator: " "))\" fill=\"\(s.color)\" fill-opacity=\"0.15\" stroke=\"none\"/>")
            }
            let path = points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            svg.append("<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\"/>")
            if points.count <= 16 {
                for p in points { svg.append("<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"2.5\" fill=\"\(s.color)\"/>") }
            }
        }
        // Legend in the right margin, outside the data.
        for (i, s) in series.enumerated() {
            let y = top + 8 + Double(i) * 14, x = left + plotWidth + 10
            svg.append("<line x1=\"\(f(x))\" x2=\"\(f(x + 14))\" y1=\"\(f(y - 3))\" y2=\"\(f(y - 3))\" stroke=\"\(s.color)\" stroke-width=\"2\"/>")
            svg.append("<text x=\"\(f(x + 18))\" y=\"\(f(y + 1))\">\(escape(s.name))</text>")
        }
        svg.append("</svg>")
        return svg.joined(separator: "\n")
    }

    static func roundTicks(from low: Double, to high: Double, integers: Bool = false) -> [Double] {
        let raw = (high - low) / 6, magnitude = pow(10, floor(log10(raw)))
        var step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        if integers { step = max(step, 1) }
        return stride(from: ceil(low / step) * step, through: high, by: step).map { $0 }
    }

    func tick(_ v: Double, span: Double? = nil) -> String {
        if let span, span > 0 {
            // Enough decimals to tell the four grid steps apart.
            let decimals = max(0, min(6, Int(ceil(-log10(span / 4))) + 1))
            return String(format: "%.\(decimals)f", v)
        }
        if v == v.rounded(), abs(v) < 1e6 { return String(Int(v)) }
        return abs(v) >= 100 ? String(format: "%.0f", v) : abs(v) >= 1 ? String(format: "%.2g", v) : String(format: "%.2f", v)
    }
}

func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        .replacingOccurrences(of: "\"", with: "&quot;")
}

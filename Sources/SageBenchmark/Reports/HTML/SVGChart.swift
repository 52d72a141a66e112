/// An inline SVG chart with labelled axes, ticks, gridlines, units and a legend: lines, dots
/// or bars, dashed marks at chosen values (p50, p99), and one highlighted point (a knee).
/// Everything is drawn in the SVG itself, so the report needs no script.
struct SVGChart: Sendable {
    enum Style: Sendable {
        case line, dots, lineWithDots
        /// Bars from zero, each `width` wide in x units, starting at its point's x.
        case bars(width: Double)
    }

    struct Series: Sendable {
        var name: String
        var points: [(x: Double, y: Double)]
        var style: Style = .line
        var dashed = false
        /// A label beside each point (a sweep's load), or none.
        var pointLabels: [String] = []
        /// The palette entry; by default the series' place in the chart.
        var colorIndex: Int? = nil
    }

    /// A dashed line across the plot at `value` on the x axis (vertical) or y axis (horizontal).
    struct Mark: Sendable {
        enum Axis: Sendable { case x, y }
        var axis: Axis
        var value: Double
        var label: String
        var color = "#444"
    }

    var title: String
    var x: ChartAxis
    var y: ChartAxis
    var series: [Series]
    var marks: [Mark] = []
    var highlight: (x: Double, y: Double, label: String)? = nil
    /// A line under the plot: counts, what was left out.
    var note: String = ""

    static let palette = ["#1f6fb4", "#d1495b", "#2a9d4b", "#8e5ac8", "#e07b1a", "#6b5a3e", "#1aa3a3", "#777777"]
    static let width = 560.0
    static let height = 330.0

    func render() -> String {
        // The legend wraps onto as many lines as its names need; the plot starts below it.
        var legend: [(x: Double, line: Int)] = []
        if series.count > 1 {
            var at = 68.0
            var line = 0
            for entry in series {
                let width = 26 + Double(entry.name.count) * 6.2
                if at > 68 && at + width > Self.width - 8 {
                    line += 1
                    at = 68
                }
                legend.append((at, line))
                at += width
            }
        }
        let legendLines = Double((legend.map(\.line).max() ?? -1) + 1)
        let height = Self.height + max(0, legendLines - 1) * 14
        let left = 68.0, right = Self.width - 16, top = 40.0 + legendLines * 14, bottom = height - 58
        func px(_ value: Double) -> Double { x.position(value, from: left, to: right) }
        func py(_ value: Double) -> Double { y.position(value, from: bottom, to: top) }
        var svg = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(Self.width))\" height=\"\(Int(height))\" "
        svg += "viewBox=\"0 0 \(Int(Self.width)) \(Int(height))\" role=\"img\" aria-label=\"\(HTMLText.escape(title))\">"
        svg += "<text class=\"title\" x=\"\(n(left))\" y=\"20\">\(HTMLText.escape(title))</text>"
        // Legend.
        for (index, line) in series.enumerated() where index < legend.count {
            let color = Self.color(line.colorIndex ?? index)
            let at = legend[index].x, y = 33 + Double(legend[index].line) * 14
            svg += "<g class=\"legend\"><line x1=\"\(n(at))\" y1=\"\(n(y))\" x2=\"\(n(at + 14))\" y2=\"\(n(y))\" stroke=\"\(color)\" stroke-width=\"3\"\(line.dashed ? " stroke-dasharray=\"4 2\"" : "")/>"
            svg += "<text x=\"\(n(at + 18))\" y=\"\(n(y + 4))\">\(HTMLText.escape(line.name))</text></g>"
        }
        // Y axis: gridlines, ticks, labels, title.
        svg += "<g class=\"axis y\">"
        for tick in y.ticks {
            let at = py(tick)
            svg += "<line class=\"grid\" x1=\"\(n(left))\" y1=\"\(n(at))\" x2=\"\(n(right))\" y2=\"\(n(at))\"/>"
            svg += "<line x1=\"\(n(left - 4))\" y1=\"\(n(at))\" x2=\"\(n(left))\" y2=\"\(n(at))\"/>"
            svg += "<text class=\"tick\" x=\"\(n(left - 7))\" y=\"\(n(at + 4))\" text-anchor=\"end\">\(y.label(tick))</text>"
        }
        svg += "<line x1=\"\(n(left))\" y1=\"\(n(top))\" x2=\"\(n(left))\" y2=\"\(n(bottom))\"/>"
        svg += "<text class=\"axis-title\" transform=\"translate(14 \(n((top + bottom) / 2))) rotate(-90)\" text-anchor=\"middle\">\(HTMLText.escape(y.title))</text></g>"
        // X axis.
        svg += "<g class=\"axis x\">"
        for tick in x.ticks {
            let at = px(tick)
            svg += "<line x1=\"\(n(at))\" y1=\"\(n(bottom))\" x2=\"\(n(at))\" y2=\"\(n(bottom + 4))\"/>"
            svg += "<text class=\"tick\" x=\"\(n(at))\" y=\"\(n(bottom + 17))\" text-anchor=\"middle\">\(x.label(tick))</text>"
        }
        svg += "<line x1=\"\(n(left))\" y1=\"\(n(bottom))\" x2=\"\(n(right))\" y2=\"\(n(bottom))\"/>"
        svg += "<text class=\"axis-title\" x=\"\(n((left + right) / 2))\" y=\"\(n(bottom + 36))\" text-anchor=\"middle\">\(HTMLText.escape(x.title))</text></g>"
        // Data.
        var labelled: [(x: Double, y: Double)] = []
        for (index, line) in series.enumerated() {
            let color = Self.color(line.colorIndex ?? index)
            let points = line.points.filter { $0.x.isFinite && $0.y.isFinite }
            svg += "<g class=\"series\" data-name=\"\(HTMLText.escape(line.name))\">"
            switch line.style {
            case .bars(let width):
                for point in points where point.y > 0 {
                    let x0 = px(point.x), x1 = px(point.x + width), top = py(point.y)
                    svg += "<rect x=\"\(n(x0))\" y=\"\(n(top))\" width=\"\(n(max(x1 - x0 - 1, 1)))\" height=\"\(n(max(bottom - top, 0)))\" fill=\"\(color)\" fill-opacity=\"0.8\">"
                    svg += "<title>\(x.label(point.x))–\(x.label(point.x + width)): \(y.label(point.y))</title></rect>"
                }
            case .line, .dots, .lineWithDots:
                if case .dots = line.style {} else if points.count > 1 {
                    let path = points.map { "\(n(px($0.x))),\(n(py($0.y)))" }.joined(separator: " ")
                    svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(line.dashed ? " stroke-dasharray=\"6 4\"" : "") points=\"\(path)\"/>"
                }
                if case .line = line.style {} else {
                    for (pointIndex, point) in points.enumerated() {
                        let cx = px(point.x), cy = py(point.y)
                        svg += "<circle cx=\"\(n(cx))\" cy=\"\(n(cy))\" r=\"3.5\" fill=\"\(color)\"><title>\(HTMLText.escape(line.name)): \(x.label(point.x)), \(y.label(point.y))</title></circle>"
                        // A label that would sit on one already drawn is left to the point's tooltip.
                        guard pointIndex < line.pointLabels.count, !line.pointLabels[pointIndex].isEmpty,
                            !labelled.contains(where: { abs($0.x - cx) < 24 && abs($0.y - cy) < 11 })
                        else { continue }
                        labelled.append((cx, cy))
                        svg += "<text class=\"point-label\" x=\"\(n(cx + 5))\" y=\"\(n(cy - 6))\">\(HTMLText.escape(line.pointLabels[pointIndex]))</text>"
                    }
                }
            }
            svg += "</g>"
        }
        // Marks.
        for mark in marks where mark.value.isFinite {
            svg += "<g class=\"mark\">"
            switch mark.axis {
            case .x:
                let at = px(mark.value)
                svg += "<line x1=\"\(n(at))\" y1=\"\(n(top))\" x2=\"\(n(at))\" y2=\"\(n(bottom))\" stroke=\"\(mark.color)\" stroke-dasharray=\"4 3\"/>"
                let anchor = at > right - 80 ? "end" : "start"
                svg += "<text x=\"\(n(anchor == "end" ? at - 4 : at + 4))\" y=\"\(n(top + 12))\" text-anchor=\"\(anchor)\" fill=\"\(mark.color)\">\(HTMLText.escape(mark.label))</text>"
            case .y:
                let at = py(mark.value)
                svg += "<line x1=\"\(n(left))\" y1=\"\(n(at))\" x2=\"\(n(right))\" y2=\"\(n(at))\" stroke=\"\(mark.color)\" stroke-dasharray=\"4 3\"/>"
                svg += "<text x=\"\(n(right - 4))\" y=\"\(n(at - 4))\" text-anchor=\"end\" fill=\"\(mark.color)\">\(HTMLText.escape(mark.label))</text>"
            }
            svg += "</g>"
        }
        if let highlight, highlight.x.isFinite, highlight.y.isFinite {
            let cx = px(highlight.x), cy = py(highlight.y)
            svg += "<g class=\"highlight\"><circle cx=\"\(n(cx))\" cy=\"\(n(cy))\" r=\"9\" fill=\"none\" stroke=\"#111\" stroke-width=\"2\"/>"
            svg += "<text x=\"\(n(cx - 13))\" y=\"\(n(cy + 4))\" text-anchor=\"end\" font-weight=\"600\">\(HTMLText.escape(highlight.label))</text></g>"
        }
        if !note.isEmpty {
            svg += "<text class=\"note\" x=\"\(n(left))\" y=\"\(n(height - 6))\">\(HTMLText.escape(note))</text>"
        }
        return svg + "</svg>"
    }

    static func color(_ index: Int) -> String { palette[index % palette.count] }

    /// A coordinate with one decimal.
    func n(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        return String((value * 10).rounded() / 10)
    }
}

/// Text made safe for HTML and SVG.
enum HTMLText {
    static func escape(_ text: String) -> String {
        text.replacing("&", with: "&amp;").replacing("<", with: "&lt;").replacing(">", with: "&gt;").replacing("\"", with: "&quot;")
    }
}

import SageLLM

/// One self-contained HTML file: the tables of the markdown report and inline SVG charts
/// (TTFT and ITL distributions, output throughput and requests in flight over time), with
/// no script, font or stylesheet from elsewhere, so it opens offline in any browser.
enum HTMLReport {
    static func render(_ report: BenchmarkReport) -> String {
        var body = "<h1>Benchmark report</h1>\n<ul>"
        for key in report.info.keys.sorted() { body += "<li><b>\(escape(key))</b>: \(escape(ReportFormat.text(report.info[key])))</li>" }
        body += "</ul>\n"
        for verdict in report.verdicts {
            body += "<h2>Contract \(escape(verdict.contract)): \(verdict.passed ? "PASS" : "FAIL")</h2>\n<table><tr><th>check</th><th>threshold</th><th>measured</th><th>result</th></tr>"
            for check in verdict.checks {
                body += "<tr><td>\(escape(check.metric))</td><td>\(escape(check.comparison)) \(ReportFormat.text(.double(check.threshold)))</td>"
                body += "<td>\(check.actual.map { ReportFormat.text(.double(($0 * 1000).rounded() / 1000)) } ?? "not measured")</td>"
                body += "<td class=\"\(check.passed ? "pass" : "fail")\">\(check.passed ? "pass" : "FAIL")</td></tr>"
            }
            body += "</table>\n"
        }
        body += "<h2>Results</h2>\n<table><tr><th>metric</th>" + report.runs.map { "<th>\(escape(ReportFormat.name($0)))</th>" }.joined() + "</tr>"
        for key in BenchmarkReport.keyOrder where key != "workload" && report.runs.contains(where: { $0[key] != nil }) {
            body += "<tr><td>\(escape(key))</td>" + report.runs.map { "<td>\(escape(ReportFormat.text($0[key])))</td>" }.joined() + "</tr>"
        }
        body += "</table>\n"
        for run in report.runs {
            let name = ReportFormat.name(run)
            guard let results = report.requests[name], !results.isEmpty else { continue }
            let ok = results.filter(\.success)
            body += "<h2>\(escape(name))</h2>\n<div class=\"charts\">"
            body += histogram(title: "TTFT (ms)", values: ok.compactMap(\.ttftMilliseconds))
            body += histogram(title: "ITL (ms)", values: ok.flatMap(\.itlMilliseconds))
            body += series(title: "Output tokens per second", points: TimeSeries.outputPerSecond(ok))
            body += series(title: "Requests in flight", points: TimeSeries.inFlight(results))
            body += "</div>\n"
        }
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>SageLLM benchmark report</title>
            <style>
            body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
            td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
            .pass{color:#080}.fail{color:#b00;font-weight:bold}.charts{display:flex;flex-wrap:wrap;gap:1em}
            svg{border:1px solid #ddd;background:#fafafa}
            </style></head><body>
            \(body)
            </body></html>

            """
    }

    static func escape(_ text: String) -> String {
        text.replacing("&", with: "&amp;").replacing("<", with: "&lt;").replacing(">", with: "&gt;").replacing("\"", with: "&quot;")
    }

    static let width = 420.0
    static let height = 220.0
    static let margin = 36.0

    /// A histogram of `values` in 20 bins.
    static func histogram(title: String, values: [Double]) -> String {
        guard let low = values.min(), let high = values.max() else { return chart(title: title, content: "", note: "no data") }
        let bins = 20
        let span = max(high - low, 1e-9)
        var counts = [Int](repeating: 0, count: bins)
        for value in values { counts[min(bins - 1, Int((value - low) / span * Double(bins)))] += 1 }
        let peak = Double(counts.max() ?? 1)
        let barWidth = (width - 2 * margin) / Double(bins)
        var bars = ""
        for (index, count) in counts.enumerated() where count > 0 {
            let barHeight = Double(count) / peak * (height - 2 * margin)
            bars += "<rect x=\"\(f(margin + Double(index) * barWidth))\" y=\"\(f(height - margin - barHeight))\" width=\"\(f(barWidth - 1))\" height=\"\(f(barHeight))\" fill=\"#4a7ab5\"><title>\(count)</title></rect>"
        }
        return chart(title: title, content: bars, note: "\(f(low)) to \(f(high)), \(values.count) values, peak bin \(Int(peak))")
    }

    /// A line over `(second, value)` points.
    static func series(title: String, points: [(Double, Double)]) -> String {
        guard let lastX = points.map(\.0).max(), let peak = points.map(\.1).max(), peak > 0 else {
            return chart(title: title, content: "", note: "no data")
        }
        let xScale = (width - 2 * margin) / max(lastX, 1)
        let yScale = (height - 2 * margin) / peak
        let path = points.map { "\(f(margin + $0.0 * xScale)),\(f(height - margin - $0.1 * yScale))" }.joined(separator: " ")
        return chart(
            title: title, content: "<polyline fill=\"none\" stroke=\"#c05020\" stroke-width=\"2\" points=\"\(path)\"/>",
            note: "0 to \(f(lastX)) s, peak \(f(peak))")
    }

    static func chart(title: String, content: String, note: String) -> String {
        """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))">\
        <text x="\(Int(margin))" y="20" font-size="13">\(escape(title))</text>\
        <line x1="\(Int(margin))" y1="\(Int(height - margin))" x2="\(Int(width - margin))" y2="\(Int(height - margin))" stroke="#888"/>\
        <line x1="\(Int(margin))" y1="\(Int(margin))" x2="\(Int(margin))" y2="\(Int(height - margin))" stroke="#888"/>\
        \(content)<text x="\(Int(margin))" y="\(Int(height - 10))" font-size="11" fill="#555">\(escape(note))</text></svg>
        """
    }

    static func f(_ value: Double) -> String { String((value * 10).rounded() / 10) }
}

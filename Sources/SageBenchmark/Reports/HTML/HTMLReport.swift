import SageLLM

/// One self-contained HTML file (no script, font or stylesheet from elsewhere; it opens
/// offline): the figures that matter first (throughput, TTFT and ITL p50/p99, errors by kind,
/// contract verdicts), then charts with labelled axes, units and p50/p99 marks (a sweep's
/// throughput-latency curve, each run's distributions and time series), then every metric,
/// folded. `comparison` draws several runs on the same charts.
enum HTMLReport {
    static func render(_ report: BenchmarkReport) -> String {
        var body = "<h1>\(HTMLText.escape(heading(report)))</h1>\n"
        body += verdicts(report.verdicts)
        if report.runs.count > 1 { body += overview(report.runs) }
        if let sweep = sweep(report) {
            let byWorkload = sweep.points(report.runs)
            for workload in byWorkload.keys.sorted() {
                guard let points = byWorkload[workload] else { continue }
                let knee = Sweep.knee(points).map { "knee at \(sweep.axis == .concurrency ? "concurrency" : "rate") \(Sweep.text($0.load))" }
                body += "<h2>Sweep of \(HTMLText.escape(workload)) over \(sweep.axis.rawValue)</h2>\n"
                body += "<p>\(HTMLText.escape(knee ?? "no knee within these points: latency did not outgrow throughput"))</p>\n"
                body += charts(sweepCharts(axis: sweep.axis, runs: [(workload, points)]))
            }
        }
        for run in report.runs {
            let name = ReportFormat.name(run)
            let results = report.requests[name] ?? []
            let ok = results.filter(\.success)
            body += "<details class=\"run\"\(report.runs.count <= 3 ? " open" : "")><summary><h2>\(HTMLText.escape(name))</h2></summary>\n"
            body += cards(run)
            if results.isEmpty {
                body += "<p class=\"muted\">No per-request results (requests.jsonl) next to this summary, so no charts.</p>\n"
            } else {
                body += charts([
                    ReportCharts.distribution(title: "Time to first token", quantity: "TTFT", values: ok.compactMap(\.ttftMilliseconds), counted: "requests"),
                    ReportCharts.distribution(title: "Inter-token latency", quantity: "ITL", values: ok.flatMap(\.itlMilliseconds), counted: "gaps between tokens"),
                    ReportCharts.overTime(title: "Output throughput over time", quantity: "output tokens per second", runs: [(name, TimeSeries.outputPerSecond(ok))]),
                    ReportCharts.overTime(title: "Requests in flight over time", quantity: "requests in flight", wholeNumbers: true, runs: [(name, TimeSeries.inFlight(results))]),
                ])
            }
            body += "</details>\n"
        }
        body += "<details><summary><h2>All metrics</h2></summary>\n"
        body += metricsTable(columns: report.runs.map { (ReportFormat.name($0), $0) })
        body += "</details>\n"
        body += settings([("", report.info)])
        body += glossary
        return page(title: heading(report), body: body)
    }

    /// Several runs, workload by workload: their headline figures side by side with the change
    /// from the first, and their distributions, time series and sweeps on the same charts.
    static func comparison(_ reports: [(label: String, report: BenchmarkReport)]) -> String {
        guard let first = reports.first else { return page(title: "Comparison", body: "<p>No runs.</p>") }
        var body = "<h1>Comparison: \(HTMLText.escape(reports.map(\.label).joined(separator: " against ")))</h1>\n"
        for entry in reports where !entry.report.verdicts.isEmpty {
            body += "<h3>\(HTMLText.escape(entry.label))</h3>" + verdicts(entry.report.verdicts)
        }
        let names = first.report.runs.map(ReportFormat.name).filter { name in
            reports.dropFirst().allSatisfy { entry in entry.report.runs.contains { ReportFormat.name($0) == name } }
        }
        let unmatched = Set(reports.flatMap { $0.report.runs.map(ReportFormat.name) }).subtracting(names)
        let sweeps = reports.compactMap { entry in sweep(entry.report).map { (entry.label, $0, $0.points(entry.report.runs)) } }
        if sweeps.count > 1, Set(sweeps.map(\.1.axis)).count == 1, let axis = sweeps.first?.1.axis {
            let workloads = Set(sweeps[0].2.keys).filter { workload in sweeps.allSatisfy { $0.2[workload] != nil } }
            for workload in workloads.sorted() {
                body += "<h2>Sweep of \(HTMLText.escape(workload)) over \(axis.rawValue)</h2>\n"
                body += charts(sweepCharts(axis: axis, runs: sweeps.map { ($0.0, $0.2[workload] ?? []) }))
            }
        }
        if names.isEmpty { body += "<p>The runs share no workload, so there is nothing to set side by side.</p>\n" }
        for name in names {
            let runs = reports.compactMap { entry in entry.report.runs.first { ReportFormat.name($0) == name }.map { (entry.label, $0) } }
            let results = reports.map { entry in (entry.label, entry.report.requests[name] ?? []) }
            body += "<details class=\"run\"\(names.count <= 3 ? " open" : "")><summary><h2>\(HTMLText.escape(name))</h2></summary>\n" + changeTable(runs)
            if results.contains(where: { !$0.1.isEmpty }) {
                body += charts([
                    ReportCharts.cumulative(title: "Time to first token", quantity: "TTFT", runs: results.map { ($0.0, $0.1.filter(\.success).compactMap(\.ttftMilliseconds)) }),
                    ReportCharts.cumulative(title: "Inter-token latency", quantity: "ITL", runs: results.map { ($0.0, $0.1.filter(\.success).flatMap(\.itlMilliseconds)) }),
                    ReportCharts.overTime(title: "Output throughput over time", quantity: "output tokens per second", runs: results.map { ($0.0, TimeSeries.outputPerSecond($0.1.filter(\.success))) }),
                    ReportCharts.overTime(title: "Requests in flight over time", quantity: "requests in flight", wholeNumbers: true, runs: results.map { ($0.0, TimeSeries.inFlight($0.1)) }),
                ])
            }
            body += "</details>\n"
        }
        if !unmatched.isEmpty { body += "<p class=\"muted\">Only in some runs: \(HTMLText.escape(unmatched.sorted().joined(separator: ", ")))</p>\n" }
        body += "<details><summary><h2>All metrics</h2></summary>\n"
        for name in names {
            body += "<h3>\(HTMLText.escape(name))</h3>"
            body += metricsTable(columns: reports.compactMap { entry in entry.report.runs.first { ReportFormat.name($0) == name }.map { (entry.label, $0) } })
        }
        body += "</details>\n"
        body += settings(reports.map { ($0.label, $0.report.info) })
        body += glossary
        return page(title: "Comparison", body: body)
    }

    // MARK: Pieces

    static func heading(_ report: BenchmarkReport) -> String {
        let backend = report.runs.first?["backend"]?.stringValue ?? report.info["backend"]?.stringValue
        let model = report.runs.first?["model"]?.stringValue
        return "Benchmark" + (backend.map { " of \($0)" } ?? "") + (model.map { ", model \($0)" } ?? "")
    }

    static func sweep(_ report: BenchmarkReport) -> Sweep? {
        guard let text = report.info["sweep"]?.stringValue else { return nil }
        return try? Sweep.parse(text)  // a summary edited by hand simply has no sweep charts
    }

    static func sweepCharts(axis: Sweep.Axis, runs: [(String, [Sweep.Point])]) -> [SVGChart] {
        [
            ReportCharts.sweep(title: "TTFT against throughput", quantity: "TTFT", axis: axis, runs: runs) { $0.ttft },
            ReportCharts.sweep(title: "ITL against throughput", quantity: "ITL", axis: axis, runs: runs) { $0.itl },
            ReportCharts.sweep(title: "End-to-end latency against throughput", quantity: "E2EL", axis: axis, runs: runs) { $0.e2el },
        ]
    }

    static func charts(_ charts: [SVGChart]) -> String {
        "<div class=\"charts\">" + charts.map { $0.render() }.joined(separator: "\n") + "</div>\n"
    }

    /// The contracts' verdicts as badges, each failed check named.
    static func verdicts(_ verdicts: [Contract.Verdict]) -> String {
        guard !verdicts.isEmpty else { return "" }
        var out = "<div class=\"verdicts\">"
        for verdict in verdicts {
            let failed = verdict.checks.filter { !$0.passed }
            out += "<div class=\"verdict \(verdict.passed ? "pass" : "fail")\"><b>Contract \(HTMLText.escape(verdict.contract)): \(verdict.passed ? "PASS" : "FAIL")</b>"
            out += " <span>\(verdict.checks.count - failed.count) of \(verdict.checks.count) checks met</span>"
            for check in failed {
                let measured = check.actual.map { figure($0) } ?? "not measured"
                out += "<br/><small>\(HTMLText.escape(check.metric)) \(HTMLText.escape(check.comparison)) \(figure(check.threshold)): \(measured)</small>"
            }
            out += "</div>"
        }
        return out + "</div>\n"
    }

    /// A run's figures that matter, as cards.
    static func cards(_ run: [String: JSONValue]) -> String {
        func card(_ label: String, _ value: String, _ detail: String, bad: Bool = false) -> String {
            "<div class=\"card\(bad ? " bad" : "")\"><div class=\"label\">\(HTMLText.escape(label))</div><div class=\"value\">\(HTMLText.escape(value))</div><div class=\"detail\">\(HTMLText.escape(detail))</div></div>"
        }
        let errorRate = number(run["error_rate"])
        var out = "<div class=\"cards\">"
        out += card(
            "Requests per second", figure(number(run["request_throughput"])),
            "\(ReportFormat.text(run["completed"])) completed, \(ReportFormat.text(run["failed"])) failed in \(figure(number(run["duration"]))) s")
        out += card(
            "Output tokens per second", figure(number(run["output_throughput"])),
            "\(figure(number(run["total_token_throughput"]))) with the prompts" + (run["tokens_approximate"] == .bool(true) ? "; counted in chunks (no usage)" : ""))
        out += card("TTFT p50 / p99", "\(figure(number(run["p50_ttft_ms"]))) / \(figure(number(run["p99_ttft_ms"]))) ms", "mean \(figure(number(run["mean_ttft_ms"]))) ms")
        out += card("ITL p50 / p99", "\(figure(number(run["p50_itl_ms"]))) / \(figure(number(run["p99_itl_ms"]))) ms", "TPOT mean \(figure(number(run["mean_tpot_ms"]))) ms")
        out += card(
            "Errors", errorRate.map { figure($0 * 100) + "%" } ?? "n/a", errorsByKind(run["errors"]), bad: (errorRate ?? 0) > 0)
        if let goodput = number(run["request_goodput"]) { out += card("Goodput", figure(goodput), "requests per second within the SLO") }
        if let error = number(run["prompt_length_error_mean"]) {
            out += card("Prompt length off by", figure(error * 100) + "%", "mean; max \(figure(number(run["prompt_length_error_max"]).map { $0 * 100 }))%")
        }
        return out + "</div>\n"
    }

    static func errorsByKind(_ value: JSONValue?) -> String {
        guard case .object(let kinds)? = value, !kinds.isEmpty else { return "none" }
        return kinds.sorted { (number($0.value) ?? 0) > (number($1.value) ?? 0) }.map { "\($0.key): \(ReportFormat.text($0.value))" }.joined(separator: ", ")
    }

    /// Every run's figures that matter in one table, one row per run.
    static func overview(_ runs: [[String: JSONValue]]) -> String {
        let columns: [(String, ([String: JSONValue]) -> String)] = [
            ("req/s", { figure(number($0["request_throughput"])) }),
            ("output tok/s", { figure(number($0["output_throughput"])) }),
            ("TTFT p50 ms", { figure(number($0["p50_ttft_ms"])) }),
            ("TTFT p99 ms", { figure(number($0["p99_ttft_ms"])) }),
            ("ITL p50 ms", { figure(number($0["p50_itl_ms"])) }),
            ("ITL p99 ms", { figure(number($0["p99_itl_ms"])) }),
            ("errors", { run in number(run["error_rate"]).map { figure($0 * 100) + "%" } ?? "n/a" }),
        ]
        var out = "<table class=\"overview\"><tr><th>run</th>" + columns.map { "<th>\($0.0)</th>" }.joined() + "</tr>"
        for run in runs {
            out += "<tr><td>\(HTMLText.escape(ReportFormat.name(run)))</td>" + columns.map { "<td>\(HTMLText.escape($0.1(run)))</td>" }.joined() + "</tr>"
        }
        return out + "</table>\n"
    }

    /// The headline figures of several runs of one workload, with each one's change from the first.
    static func changeTable(_ runs: [(String, [String: JSONValue])]) -> String {
        let keys = [
            "request_throughput", "output_throughput", "request_goodput", "p50_ttft_ms", "p99_ttft_ms", "p50_itl_ms", "p99_itl_ms",
            "mean_tpot_ms", "p99_e2el_ms", "error_rate",
        ]
        var out = "<table class=\"overview\"><tr><th>metric</th>" + runs.map { "<th>\(HTMLText.escape($0.0))</th>" }.joined() + "</tr>"
        for key in keys where runs.contains(where: { number($0.1[key]) != nil }) {
            out += "<tr><td>\(key)</td>"
            let base = runs.first.flatMap { number($0.1[key]) }
            for (index, run) in runs.enumerated() {
                let value = number(run.1[key])
                var cell = figure(value)
                var style = ""
                if index > 0, let base, let value, base != 0 {
                    let change = (value - base) / abs(base) * 100
                    let higherIsBetter = key.contains("throughput") || key.contains("goodput")
                    if abs(change) >= 1 { style = (change > 0) == higherIsBetter ? " class=\"better\"" : " class=\"worse\"" }
                    cell += " (\(change >= 0 ? "+" : "")\(ChartAxis.format(change, step: 0.1))%)"
                }
                out += "<td\(style)>\(HTMLText.escape(cell))</td>"
            }
            out += "</tr>"
        }
        return out + "</table>\n"
    }

    static func metricsTable(columns: [(String, [String: JSONValue])]) -> String {
        var out = "<table><tr><th>metric</th>" + columns.map { "<th>\(HTMLText.escape($0.0))</th>" }.joined() + "</tr>"
        let keys = BenchmarkReport.keyOrder.filter { key in key != "workload" && columns.contains { $0.1[key] != nil } }
        for key in keys {
            out += "<tr><td>\(HTMLText.escape(key))</td>" + columns.map { "<td>\(HTMLText.escape(ReportFormat.text($0.1[key])))</td>" }.joined() + "</tr>"
        }
        return out + "</table>\n"
    }

    static func settings(_ infos: [(label: String, info: [String: JSONValue])]) -> String {
        var out = "<details><summary><h2>Run settings</h2></summary>"
        for entry in infos {
            if !entry.label.isEmpty { out += "<h3>\(HTMLText.escape(entry.label))</h3>" }
            out += "<ul>" + entry.info.keys.sorted().map { "<li><b>\(HTMLText.escape($0))</b>: \(HTMLText.escape(ReportFormat.text(entry.info[$0])))</li>" }.joined() + "</ul>"
        }
        return out + "</details>\n"
    }

    static let glossary = """
        <p class="muted">Times are in milliseconds from the moment each request was written. TTFT: time to the first \
        event with choices. ITL: the gaps between events, pooled over successful requests. TPOT: (E2EL − TTFT) / \
        (output tokens − 1). p50/p99: the 50th/99th percentile, interpolated as numpy does. n/a: not measured.</p>

        """

    /// A figure to three significant digits or so: 1,234 · 56.7 · 0.89.
    static func figure(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "n/a" }
        if value == 0 { return "0" }
        let magnitude = abs(value)
        let step = magnitude >= 100 ? 1.0 : magnitude >= 10 ? 0.1 : magnitude >= 1 ? 0.01 : 0.001
        return ChartAxis.format(value, step: step)
    }

    static func figure(_ value: Double) -> String { figure(Optional(value)) }

    static func number(_ value: JSONValue?) -> Double? { ReportFormat.number(value) }

    static func page(title: String, body: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"/><meta name="viewport" content="width=device-width"/>
        <title>\(HTMLText.escape(title))</title>
        <style>
        body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1180px;padding:0 1em;color:#1d1d1f}
        h1{font-size:1.5em}h2{font-size:1.2em;display:inline}h3{font-size:1em;margin:1em 0 .3em}
        details{margin:1.2em 0}summary{cursor:pointer;margin-bottom:.6em}
        .cards,.verdicts{display:flex;flex-wrap:wrap;gap:.7em;margin:.8em 0}
        .card{border:1px solid #d8d8dc;border-radius:8px;padding:.6em .9em;min-width:150px;background:#fbfbfd}
        .card .label{font-size:.8em;color:#555}.card .value{font-size:1.5em;font-weight:600;margin:.1em 0}
        .card .detail{font-size:.75em;color:#666;max-width:220px}.card.bad{border-color:#d1495b;background:#fff5f6}
        .verdict{border-radius:8px;padding:.5em .9em}.verdict.pass{background:#e8f5e9;color:#1b5e20}.verdict.fail{background:#ffebee;color:#b71c1c}
        table{border-collapse:collapse;margin:.6em 0;font-size:.9em}td,th{border:1px solid #ddd;padding:3px 9px;text-align:right}
        td:first-child,th:first-child{text-align:left}th{background:#f3f3f6}
        td.better{color:#1b5e20}td.worse{color:#b71c1c}
        .charts{display:flex;flex-wrap:wrap;gap:1em}
        svg.chart{border:1px solid #e2e2e6;border-radius:6px;background:#fff;font-size:11px}
        svg .title{font-size:13px;font-weight:600}svg .axis line{stroke:#888}svg .axis line.grid{stroke:#eee}
        svg .tick{fill:#444}svg .axis-title{fill:#222;font-size:12px}svg .note,svg .point-label{fill:#666;font-size:10px}
        .muted{color:#666;font-size:.85em}
        </style></head><body>
        \(body)
        </body></html>

        """
    }
}

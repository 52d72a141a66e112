import SageLLM

/// The ways `report` can show a run.
public enum ReportFormat: String, Sendable, CaseIterable {
    case table, json, markdown, html, csv

    public static func named(_ name: String) throws(BenchmarkError) -> ReportFormat {
        guard let format = ReportFormat(rawValue: name.lowercased()) else {
            throw BenchmarkError(
                .invalidArgument, "unknown format '\(name)'; use \(allCases.map(\.rawValue).joined(separator: ", "))",
                field: "format")
        }
        return format
    }

    public func render(_ report: BenchmarkReport) -> String {
        switch self {
        case .json: Self.json(report)
        case .table: Self.table(report)
        case .markdown: Self.markdown(report)
        case .csv: Self.csv(report)
        case .html: HTMLReport.render(report)
        }
    }

    /// The figures a person looks at first (table, markdown and compare).
    static let headlineKeys = [
        "completed", "failed", "duration", "total_input_tokens", "total_output_tokens", "request_throughput",
        "request_goodput", "output_throughput", "total_token_throughput", "max_concurrent_requests", "mean_ttft_ms",
        "median_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "median_tpot_ms", "p99_tpot_ms", "mean_itl_ms", "median_itl_ms",
        "p99_itl_ms", "mean_e2el_ms", "p99_e2el_ms", "mean_tbt_ms", "mean_schedule_lag_ms", "error_rate",
        "tokens_approximate", "client_peak_memory_mb", "backend_peak_memory_mb", "kv_cache_usage", "prefix_cache_hit_rate",
        "prompt_length_error_mean", "prompt_length_error_max",
    ]

    /// A value as text; a missing figure is "n/a", never 0.
    static func text(_ value: JSONValue?) -> String {
        switch value {
        case nil, .null?: "n/a"
        case .bool(let flag)?: flag ? "yes" : "no"
        case .int(let number)?: String(number)
        case .double(let number)?: number == number.rounded() && abs(number) < 1e15 ? String(Int(number)) : String(number)
        case .string(let text)?: text
        case .object(let members)?: members.keys.sorted().map { "\($0)=\(text(members[$0]))" }.joined(separator: "; ")
        case .array(let items)?: items.map { text($0) }.joined(separator: ", ")
        }
    }

    static func name(_ run: [String: JSONValue]) -> String { text(run["workload"]) }

    static func json(_ report: BenchmarkReport) -> String {
        var root = report.info
        root["runs"] = .array(report.runs.map { .object($0) })
        if let contracts = try? BenchmarkReport.jsonObject(["contracts": report.verdicts])["contracts"] {  // verdicts always encode
            root["contracts"] = contracts
        }
        return BenchmarkReport.json(.object(root))
    }

    static func table(_ report: BenchmarkReport) -> String {
        let header = ["metric"] + report.runs.map(name)
        var rows = [header]
        for key in headlineKeys where report.runs.contains(where: { $0[key] != nil }) {
            rows.append([key] + report.runs.map { text($0[key]) })
        }
        var out = layout(rows)
        for verdict in report.verdicts {
            out += "\n\(verdict.contract): \(verdict.passed ? "PASS" : "FAIL")"
            for check in verdict.checks {
                out += "\n  \(check.passed ? "ok  " : "FAIL") \(check.metric) \(check.comparison) \(text(.double(check.threshold))): "
                    + (check.actual.map { text(.double(($0 * 1000).rounded() / 1000)) } ?? "not measured")
            }
        }
        return out
    }

    /// Columns padded to their widest cell, the first left-aligned, the rest right-aligned.
    static func layout(_ rows: [[String]]) -> String {
        let widths = (0..<(rows.first?.count ?? 0)).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.enumerated().map { index, row in
            let line = row.enumerated().map { column, cell in
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                return column == 0 ? cell + pad : pad + cell
            }.joined(separator: "  ")
            return index == 0 ? line + "\n" + String(repeating: "-", count: line.count) : line
        }.joined(separator: "\n")
    }

    static func markdown(_ report: BenchmarkReport) -> String {
        var out = "# Benchmark report\n\n"
        for key in report.info.keys.sorted() { out += "- **\(key)**: \(text(report.info[key]))\n" }
        if !report.verdicts.isEmpty {
            out += "\n## Contracts\n\n| Contract | Check | Threshold | Measured | Result |\n|---|---|---|---|---|\n"
            for verdict in report.verdicts {
                for check in verdict.checks {
                    out += "| \(verdict.contract) | `\(check.metric)` | \(check.comparison) \(text(.double(check.threshold))) | "
                        + "\(check.actual.map { text(.double(($0 * 1000).rounded() / 1000)) } ?? "not measured") | \(check.passed ? "pass" : "**FAIL**") |\n"
                }
            }
        }
        out += "\n## Results\n\n| Metric | " + report.runs.map(name).joined(separator: " | ") + " |\n"
        out += "|---|" + String(repeating: "---|", count: report.runs.count) + "\n"
        let keys = BenchmarkReport.keyOrder.filter { key in report.runs.contains { $0[key] != nil } }
        for key in keys where key != "workload" {
            out += "| `\(key)` | " + report.runs.map { text($0[key]) }.joined(separator: " | ") + " |\n"
        }
        out += "\nTimes are in milliseconds from the moment each request was written. TTFT is the first event with choices; "
        out += "TPOT is (E2EL - TTFT) / (output tokens - 1); ITL pools the gaps between events of all successful requests; "
        out += "TBT is each request's mean ITL. `n/a` means not measured.\n"
        return out
    }

    static func csv(_ report: BenchmarkReport) -> String {
        let keys = BenchmarkReport.keyOrder.filter { key in report.runs.contains { $0[key] != nil } }
        func cell(_ text: String) -> String {
            text.contains(",") || text.contains("\"") || text.contains("\n")
                ? "\"" + text.replacing("\"", with: "\"\"") + "\"" : text
        }
        var out = keys.map(cell).joined(separator: ",") + "\n"
        for run in report.runs {
            out += keys.map { key in run[key].map { $0.isNull ? "" : cell(text($0)) } ?? "" }.joined(separator: ",") + "\n"
        }
        return out
    }

    /// `compare`: the headline figures of two runs side by side, with the relative change.
    public static func compare(_ a: BenchmarkReport, _ b: BenchmarkReport) -> String {
        var rows = [["workload", "metric", "A", "B", "change"]]
        for runA in a.runs {
            guard let runB = b.runs.first(where: { name($0) == name(runA) }) else { continue }
            for key in headlineKeys where runA[key] != nil || runB[key] != nil {
                var change = ""
                if let x = number(runA[key]), let y = number(runB[key]) {
                    change = x == 0 ? (y == 0 ? "0%" : "new") : String(format1: (y - x) / abs(x) * 100) + "%"
                    if change.first != "-" && change != "0%" && change != "new" { change = "+" + change }
                }
                rows.append([name(runA), key, text(runA[key]), text(runB[key]), change])
            }
        }
        let unmatched = (a.runs.map(name) + b.runs.map(name)).filter { workload in
            !(a.runs.contains { name($0) == workload } && b.runs.contains { name($0) == workload })
        }
        var out = layout(rows)
        if !unmatched.isEmpty { out += "\nonly in one run: " + Set(unmatched).sorted().joined(separator: ", ") }
        return out
    }

    /// `compare --format html`: the runs on the same charts (overlaid distributions, time
    /// series and sweep curves) after their headline figures with the change from the first.
    public static func compareHTML(_ reports: [(label: String, report: BenchmarkReport)]) -> String {
        HTMLReport.comparison(reports)
    }

    static func number(_ value: JSONValue?) -> Double? {
        switch value {
        case .int(let n)?: Double(n)
        case .double(let n)?: n
        default: nil
        }
    }
}

extension String {
    /// One decimal, without Foundation's String(format:).
    init(format1 value: Double) {
        let rounded = (value * 10).rounded() / 10
        self = String(rounded)
    }
}

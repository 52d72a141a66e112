import Foundation
import SageBenchmark
import SageLLM
import Testing

/// The HTML report as a person sees it: the figures that matter first, charts with axes,
/// ticks, units and p50/p99 marks, the full table folded, one well-formed file.
@Suite("HTML report")
struct HTMLReportTests {
    @Test func aRunReportLeadsWithItsFiguresAndEveryChartHasAxes() async throws {
        let report = try await ReportTests.session(errorRate: 0.3)
        let html = ReportFormat.html.render(report)
        try HTMLCheck.wellFormed(html)
        HTMLCheck.selfContained(html)
        try HTMLCheck.everyChartHasAxes(html, atLeast: 8)
        // The headline comes before any chart, the full table after them, folded.
        let cards = try #require(html.range(of: "class=\"cards\""))
        let firstChart = try #require(html.range(of: "<svg"))
        let allMetrics = try #require(html.range(of: "<h2>All metrics</h2>"))
        #expect(cards.lowerBound < firstChart.lowerBound && firstChart.lowerBound < allMetrics.lowerBound)
        #expect(html[..<allMetrics.lowerBound].hasSuffix("<details><summary>"), "the full table is folded")
        for label in ["Requests per second", "Output tokens per second", "TTFT p50 / p99", "ITL p50 / p99", "Errors", "Contract Y1"] {
            #expect(html.contains(label), "missing \(label)")
        }
        #expect(html.contains("class=\"card bad\""), "30% errors are shown as bad")
        #expect(html.contains(">p50 ") && html.contains(">p99 "), "distributions mark p50 and p99")
        #expect(html.contains("TTFT (ms)") && html.contains("time since the start (s)"), "axes say their unit")
    }

    @Test func aComparisonOverlaysTheRunsOnTheSameCharts() async throws {
        let fast = try await ReportTests.session()
        let slow = try await ReportTests.session(errorRate: 0.3)
        let html = ReportFormat.compareHTML([("fast", fast), ("slow", slow)])
        try HTMLCheck.wellFormed(html)
        HTMLCheck.selfContained(html)
        try HTMLCheck.everyChartHasAxes(html, atLeast: 8)
        #expect(html.contains("Comparison: fast against slow"))
        // Each workload's four charts draw both runs.
        #expect(html.components(separatedBy: "data-name=\"fast\"").count - 1 == 8)
        #expect(html.components(separatedBy: "data-name=\"slow\"").count - 1 == 8)
        #expect(html.contains("share of values (%)"), "distributions as CDFs, which overlay")
        #expect(html.contains("(+") || html.contains("(-"), "the change from the first run")
    }

    @Test func damagedResultsStillRenderAndNothingTraps() throws {
        var result = BenchmarkResult.failure(BenchmarkRequest(prompt: "p", maxTokens: 3, requestID: "r"), error: "", kind: "")
        result.success = true
        result.error = nil
        result.ttftMilliseconds = 1e300
        result.itlMilliseconds = [1e-300, 5, 1e308]
        result.eventSeconds = [-1, 1e300, 2]
        result.outputTokens = 3
        result.startSeconds = 0
        result.endSeconds = 1e300
        let run: [String: JSONValue] = ["workload": .string("broken"), "request_throughput": .double(1e308), "error_rate": .string("?")]
        let report = BenchmarkReport(info: ["sweep": .string("nonsense")], runs: [run], verdicts: [], requests: ["broken": [result]])
        let html = ReportFormat.html.render(report)
        try HTMLCheck.wellFormed(html)
        #expect(html.contains("n/a"))
    }
}

/// Checks on a rendered page without a browser.
enum HTMLCheck {
    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    static let voidElements: Set<String> = ["meta", "br", "hr", "img", "input", "link"]

    /// Every element closed in order, every attribute quoted, no stray `<` or `&`.
    static func wellFormed(_ html: String) throws {
        var stack: [String] = []
        var rest = Substring(html)
        while let open = rest.firstIndex(of: "<") {
            let text = rest[..<open]
            try checkText(text)
            guard let close = rest[open...].firstIndex(of: ">") else { throw Malformed(description: "a tag never ends") }
            let tag = rest[rest.index(after: open)..<close]
            rest = rest[rest.index(after: close)...]
            if tag.hasPrefix("!") { continue }
            if tag.hasPrefix("/") {
                let name = String(tag.dropFirst())
                guard stack.popLast() == name else { throw Malformed(description: "</\(name)> closes \(stack.last ?? "nothing")") }
                continue
            }
            let name = String(tag.prefix { !$0.isWhitespace && $0 != "/" })
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber }) else { throw Malformed(description: "a bad tag <\(tag)>") }
            if tag.filter({ $0 == "\"" }).count % 2 != 0 { throw Malformed(description: "an unbalanced quote in <\(tag)>") }
            if tag.hasSuffix("/") || voidElements.contains(name) { continue }
            stack.append(name)
        }
        try checkText(rest)
        guard stack.isEmpty else { throw Malformed(description: "never closed: \(stack)") }
    }

    static func checkText(_ text: Substring) throws {
        var rest = text
        while let amp = rest.firstIndex(of: "&") {
            let entity = rest[amp...].prefix { $0 != ";" && $0 != " " }
            guard ["&amp", "&lt", "&gt", "&quot"].contains(String(entity)) else { throw Malformed(description: "a bare & near \(rest[amp...].prefix(20))") }
            rest = rest[rest.index(after: amp)...]
        }
    }

    /// Nothing fetched from elsewhere: no script, no link, no external image or font.
    static func selfContained(_ html: String) {
        for needle in ["<script", "src=", "href=", "url(", "@import"] {
            #expect(!html.contains(needle), "the page loads something: \(needle)")
        }
    }

    /// Every chart has an x and a y axis, each with a title and at least two labelled ticks.
    static func everyChartHasAxes(_ html: String, atLeast count: Int) throws {
        let charts = html.components(separatedBy: "<svg class=\"chart\"").dropFirst()
        #expect(charts.count >= count, "\(charts.count) charts")
        for chart in charts {
            let body = chart.components(separatedBy: "</svg>")[0]
            for axis in ["axis x", "axis y"] {
                let group = try #require(body.components(separatedBy: "<g class=\"\(axis)\">").dropFirst().first?.components(separatedBy: "</g>").first)
                #expect(group.components(separatedBy: "class=\"tick\"").count - 1 >= 2, "\(axis) has ticks")
                #expect(group.contains("class=\"axis-title\""), "\(axis) has a title")
            }
        }
    }
}

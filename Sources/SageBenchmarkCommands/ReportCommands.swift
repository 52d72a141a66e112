import ArgumentParser
import SageBenchmark

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report", abstract: "Show a finished run as a table, JSON, markdown, HTML or CSV.")

    @Option(help: "A run directory, its benchmark_summary.json, or one <workload>_metrics.json.")
    var input = "./benchmark_results"

    @Option(help: "table, json, markdown, html (one self-contained file with SVG charts) or csv.")
    var format = "table"

    func run() async throws {
        try await failingClearly {
            let format = try ReportFormat.named(format)
            say(format.render(try BenchmarkReport.read(input)), terminator: format == .table ? "\n" : "")
        }
    }
}

struct CompareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare", abstract: "Compare two runs, workload by workload, with the relative change.")

    @Argument(help: "The first run (directory or summary file).")
    var runA: String

    @Argument(help: "The second run.")
    var runB: String

    @Option(help: "table (the headline figures with the change) or html (one file, the runs overlaid on the same charts).")
    var format = "table"

    func validate() throws {
        guard ["table", "html"].contains(format.lowercased()) else {
            throw ValidationError("--format for compare is table or html, got '\(format)'")
        }
    }

    func run() async throws {
        try await failingClearly {
            let a = try BenchmarkReport.read(runA), b = try BenchmarkReport.read(runB)
            if format.lowercased() == "html" {
                let labels = Self.labels(runA, runB)
                say(ReportFormat.compareHTML([(labels.0, a), (labels.1, b)]), terminator: "")
            } else {
                say(ReportFormat.compare(a, b))
            }
        }
    }

    /// Each run named by its directory ("run-a", "run-b"), or A and B where those are the same.
    static func labels(_ a: String, _ b: String) -> (String, String) {
        func name(_ path: String) -> String {
            let parts = path.split(separator: "/").map(String.init).filter { $0 != "." }
            guard let last = parts.last else { return path }
            return last.hasSuffix(".json") ? (parts.dropLast().last ?? last) : last
        }
        let (x, y) = (name(a), name(b))
        return x == y || x.isEmpty || y.isEmpty ? ("A: \(x)", "B: \(y)") : (x, y)
    }
}

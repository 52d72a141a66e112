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

    func run() async throws {
        try await failingClearly {
            say(ReportFormat.compare(try BenchmarkReport.read(runA), try BenchmarkReport.read(runB)))
        }
    }
}

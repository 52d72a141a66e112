import ArgumentParser
import struct Foundation.Data
import class Foundation.FileHandle

/// `sagellm-benchmark` and `sagellm bench`: run, report, compare.
public struct BenchmarkCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark an LLM backend: TTFT, TPOT, ITL, E2EL and throughput as vllm bench serve measures them.",
        subcommands: [RunCommand.self, ReportCommand.self, CompareCommand.self],
        defaultSubcommand: nil)

    public init() {}
}

/// The root of the `sagellm-benchmark` executable: `bench` under its own name.
public struct SageBenchmarkMain: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "sagellm-benchmark", abstract: BenchmarkCommand.configuration.abstract,
        subcommands: [RunCommand.self, ReportCommand.self, CompareCommand.self])

    public init() {}
}

/// Writes a line (or `text` with `terminator`) to standard output: the commands' output.
func say(_ text: String, terminator: String = "\n") {
    FileHandle.standardOutput.write(Data((text + terminator).utf8))
}

import ArgumentParser
import SageBenchmarkCommands

/// `sagellm-benchmark`: the same command as `sagellm bench`.
@main
struct SageBenchmarkTool: AsyncParsableCommand {
    static let configuration = SageBenchmarkMain.configuration

    /// Ctrl-C or SIGTERM cancels the run and ends it with status 130 or 143.
    static func main() async { await CommandLineMain.run(Self.self) }
}

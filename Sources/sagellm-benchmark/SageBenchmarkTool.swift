import ArgumentParser
import SageBenchmarkCommands

/// `sagellm-benchmark`: the same command as `sagellm bench`.
@main
struct SageBenchmarkTool: AsyncParsableCommand {
    static let configuration = SageBenchmarkMain.configuration
}

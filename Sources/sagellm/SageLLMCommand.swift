import ArgumentParser
import SageBenchmarkCommands

@main
struct SageLLMCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sagellm",
        abstract: "An LLM client for OpenAI-compatible servers, with a simulated engine to try it without a GPU.",
        subcommands: [DemoCommand.self, DetectCommand.self, ChatCommand.self, ModelsCommand.self, SimulateCommand.self, ClusterCommand.self, BenchmarkCommand.self],
        defaultSubcommand: nil)
}

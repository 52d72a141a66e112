import ArgumentParser
import SageBenchmarkCommands
import SageCurl

@main
struct SageLLMCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sagellm",
        abstract: "An LLM client for OpenAI-compatible servers, with a simulated engine to try it without a GPU.",
        subcommands: [DemoCommand.self, DetectCommand.self, ChatCommand.self, ModelsCommand.self, SimulateCommand.self, ClusterCommand.self, ServeCommand.self, RegisterCommand.self, BenchmarkCommand.self],
        defaultSubcommand: nil)

    /// Ctrl-C or SIGTERM cancels the command's requests and ends it with status 130 or 143.
    /// In a build with the trait Curl, `http.transport: curl` is available to every command.
    static func main() async {
        CurlTransport.install()
        await CommandLineMain.run(Self.self)
    }
}

import ArgumentParser
import SageBenchmarkCommands
import SageCurl

/// `sagellm-benchmark`: the same command as `sagellm bench`.
@main
struct SageBenchmarkTool: AsyncParsableCommand {
    static let configuration = SageBenchmarkMain.configuration

    /// Ctrl-C or SIGTERM cancels the run and ends it with status 130 or 143.
    /// In a build with the trait Curl, `http.transport: curl` is available to the benchmark too.
    static func main() async {
        CurlTransport.install()
        await CommandLineMain.run(Self.self)
    }
}

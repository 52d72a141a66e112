import ArgumentParser
import SageLLM

struct DetectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract: "Show which endpoint createAuto would use, and every local candidate it tried.",
        discussion: """
            The order: a configured base URL (--base-url, SAGE_CHAT_BASE_URL / OPENAI_BASE_URL, or the YAML \
            file) wins without probing; otherwise local engines are probed concurrently (vLLM on 8001 and \
            8000 first, then SGLang 30000, LMDeploy 23333, Ollama 11434, llama.cpp 8080) and the first in \
            that order that answers is used; otherwise the cloud fallback.
            """)

    @OptionGroup var endpoint: EndpointOptions

    @Flag(help: "Check a configured endpoint with GET /models (its model list fills in a missing model).")
    var verify = false

    @Option(name: .customLong("engine"), help: "Accept only these engine kinds among local candidates (repeatable): vllm, sglang, lmdeploy, ollama, llama.cpp, tgi.")
    var engines: [String] = []

    @Flag(help: "Also say whether a local engine is up and a cloud key is set, and what to do.")
    var check = false

    @Flag(help: "Print JSON: source, engine, base_url, model, candidates[].")
    var json = false

    func run() async throws {
        try await reportingErrors {
            let settings = try await endpoint.settings()
            let options = DetectionOptions(
                verifyConfiguredEndpoint: verify,
                acceptedEngines: engines.isEmpty ? nil : Set(engines.map { EngineKind($0) }))
            let detection = try await IntelligentLLMClient.detectEndpoint(
                settings: settings, detection: options, logger: Terminal.quietLogger)
            let service = check ? try await IntelligentLLMClient.checkService(settings: settings, logger: Terminal.quietLogger) : nil
            if json {
                if let service {
                    print(try Terminal.json(DetectReport(detection: detection, service: service)))
                } else {
                    print(try Terminal.json(detection))
                }
                return
            }
            print("endpoint:  \(detection.baseURL)")
            print("source:    \(detection.source.rawValue)")
            print("engine:    \(detection.engine)")
            print("model:     \(detection.model ?? "<first listed, asked at the first request>")")
            print("api key:   \(detection.apiKeyConfigured ? "configured" : "none")")
            print("reason:    \(detection.reason)")
            print("time:      \(Terminal.milliseconds(detection.elapsed))\(detection.fromCache ? " (cached)" : "")")
            for warning in detection.warnings { print("warning:   \(warning)") }
            if !detection.candidates.isEmpty {
                print("candidates (priority order):")
                for candidate in detection.candidates {
                    var line = "  \(candidate.status.rawValue.padding(10))  \(candidate.baseURL.padding(28))"
                    if let engine = candidate.engine { line += "  \(engine)" }
                    if let reason = candidate.reason { line += "  \(reason.rawValue)" }
                    if let detail = candidate.detail { line += ": \(detail)" }
                    line += "  (\(Terminal.milliseconds(candidate.elapsed)))"
                    print(line)
                }
            }
            if let service {
                print("")
                print(service)
            }
        }
    }
}

/// `detect --check --json`: both answers in one document.
private struct DetectReport: Encodable {
    var detection: EndpointDetection
    var service: ServiceCheck
}

extension String {
    /// Pads with spaces to at least `width` characters.
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}

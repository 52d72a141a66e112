import SageTesting
import Synchronization
import Foundation
import SageSimulator
import Testing

/// The `sagellm` executable, end to end: `simulate` on a free port, `chat` and `models` against it,
/// and a graceful stop on SIGINT.
@Suite("sagellm command line")
struct CommandLineTests {
    /// `sagellm` is built beside the test bundle (`swift build --build-tests` builds every product).
    static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sagellm")
    }

    final class Output: @unchecked Sendable {
        private let lock = NSLock()
        private var data = Data()
        func append(_ chunk: Data) { lock.withLock { data.append(chunk) } }
        var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
    }

    static func start(_ arguments: [String], environment: [String: String]? = nil) throws -> (Process, Output, Output) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let environment {
            // Only what the test gives, in an empty directory: no SAGE_*/OPENAI_* or sagellm.yaml of the machine's.
            process.environment = environment
            process.currentDirectoryURL = FileManager.default.temporaryDirectory
        }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let stdout = Output()
        let stderr = Output()
        out.fileHandleForReading.readabilityHandler = { stdout.append($0.availableData) }
        err.fileHandleForReading.readabilityHandler = { stderr.append($0.availableData) }
        try process.run()
        return (process, stdout, stderr)
    }

    static func run(_ arguments: [String], environment: [String: String]? = nil) async throws
        -> (status: Int32, stdout: String, stderr: String)
    {
        let (process, stdout, stderr) = try start(arguments, environment: environment)
        while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        try await Task.sleep(for: .milliseconds(50))  // let the pipe handlers drain
        return (process.terminationStatus, stdout.text, stderr.text)
    }

    @Test func clusterSimulateComparesPoliciesAsJSONAndTable() async throws {
        let arguments = [
            "cluster", "simulate", "--instances", "8", "--rate", "6", "--duration", "10", "--policies", "fifo,slo_aware", "--routing",
            "load_balanced", "--pd", "both", "--seed", "4",
        ]
        let json = try await Self.run(arguments + ["--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let output = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let results = try #require(output?["results"] as? [[String: Any]])
        // Per PD setting: the two baselines (FIFO with round robin and least loaded) and slo_aware.
        #expect(results.count == 6)
        for key in ["policy", "routing", "pd", "slo_compliance", "goodput_rps", "p50_latency_ms", "p99_latency_ms", "p99_ttft_ms", "cost_per_1k_tokens"] {
            #expect(results.allSatisfy { $0[key] != nil }, "every result has \(key)")
        }
        #expect(Set(results.compactMap { $0["pd"] as? Bool }) == [false, true])
        let again = try await Self.run(arguments + ["--json"])
        let strip = { (text: String) in text.replacing(/"wall_seconds" : [0-9.e-]+/, with: "") }
        #expect(strip(again.stdout) == strip(json.stdout), "the same seed gives the same results")

        let table = try await Self.run(arguments)
        #expect(table.status == 0)
        #expect(table.stdout.contains("slo_aware") && table.stdout.contains("(baseline)"))
        #expect(table.stdout.contains("best here: "), "the winning configuration is named")

        // Goodput against load: the table, the CSV (a row per load and configuration) and the chart page.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sagellm-loads-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }  // cleanup only
        let swept = try await Self.run(arguments + ["--loads", "0.5,1,2", "--csv", directory + "/sim.csv", "--html", directory + "/sim.html"])
        #expect(swept.status == 0, "\(swept.stderr)")
        #expect(swept.stdout.contains("good requests/s (TTFT and TPOT targets met) against offered load") && swept.stdout.contains("12 req/s"))
        let csv = try String(contentsOfFile: directory + "/sim.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.count == 1 + 3 * 6, "a header and a row per load and configuration")
        #expect(csv.first?.hasPrefix("offered_rate,policy,routing,pd,prefill_share,baseline") == true)
        let html = try String(contentsOfFile: directory + "/sim.html", encoding: .utf8)
        #expect(html.hasPrefix("<!DOCTYPE html>") && html.components(separatedBy: "<svg class=\"chart\"").count - 1 == 4)
        #expect(html.contains("offered load (req/s)") && !html.contains("<script"))
        let badLoads = try await Self.run(arguments + ["--loads", "2,1"])
        #expect(badLoads.status != 0 && badLoads.stderr.contains("increasing order"), "\(badLoads.stderr)")

        // Several prefill/decode splits in one comparison, each PD row naming its own, and the
        // workload's priority mix and prefix sharing.
        let splits = try await Self.run(
            arguments + ["--prefill-share", "0.2,0.5", "--priority-mix", "0,0,1,0,0", "--shared-prefix-share", "0.9", "--json"])
        #expect(splits.status == 0, "\(splits.stderr)")
        let splitOutput = try JSONSerialization.jsonObject(with: Data(splits.stdout.utf8)) as? [String: Any]
        let splitResults = try #require(splitOutput?["results"] as? [[String: Any]])
        #expect(splitResults.count == 3 + 2 * 3, "three rows without PD, three per split")
        #expect(splitResults.compactMap { $0["prefill_share"] as? Double }.sorted() == [0.2, 0.2, 0.2, 0.5, 0.5, 0.5])
        let scenario = try #require(splitOutput?["scenario"] as? [String: Any])
        #expect(scenario["priorityMix"] as? [Double] == [0, 0, 1, 0, 0] && scenario["sharedPrefixShare"] as? Double == 0.9, "\(scenario)")
        for (flag, value, message) in [
            ("--prefill-share", "0.99", "--prefill-share takes"), ("--priority-mix", "1,2,3", "--priority-mix takes five"),
            ("--shared-prefix-share", "1.5", "shared_prefix_share"),
        ] {
            let refused = try await Self.run(arguments + [flag, value])
            #expect(refused.status != 0 && refused.stderr.contains(message), "\(flag) \(value): \(refused.stderr)")
        }

        let bad = try await Self.run(["cluster", "simulate", "--policies", "fastest"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("unknown policies value 'fastest'"), "\(bad.stderr)")
    }

    @Test func simulateChatModelsAndGracefulStop() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable.path), "build the sagellm product first")
        let (server, _, serverLog) = try Self.start(["simulate", "--port", "0", "--model", "cli-model", "--ttft-ms", "0", "--tbt-ms", "1"])
        defer { if server.isRunning { server.terminate() } }
        var baseURL: String?
        let deadline = ContinuousClock.now + .seconds(20)
        while baseURL == nil, ContinuousClock.now < deadline {
            if let range = serverLog.text.range(of: #"http://127\.0\.0\.1:[0-9]+/v1"#, options: .regularExpression) {
                baseURL = String(serverLog.text[range])
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let url = try #require(baseURL, "the simulator did not say where it listens: \(serverLog.text)")

        let chat = try await Self.run(["chat", "--base-url", url, "--max-tokens", "5", "--json", "Hello there"])
        #expect(chat.status == 0, "\(chat.stderr)")
        let response = try JSONSerialization.jsonObject(with: Data(chat.stdout.utf8)) as? [String: Any]
        #expect(response?["model"] as? String == "cli-model")
        #expect((response?["usage"] as? [String: Any])?["completion_tokens"] as? Int == 5)

        let streamed = try await Self.run(["chat", "--base-url", url, "--max-tokens", "4", "Hi"])
        #expect(streamed.status == 0)
        #expect(streamed.stderr.contains("4 tokens"))

        let models = try await Self.run(["models", "--base-url", url])
        #expect(models.stdout.hasPrefix("cli-model\tvllm"))

        let wrongModel = try await Self.run(["chat", "--base-url", url, "--model", "nope", "Hi"])
        #expect(wrongModel.status == 1)
        #expect(wrongModel.stderr.contains("404"))
        #expect(wrongModel.stderr.contains("The model `nope` does not exist."))

        server.interrupt()
        while server.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        #expect(server.terminationStatus == 0)
        #expect(serverLog.text.contains("Simulated engine stopped."))
    }

    #if Curl
    /// With `SAGE_HTTP_TRANSPORT=curl`, the proxy the environment names carries the request
    /// (libcurl's absolute-form request line shows it), and `NO_PROXY` sends it past the proxy.
    @Test func theCurlTransportGoesThroughTheEnvironmentsProxy() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable.path), "build the sagellm product first")
        try await HostileHTTPServer.with(respond: { _ in [.send(HostileHTTPServer.response(body: HostileHTTPServer.goodChat))] }) { root, record in
            let proxy = String(root.dropLast("/v1".count))
            let environment = ["HOME": "/nonexistent-home", "SAGE_HTTP_TRANSPORT": "curl", "http_proxy": proxy]
            let arguments = ["chat", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--max-retries", "0", "--no-stream", "Hi"]
            let through = try await Self.run(arguments, environment: environment)
            #expect(through.status == 0, "\(through.stderr)")
            let head = record.heads.withLock { $0.last } ?? ""
            #expect(head.hasPrefix("POST http://127.0.0.1:9/v1/chat/completions HTTP/1.1"), "\(head)")
            var direct = environment
            direct["NO_PROXY"] = "127.0.0.1"
            let before = record.requests.load(ordering: .relaxed)
            let bypassed = try await Self.run(arguments, environment: direct)
            #expect(bypassed.status == 1 && bypassed.stderr.contains("connection failed"), "\(bypassed.stderr)")
            #expect(record.requests.load(ordering: .relaxed) == before, "NO_PROXY: the proxy saw nothing")
        }
    }

    /// An https endpoint through `HTTPS_PROXY`: libcurl tunnels with CONNECT, and trusts the
    /// server by the CA bundle that `SAGE_CA_BUNDLE` names.
    @Test func theCurlTransportTunnelsHTTPSThroughTheEnvironmentsProxy() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable.path), "build the sagellm product first")
        guard let certificates = try TLSTestServer.makeCertificates() else {
            Issue.record("openssl is not installed, so no certificates can be made for this test")
            return
        }
        defer { try? FileManager.default.removeItem(atPath: certificates.directory) }  // cleanup only
        let record = ConnectProxy.Record()
        try await TLSTestServer.with(certificates, requireClientCertificate: false, http2: false, answer: HostileHTTPServer.goodChat) { root in
            try await ConnectProxy.with(record: record) { proxy in
                let environment = [
                    "HOME": "/nonexistent-home", "SAGE_HTTP_TRANSPORT": "curl", "SAGE_CA_BUNDLE": certificates.ca, "HTTPS_PROXY": proxy,
                ]
                let result = try await Self.run(
                    ["chat", "--base-url", root, "--model", "m", "--max-retries", "0", "--no-stream", "Hi"], environment: environment)
                #expect(result.status == 0, "\(result.stderr)")
                let authority = root.dropFirst("https://".count).prefix { $0 != "/" }
                #expect(record.targets.withLock { $0 } == [String(authority)])
            }
        }
    }
    #endif

    @Test func unreachableServerIsOneClearLine() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable.path), "build the sagellm product first")
        let result = try await Self.run(["chat", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--max-retries", "0", "Hi"])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("error: SageLLM connection failed"))
        #expect(result.stderr.contains("http://127.0.0.1:9/v1/chat/completions"))
        let retried = try await Self.run(
            ["chat", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--max-retries", "2", "Hi"],
            environment: ["SAGE_RETRY_BASE_DELAY": "10ms", "HOME": "/nonexistent-home"])
        #expect(retried.status == 1)
        #expect(retried.stderr.contains("3 attempts"), "\(retried.stderr)")
    }

    @Test func repeatedChatPrintsEveryOutcomeAndTheMetrics() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable.path), "build the sagellm product first")
        var engine = SimulatedEngineConfiguration.instant(model: "m")
        engine.tbt = .milliseconds(1)
        engine.faults = FaultConfiguration(failStatus: 503, failFirst: 2)
        let environment = ["SAGE_RETRY_BASE_DELAY": "5ms", "HOME": "/nonexistent-home"]
        try await withSimulatorServer(configuration: engine) { simulator in
            let retried = try await Self.run(
                [
                    "chat", "--base-url", simulator.baseURL, "--max-tokens", "5", "--repeat", "6", "--concurrency", "3",
                    "--max-concurrent", "2", "--rate-limit", "0", "--json", "Hi",
                ], environment: environment)
            #expect(retried.status == 0, "\(retried.stderr)")
            let json = try JSONSerialization.jsonObject(with: Data(retried.stdout.utf8)) as? [String: Any]
            let results = try #require(json?["results"] as? [[String: Any]])
            #expect(results.map { $0["index"] as? Int } == [1, 2, 3, 4, 5, 6])
            #expect(results.allSatisfy { $0["ok"] as? Bool == true })
            let metrics = try #require(json?["metrics"] as? [String: Any])
            #expect(metrics["retries"] as? Int == 2)
            #expect(metrics["successful_requests"] as? Int == 6)
            #expect(simulator.engine.statistics().peakRunning <= 2)

            // Without retries the two failures stay in place, and the exit status says so.
            try simulator.engine.setFaults(FaultConfiguration(failStatus: 503, failFirst: 2))
            let failing = try await Self.run(
                ["chat", "--base-url", simulator.baseURL, "--max-tokens", "5", "--repeat", "4", "--max-retries", "0", "Hi"],
                environment: environment)
            #expect(failing.status == 1)
            let lines = failing.stdout.split(separator: "\n").map(String.init)
            #expect(lines.count >= 7, "\(failing.stdout)")
            #expect(lines[0].hasPrefix("#1 failed after 1 attempt(s): SageLLM HTTP error status"))
            #expect(lines[1].hasPrefix("#2 failed"))
            #expect(lines[2].hasPrefix("#3 ok"))
            #expect(lines[3].hasPrefix("#4 ok"))
            #expect(failing.stdout.contains("requests: 4 (2 ok, 2 failed, 0 cancelled), success rate 50.0%, retries 0"))
        }
    }

    @Test func badFlagsAreRejected() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable.path), "build the sagellm product first")
        let result = try await Self.run(["simulate", "--fail-rate", "3"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("failRate"))
    }

    @Test func detectAndChatFindTheEndpointThemselves() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable.path), "build the sagellm product first")
        let isolated = ["HOME": "/nonexistent-home", "PATH": "/usr/bin:/bin"]
        try await withSimulatorServer(configuration: .instant(model: "detect-model")) { simulator in
            let verified = try await Self.run(
                ["detect", "--json", "--verify", "--base-url", simulator.baseURL], environment: isolated)
            #expect(verified.status == 0, "\(verified.stderr)")
            let json = try JSONSerialization.jsonObject(with: Data(verified.stdout.utf8)) as? [String: Any]
            #expect(json?["source"] as? String == "explicit")
            #expect(json?["engine"] as? String == "vllm")
            #expect(json?["model"] as? String == "detect-model")
            #expect(json?["base_url"] as? String == simulator.baseURL)
            #expect((json?["candidates"] as? [Any])?.isEmpty == true)

            var environment = isolated
            environment["SAGE_CHAT_BASE_URL"] = simulator.baseURL
            let chat = try await Self.run(["chat", "--max-tokens", "3", "Hi"], environment: environment)
            #expect(chat.status == 0, "\(chat.stderr)")
            #expect(chat.stderr.contains("[environment: unknown at \(simulator.baseURL)"))
            #expect(chat.stderr.contains("detect-model | 3 tokens"))
        }

        var cloud = isolated
        cloud["SAGE_PROBE_LOCAL"] = "false"
        let detected = try await Self.run(["detect", "--json"], environment: cloud)
        let json = try JSONSerialization.jsonObject(with: Data(detected.stdout.utf8)) as? [String: Any]
        #expect(json?["source"] as? String == "cloud")
        #expect(json?["base_url"] as? String == "https://dashscope.aliyuncs.com/compatible-mode/v1")
        let keyless = try await Self.run(["chat", "Hi"], environment: cloud)
        #expect(keyless.status == 1)
        #expect(keyless.stderr.contains("SAGE_CHAT_API_KEY"))

        let missingFile = try await Self.run(["detect", "--config", "/nonexistent/sagellm.yaml"], environment: isolated)
        #expect(missingFile.status == 1)
        #expect(missingFile.stderr.contains("/nonexistent/sagellm.yaml"))
    }
}

extension CommandLineTests {
    @Test func benchmarkRunReportAndCompare() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable.path), "build the sagellm product first")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bench-cli-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }  // cleanup only
        let run = try await Self.run([
            "bench", "run", "--workload", "short", "--backend", "mock", "--mock-ttft-ms", "2", "--mock-tbt-ms", "1",
            "--num-prompts", "3", "--output", directory,
        ])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("short_input"))
        #expect(run.stdout.contains("Y1: "))
        #expect(FileManager.default.fileExists(atPath: directory + "/short_input_metrics.json"))
        for format in ["table", "json", "markdown", "html", "csv"] {
            let report = try await Self.run(["bench", "report", "--input", directory, "--format", format])
            #expect(report.status == 0, "\(format): \(report.stderr)")
            #expect(!report.stdout.isEmpty)
        }
        let compare = try await Self.run(["bench", "compare", directory, directory])
        #expect(compare.stdout.contains("mean_ttft_ms"))

        // The same command under its own name.
        let standalone = Self.executable.deletingLastPathComponent().appendingPathComponent("sagellm-benchmark")
        #expect(FileManager.default.isExecutableFile(atPath: standalone.path))

        for (arguments, expected) in [
            (["bench", "run", "--workload", "huge"], "unknown workload 'huge'"),
            (["bench", "run", "--backend", "tpu"], "unknown backend 'tpu'"),
            (["bench", "run", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1"], "does not answer"),
            (["bench", "run", "--dataset", "/nonexistent.jsonl"], "/nonexistent.jsonl"),
            (["bench", "run", "--num-prompts", "-2"], "--num-prompts"),
            (["bench", "report", "--input", "/nonexistent/run"], "/nonexistent/run"),
        ] {
            let result = try await Self.run(arguments)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.stderr.contains(expected), "\(arguments): \(result.stderr)")
        }
    }
}

extension CommandLineTests {
    /// `--local` starts `vllm serve MODEL --port P` from PATH: here a stand-in script that runs the simulator.
    @Test func benchmarkLocalModeStartsAndStopsTheServer() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable.path), "build the sagellm product first")
        let bin = FileManager.default.temporaryDirectory.appendingPathComponent("fake-vllm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: bin) }  // cleanup only
        let script = bin.appendingPathComponent("vllm")
        try """
            #!/bin/sh
            # Stand-in for: vllm serve MODEL --port PORT
            exec "\(Self.executable.path)" simulate --model "$2" --port "$4" --ttft-ms 1 --tbt-ms 1
            """.write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        let port = try await withSimulatorServer { $0.port }  // a port that was free a moment ago
        let output = bin.appendingPathComponent("results").path
        let environment = ["PATH": bin.path + ":/usr/bin:/bin", "HOME": "/nonexistent-home"]
        let run = try await Self.run(
            [
                "bench", "run", "--backend", "vllm", "--local", "--model", "stand-in", "--port", String(port), "--workload",
                "short", "--num-prompts", "2", "--output", output, "--startup-timeout", "30",
            ], environment: environment)
        #expect(run.status == 0, "\(run.stderr)")
        let metrics = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: output + "/short_input_metrics.json"))) as? [String: Any]
        #expect(metrics?["completed"] as? Int == 2)
        #expect(metrics?["model"] as? String == "stand-in")
        #expect(metrics?["backend_peak_memory_mb"] is Double, "the server's own peak memory, from its pid")
        // Stopped afterwards: nothing answers on the port.
        let models = try await Self.run(["models", "--base-url", "http://127.0.0.1:\(port)/v1", "--probe-timeout", "1"], environment: environment)
        #expect(models.status != 0)

        // A server that dies at startup: its last output is in the error.
        try "#!/bin/sh\necho 'CUDA out of memory while loading weights' >&2\nexit 3\n".write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        let failed = try await Self.run(
            ["bench", "run", "--backend", "vllm", "--local", "--model", "m", "--port", String(port), "--output", output],
            environment: environment)
        #expect(failed.status != 0)
        #expect(failed.stderr.contains("exited with status 3"), "\(failed.stderr)")
        #expect(failed.stderr.contains("CUDA out of memory"))
        let missing = try await Self.run(
            ["bench", "run", "--backend", "lmdeploy", "--local", "--model", "m", "--output", output], environment: environment)
        #expect(missing.stderr.contains("'lmdeploy' is not on PATH"), "\(missing.stderr)")
    }
}

extension CommandLineTests {
    @Test func theDemoRunsEveryStepOnTheEmbeddedEngine() async throws {
        let demo = try await Self.run(["demo"])
        #expect(demo.status == 0, "\(demo.stderr)")
        for step in 1...5 { #expect(demo.stdout.contains("\n\(step). ") || demo.stdout.hasPrefix("\(step). "), "step \(step) ran") }
        #expect(demo.stdout.contains("disaggregated (prefill on prefill), answered by decode"))
        #expect(demo.stdout.contains("short prompt") && demo.stdout.contains("direct, answered by decode"))
    }

    @Test func clusterChatSplitsALongPromptBetweenPrefillAndDecode() async throws {
        var prefill = SimulatedEngineConfiguration.instant(model: "m")
        prefill.role = .prefill
        var decoding = SimulatedEngineConfiguration.instant(model: "m")
        decoding.role = .decode
        let decode = decoding
        try await withSimulatorServer(configuration: prefill) { prefillServer in
            try await withSimulatorServer(configuration: decode) { decodeServer in
                let path = FileManager.default.temporaryDirectory.appendingPathComponent("pd-\(UUID().uuidString).yaml").path
                defer { try? FileManager.default.removeItem(atPath: path) }  // cleanup only
                try """
                    pd: {min_prompt_tokens: 100}
                    instances:
                      - {instance_id: p0, base_url: "\(prefillServer.baseURL)", model_name: m, instance_type: PREFILL}
                      - {instance_id: d0, base_url: "\(decodeServer.baseURL)", model_name: m, instance_type: DECODE}
                    """.write(toFile: path, atomically: true, encoding: .utf8)
                let long = String(repeating: "Summarize this. ", count: 40)
                let split = try await Self.run(["cluster", "chat", "--config", path, "--max-tokens", "8", "--json", long])
                #expect(split.status == 0, "stderr: \(split.stderr) stdout: \(split.stdout)")
                let splitOutput = try JSONSerialization.jsonObject(with: Data(split.stdout.utf8)) as? [String: Any]
                let splitResult = (splitOutput?["results"] as? [[String: Any]])?.first
                #expect(splitResult?["path"] as? String == "disaggregated")
                #expect(splitResult?["prefill_instance"] as? String == "p0")
                #expect(splitResult?["instance"] as? String == "d0")
                let table = try await Self.run(["cluster", "chat", "--config", path, "--max-tokens", "8", long])
                #expect(table.stdout.contains("disaggregated (prefill on p0)"), "\(table.stdout)")
                let short = try await Self.run(["cluster", "chat", "--config", path, "--max-tokens", "8", "--json", "Hi"])
                let shortOutput = try JSONSerialization.jsonObject(with: Data(short.stdout.utf8)) as? [String: Any]
                #expect((shortOutput?["results"] as? [[String: Any]])?.first?["path"] as? String == "direct")
            }
        }
    }

    @Test func clusterStatusAndChatOverAClusterFile() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable.path), "build the sagellm product first")
        try await withRefusedLoopbackPort { deadPort in
        try await withSimulatorServer(configuration: .instant(model: "m")) { first in
            try await withSimulatorServer(configuration: .instant(model: "m")) { second in
                let path = FileManager.default.temporaryDirectory.appendingPathComponent("cluster-\(UUID().uuidString).yaml").path
                defer { try? FileManager.default.removeItem(atPath: path) }  // cleanup only
                try """
                    scheduling_policy: fifo
                    routing_strategy: round_robin
                    instances:
                      - {instance_id: one, base_url: "\(first.baseURL)", model_name: m, max_concurrent_requests: 2}
                      - {instance_id: two, host: 127.0.0.1, port: \(second.port), model_name: m, max_concurrent_requests: 2}
                      - {instance_id: gone, host: 127.0.0.1, port: \(deadPort), model_name: m}
                    """.write(toFile: path, atomically: true, encoding: .utf8)
                let status = try await Self.run(["cluster", "status", "--config", path, "--json"])
                #expect(status.status == 0, "\(status.stderr)")
                let json = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
                #expect((json?["instances"] as? [[String: Any]])?.map { $0["instance_id"] as? String } == ["one", "two", "gone"])
                let probes = json?["probes"] as? [String: Any]
                #expect(probes?["one"] is NSNull && probes?["two"] is NSNull, "\(String(describing: probes))")
                #expect((probes?["gone"] as? String)?.isEmpty == false)

                let chat = try await Self.run(
                    ["cluster", "chat", "--config", path, "--repeat", "6", "--concurrency", "3", "--max-tokens", "3", "--json", "Hi"])
                #expect(chat.status == 0, "\(chat.stderr)")
                let output = try JSONSerialization.jsonObject(with: Data(chat.stdout.utf8)) as? [String: Any]
                let results = output?["results"] as? [[String: Any]] ?? []
                #expect(results.count == 6)
                #expect(Set(results.compactMap { $0["instance"] as? String }) == ["one", "two"], "the dead instance gets no traffic")
                #expect((output?["metrics"] as? [String: Any])?["completed_requests"] as? Int == 6)

                // The benchmark through the control plane.
                let benchOutput = FileManager.default.temporaryDirectory.appendingPathComponent("cp-bench-\(UUID().uuidString)").path
                defer { try? FileManager.default.removeItem(atPath: benchOutput) }  // cleanup only
                let bench = try await Self.run(
                    ["bench", "run", "--backend", "control-plane", "--cluster", path, "--workload", "short", "--num-prompts", "4",
                     "--output", benchOutput])
                // Contract Y1 is not met by these instant engines: the exit status says so.
                #expect(bench.status == 1, "\(bench.stderr)")
                #expect(bench.stderr.contains("contract Y1 failed"), "\(bench.stderr)")
                let metrics = try JSONSerialization.jsonObject(
                    with: Data(contentsOf: URL(fileURLWithPath: benchOutput + "/short_input_metrics.json"))) as? [String: Any]
                #expect(metrics?["completed"] as? Int == 4)
                #expect(metrics?["backend"] as? String == "control-plane")

                try "instances:\n  - {instance_id: x, model_name: m}\n".write(toFile: path, atomically: true, encoding: .utf8)
                let bad = try await Self.run(["cluster", "status", "--config", path])
                #expect(bad.status == 1)
                #expect(bad.stderr.contains("instance x needs base_url, or host and port") && bad.stderr.contains(path))
            }
        }
        }
    }
}

extension CommandLineTests {
    /// Writes a cluster file over `baseURLs` and returns its path.
    static func clusterFile(_ baseURLs: [String], model: String) throws -> String {
        let path = TestFiles.path("cluster", suffix: ".yaml")
        try ("instances:\n" + baseURLs.enumerated().map { "  - {instance_id: i\($0.offset), base_url: \"\($0.element)\", model_name: \(model)}\n" }.joined())
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Ctrl-C during a long `cluster chat` cancels the request through the control plane: the
    /// engine sees the abort, and the command ends quietly with status 130.
    @Test func ctrlCDuringAClusterChatAbortsTheRequestAndExits130() async throws {
        var configuration = SimulatedEngineConfiguration.instant(model: "m")
        configuration.tbt = .milliseconds(5)  // 2000 tokens: 10 s unless cancelled
        try await withSimulatorServer(configuration: configuration) { engine in
            let path = try Self.clusterFile([engine.baseURL], model: "m")
            defer { try? FileManager.default.removeItem(atPath: path) }  // cleanup only
            let (process, stdout, stderr) = try Self.start(["cluster", "--config", path, "chat", "--max-tokens", "2000", "Tell a long story."])
            #expect(await eventually(timeout: .seconds(20)) { engine.engine.statistics().running == 1 }, "generation started")
            process.interrupt()
            #expect(await eventually { engine.engine.statistics().aborted == 1 }, "the engine saw the abort")
            #expect(await eventually { !process.isRunning })
            process.waitUntilExit()
            #expect(process.terminationStatus == 130, "\(stderr.text)")
            #expect(engine.engine.statistics().completed == 0)
            try await Task.sleep(for: .milliseconds(50))  // let the pipe handlers drain
            #expect(stderr.text.isEmpty && stdout.text.isEmpty, "quietly: \(stdout.text) \(stderr.text)")
        }
    }

    /// Ctrl-C ends `cluster watch` quietly with status 130 (it printed `Error: CancellationError()` before).
    @Test func ctrlCEndsClusterWatchQuietly() async throws {
        try await withSimulatorServer(configuration: .instant(model: "m")) { engine in
            let path = try Self.clusterFile([engine.baseURL], model: "m")
            defer { try? FileManager.default.removeItem(atPath: path) }  // cleanup only
            let (process, stdout, stderr) = try Self.start(["cluster", "watch", "--config", path])
            #expect(await eventually(timeout: .seconds(20)) { stdout.text.contains("i0") }, "the table is drawn")
            process.interrupt()
            #expect(await eventually { !process.isRunning })
            process.waitUntilExit()
            #expect(process.terminationStatus == 130)
            try await Task.sleep(for: .milliseconds(50))  // let the pipe handlers drain
            #expect(stderr.text.isEmpty, "\(stderr.text)")
        }
    }
}

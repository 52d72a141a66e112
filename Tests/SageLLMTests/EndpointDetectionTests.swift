import SageTesting
import Foundation
import NIOHTTP1
import SageLLM
import SageSimulator
import Synchronization
import Testing

/// `createAuto`: configured endpoints first, then local engines in priority order, then the cloud.
/// Every candidate is a server on 127.0.0.1 with a free port, so the machine's own ports never matter.
extension TimingSensitiveTests {
@Suite("Endpoint detection")
struct EndpointDetectionTests {
    static func candidates(_ urls: String...) -> DetectionOptions {
        DetectionOptions(candidates: urls.map { ProbeCandidate(baseURL: $0) })
    }

    static func engine(_ ownedBy: String, model: String = "m") -> SimulatedEngineConfiguration {
        var configuration = SimulatedEngineConfiguration.instant(model: model)
        configuration.ownedBy = ownedBy
        return configuration
    }

    @Test func firstCandidateInPriorityOrderWinsEvenWhenALaterOneAnswersFirst() async throws {
        // The slow one answers after 1.5 s; the fast one, well before even on a loaded machine.
        // The probe limit of 5 s leaves the slow one room when the whole suite loads the 2 cores.
        let slow = CannedHTTPServer.Reply(body: CannedHTTPServer.modelList("slow-model", ownedBy: "vllm"), delay: .milliseconds(1500))
        try await CannedHTTPServer.with(["/v1/models": slow]) { slowURL in
            try await withSimulatorServer(configuration: Self.engine("vllm", model: "fast-model")) { fast in
                let detection = try await IntelligentLLMClient.detectEndpoint(
                    probeTimeout: .seconds(5), settings: SageSettings(), detection: Self.candidates(slowURL, fast.baseURL),
                    refresh: true)
                #expect(detection.source == .localProbe)
                #expect(detection.baseURL == slowURL)
                #expect(detection.model == "slow-model")
                #expect(detection.engine == .vllm)
                #expect(detection.candidates.map(\.status) == [.selected, .notNeeded])
                #expect(detection.candidates[1].engine == .vllm, "the faster one answered, and was not chosen")
            }
        }
    }

    @Test func aLaterCandidateWinsWhenEarlierOnesFail() async throws {
        try await CannedHTTPServer.withRefusedBaseURL { refused in
        try await withSimulatorServer(configuration: Self.engine("vllm", model: "second")) { simulator in
            let client = try await IntelligentLLMClient.createAuto(
                settings: SageSettings(), detection: Self.candidates(refused, simulator.baseURL), refresh: true)
            let detection = try #require(client.detection)
            #expect(detection.baseURL == simulator.baseURL)
            #expect(detection.candidates[0].status == .skipped)
            #expect(detection.candidates[0].reason == .refused)
            let answer = try await client.chat("hello", options: ChatOptions(maxTokens: 3))
            #expect(answer.model == "second")
            try await client.shutdown()
        }
        }
    }

    @Test func explicitURLBeatsALiveLocalEngine() async throws {
        try await withSimulatorServer(configuration: Self.engine("vllm", model: "local")) { local in
            try await withSimulatorServer(configuration: Self.engine("vllm", model: "configured")) { configured in
                let options = Self.candidates(local.baseURL)
                var settings = SageSettings()
                settings.chatBaseURL = configured.baseURL
                let explicit = try await IntelligentLLMClient.detectEndpoint(
                    settings: settings, detection: options, refresh: true)
                #expect(explicit.source == .explicit)
                #expect(explicit.baseURL == configured.baseURL)
                #expect(explicit.candidates.isEmpty, "a configured endpoint is used without probing")

                let fromEnvironment = try await SageSettings.load(
                    environment: ["OPENAI_BASE_URL": configured.baseURL], defaultFileLocations: [])
                let environment = try await IntelligentLLMClient.detectEndpoint(
                    settings: fromEnvironment, detection: options, refresh: true)
                #expect(environment.source == .environment)
                #expect(environment.baseURL == configured.baseURL)
                #expect(environment.model == nil, "without verification the model is asked at the first request")

                var verify = options
                verify.verifyConfiguredEndpoint = true
                let verified = try await IntelligentLLMClient.detectEndpoint(
                    settings: fromEnvironment, detection: verify, refresh: true)
                #expect(verified.model == "configured", "verification fills in the model")
                #expect(verified.engine == .vllm)
            }
        }
    }

    @Test func aConfiguredEndpointThatFailsVerificationIsAnErrorNotReplaced() async throws {
        try await CannedHTTPServer.withRefusedBaseURL { refused in
        try await withSimulatorServer(configuration: Self.engine("vllm")) { local in
            var settings = SageSettings()
            settings.chatBaseURL = refused
            var options = Self.candidates(local.baseURL)
            options.verifyConfiguredEndpoint = true
            let error = await sageError {
                _ = try await IntelligentLLMClient.detectEndpoint(settings: settings, detection: options, refresh: true)
            }
            #expect(error?.code == .connectionFailed)
            #expect(error?.endpoint == refused + "/models")
            #expect(error?.reason.contains("not replaced by a local engine") == true)
        }
        }
    }

    @Test func nothingAnsweringGivesTheCloudFallbackInAboutOneProbeTimeout() async throws {
        let hang = CannedHTTPServer.Reply(body: "", hang: true)
        try await CannedHTTPServer.withRefusedBaseURL { refused in
        try await CannedHTTPServer.with(["/v1/models": hang]) { first in
            try await CannedHTTPServer.with(["/v1/models": hang]) { second in
                try await CannedHTTPServer.with(["/v1/models": hang]) { third in
                    let probeTimeout = Duration.milliseconds(500)
                    let started = ContinuousClock.now
                    let client = try await IntelligentLLMClient.createAuto(
                        probeTimeout: probeTimeout, settings: SageSettings(),
                        detection: Self.candidates(first, second, third, refused), refresh: true)
                    let elapsed = ContinuousClock.now - started
                    let detection = try #require(client.detection)
                    #expect(detection.source == .cloud)
                    #expect(detection.baseURL == SageSettings.defaultCloudBaseURL)
                    #expect(detection.model == "qwen-max")
                    #expect(detection.candidates.map(\.reason) == [.timeout, .timeout, .timeout, .refused])
                    // Concurrent probes: about one timeout, below the sum of three (1.5 s) with room for a loaded machine.
                    #expect(elapsed >= probeTimeout)
                    #expect(elapsed < probeTimeout * 2.8, "took \(elapsed)")
                    #expect(detection.warnings.contains { $0.contains("SAGE_CHAT_API_KEY") })

                    // Without a key, the first request fails at once and names the variable to set.
                    let error = await sageError { _ = try await client.chat("hi") }
                    #expect(error?.code == .invalidConfiguration)
                    #expect(error?.reason.contains("SAGE_CHAT_API_KEY") == true)
                    try await client.shutdown()
                }
            }
        }
        }
    }

    @Test func emptyModelListsAndNonJSONAnswersAreSkippedWithTheirReasons() async throws {
        let empty = CannedHTTPServer.Reply(body: #"{"object":"list","data":[]}"#)
        let html = CannedHTTPServer.Reply(body: "<html><body>It works!</body></html>")
        let unauthorized = CannedHTTPServer.Reply(status: .unauthorized, body: #"{"error":{"message":"Unauthorized"}}"#)
        try await CannedHTTPServer.with(["/v1/models": empty]) { emptyURL in
            try await CannedHTTPServer.with(["/v1/models": html]) { htmlURL in
                try await CannedHTTPServer.with(["/v1/models": unauthorized]) { lockedURL in
                    try await withSimulatorServer(configuration: Self.engine("vllm")) { good in
                        let detection = try await IntelligentLLMClient.detectEndpoint(
                            settings: SageSettings(), detection: Self.candidates(emptyURL, htmlURL, lockedURL, good.baseURL),
                            refresh: true)
                        #expect(detection.baseURL == good.baseURL)
                        let reports = detection.candidates
                        #expect(reports.map(\.reason) == [.noModels, .invalidResponse, .httpStatus, nil])
                        #expect(reports[1].detail?.contains("It works!") == true)
                        #expect(reports[2].detail?.contains("401") == true)
                        #expect(reports[2].detail?.contains("VLLM_API_KEY") == true)
                    }
                }
            }
        }
    }

    @Test(arguments: [("vllm", EngineKind.vllm), ("sglang", .sglang), ("lmdeploy", .lmdeploy), ("llamacpp", .llamaCpp)])
    func engineKindComesFromOwnedBy(ownedBy: String, kind: EngineKind) async throws {
        try await withSimulatorServer(configuration: Self.engine(ownedBy)) { simulator in
            let detection = try await IntelligentLLMClient.detectEndpoint(
                settings: SageSettings(), detection: Self.candidates(simulator.baseURL), refresh: true)
            #expect(detection.engine == kind)
        }
    }

    @Test func engineKindComesFromFingerprintsWhenOwnedByIsNotAnEngine() async throws {
        let ollama: [String: CannedHTTPServer.Reply] = [
            "/v1/models": .init(body: CannedHTTPServer.modelList("llama3:8b", ownedBy: "library")),
            "/": .init(body: "Ollama is running"),
        ]
        try await CannedHTTPServer.with(ollama) { ollamaURL in
            let detection = try await IntelligentLLMClient.detectEndpoint(
                settings: SageSettings(), detection: Self.candidates(ollamaURL), refresh: true)
            #expect(detection.engine == .ollama)
        }
        // The simulator serves vLLM's /version, so an unfamiliar owned_by is still identified as vLLM.
        try await withSimulatorServer(configuration: Self.engine("my-org")) { simulator in
            let detection = try await IntelligentLLMClient.detectEndpoint(
                settings: SageSettings(), detection: Self.candidates(simulator.baseURL), refresh: true)
            #expect(detection.engine == .vllm)
        }
        let plain = ["/v1/models": CannedHTTPServer.Reply(body: CannedHTTPServer.modelList("gpt", ownedBy: "openai"))]
        try await CannedHTTPServer.with(plain) { url in
            let detection = try await IntelligentLLMClient.detectEndpoint(
                settings: SageSettings(), detection: Self.candidates(url), refresh: true)
            #expect(detection.engine == .openAICompatible)
        }
    }

    @Test func wrongKindAndUnservedModelsAreSkipped() async throws {
        try await withSimulatorServer(configuration: Self.engine("vllm", model: "a")) { vllm in
            try await withSimulatorServer(configuration: Self.engine("sglang", model: "b")) { sglang in
                var options = Self.candidates(vllm.baseURL, sglang.baseURL)
                options.acceptedEngines = [.sglang]
                let byKind = try await IntelligentLLMClient.detectEndpoint(
                    settings: SageSettings(), detection: options, refresh: true)
                #expect(byKind.baseURL == sglang.baseURL)
                #expect(byKind.candidates[0].reason == .wrongKind)

                let byModel = try await IntelligentLLMClient.detectEndpoint(
                    model: "b", settings: SageSettings(), detection: Self.candidates(vllm.baseURL, sglang.baseURL),
                    refresh: true)
                #expect(byModel.baseURL == sglang.baseURL)
                #expect(byModel.model == "b")
                #expect(byModel.candidates[0].reason == .modelNotServed)
            }
        }
    }

    @Test func localKeyIsSentToLocalEngines() async throws {
        var engine = Self.engine("vllm")
        engine.apiKey = "local-secret"
        try await withSimulatorServer(configuration: engine) { simulator in
            var settings = SageSettings()
            let without = try await IntelligentLLMClient.detectEndpoint(
                settings: settings, detection: Self.candidates(simulator.baseURL), refresh: true)
            #expect(without.candidates[0].reason == .httpStatus)
            settings.localAPIKey = "local-secret"
            let with = try await IntelligentLLMClient.detectEndpoint(
                settings: settings, detection: Self.candidates(simulator.baseURL), refresh: true)
            #expect(with.source == .localProbe)
            #expect(with.apiKeyConfigured)
        }
    }

    @Test func resultsAreCachedRefreshableAndHoldNoKeys() async throws {
        try await withSimulatorServer(configuration: Self.engine("vllm")) { simulator in
            var settings = SageSettings()
            settings.chatAPIKey = "sk-cache-test-secret"
            settings.localAPIKey = "sk-local-test-secret"
            let options = Self.candidates(simulator.baseURL)
            let first = try await IntelligentLLMClient.detectEndpoint(settings: settings, detection: options, refresh: true)
            let second = try await IntelligentLLMClient.detectEndpoint(settings: settings, detection: options)
            #expect(!first.fromCache)
            #expect(second.fromCache)
            #expect(second.baseURL == first.baseURL)
            let refreshed = try await IntelligentLLMClient.detectEndpoint(settings: settings, detection: options, refresh: true)
            #expect(!refreshed.fromCache)

            let json = String(decoding: try JSONEncoder().encode(first), as: UTF8.self)
            for text in [json, first.description, "\(settings)"] {
                #expect(!text.contains("sk-cache-test-secret"))
                #expect(!text.contains("sk-local-test-secret"))
            }
        }
    }

    @Test func sharedClientsAreOnePerKeyUnderConcurrencyAndClearable() async throws {
        try await withSimulatorServer(configuration: Self.engine("vllm", model: "shared-model")) { simulator in
            var configured = SageSettings()
            configured.chatBaseURL = simulator.baseURL
            let settings = configured
            let key = "shared-test-\(simulator.port)"
            let clients = try await withThrowingTaskGroup(of: IntelligentLLMClient.self) { group in
                for _ in 0..<16 { group.addTask { try await IntelligentLLMClient.shared(key: key, settings: settings) } }
                return try await group.reduce(into: [IntelligentLLMClient]()) { $0.append($1) }
            }
            #expect(clients.allSatisfy { $0 === clients[0] })
            #expect(IntelligentLLMClient.sharedKeys.contains(key))
            let answer = try await clients[0].chat("hi", options: ChatOptions(maxTokens: 2))
            #expect(answer.model == "shared-model")
            #expect(await IntelligentLLMClient.clearCache() >= 1)
            #expect(!IntelligentLLMClient.sharedKeys.contains(key))
            // Clearing shuts the shared clients down: a holder is told so, clearly.
            let closed = await sageError { _ = try await clients[0].chat("hi", options: ChatOptions(maxTokens: 2)) }
            #expect(closed?.description.contains("the client was shut down") == true, "\(String(describing: closed))")
            let fresh = try await IntelligentLLMClient.shared(key: key, settings: settings)
            #expect(fresh !== clients[0])
            #expect(try await fresh.chat("hi", options: ChatOptions(maxTokens: 2)).text.isEmpty == false)
            await IntelligentLLMClient.clearCache()
        }
    }

    @Test func checkServiceReportsWhatIsAvailableAndWhatToDo() async throws {
        try await withSimulatorServer(configuration: Self.engine("vllm", model: "up")) { simulator in
            let up = try await IntelligentLLMClient.checkService(
                settings: SageSettings(), candidates: [ProbeCandidate(baseURL: simulator.baseURL)])
            #expect(up.localAvailable)
            #expect(up.localEndpoint == simulator.baseURL)
            #expect(up.localModel == "up")
            #expect(!up.cloudConfigured)
            #expect(up.recommendedAction.contains(simulator.baseURL))
        }
        try await CannedHTTPServer.withRefusedBaseURL { refused in
            let down = try await IntelligentLLMClient.checkService(
                settings: SageSettings(), candidates: [ProbeCandidate(baseURL: refused)])
            #expect(!down.localAvailable)
            #expect(down.recommendedAction.contains("SAGE_CHAT_API_KEY"))
        }
    }

    @Test func theLocalKeyGoesOnlyToTheEndpointThatAsksForIt() async throws {
        let key = "local-secret-5150"
        let list = HostileHTTPServer.response(body: CannedHTTPServer.modelList("m", ownedBy: "vllm"))
        let denied = HostileHTTPServer.response(status: "401 Unauthorized", body: #"{"error":{"message":"no key"}}"#)
        try await HostileHTTPServer.with(respond: { request in
            [.send(request.head.contains("Bearer \(key)") ? list : denied)]
        }) { guarded, guardedRecord in
            try await HostileHTTPServer.with(respond: { _ in [.send(list)] }) { open, openRecord in
                var settings = SageSettings()
                settings.localAPIKey = APIKey(key)
                let client = try await IntelligentLLMClient.createAuto(
                    settings: settings, detection: Self.candidates(guarded, open), refresh: true)
                #expect(client.detection?.baseURL == guarded, "the guarded engine comes first and takes the key")
                try await client.shutdown()
                let guardedHeads = guardedRecord.heads.withLock { $0 }
                #expect(guardedHeads.first?.contains(key) == false, "asked first without the key")
                #expect(guardedHeads.contains { $0.contains(key) }, "then with it, after its 401")
                #expect(!openRecord.heads.withLock { $0 }.contains { $0.lowercased().contains("authorization") }, "never to the other")
            }
        }
    }
}
}

import SageTesting
import SageLLM
import SageSimulator
import Synchronization
import Testing

/// The resilient client end to end, against the simulator's fault injection over loopback.
@Suite("Resilient client against the simulator")
struct ResilientClientTests {
    /// Retries with short, exact backoffs, so tests wait milliseconds, not seconds.
    static func quickRetries(_ maxRetries: Int = 3) -> ResilienceConfiguration {
        ResilienceConfiguration(retry: RetryPolicy(maxRetries: maxRetries, baseDelay: .milliseconds(5), jitter: 0))
    }

    static func faulty(_ faults: FaultConfiguration, _ base: SimulatedEngineConfiguration = .instant(model: "m"))
        -> SimulatedEngineConfiguration
    {
        var engine = base
        engine.faults = faults
        return engine
    }

    @Test func twoFailuresWith503ThenSuccessTakeTwoRetries() async throws {
        let engine = Self.faulty(FaultConfiguration(failStatus: 503, failFirst: 2))
        try await withSimulatorAndClient(engine, resilience: Self.quickRetries()) { simulator, client in
            let answer = try await client.chat("hi", options: ChatOptions(maxTokens: 4, requestID: "req-7"))
            #expect(answer.attempts == 3)
            #expect(answer.requestID == "req-7-retry2", "each attempt has its own id")
            #expect(simulator.ledger.byStatus == [503: 2, 200: 1])
            let metrics = client.metrics()
            #expect(metrics.retries == 2)
            #expect(metrics.totalRequests == 1, "a request counts once, however many attempts")
            #expect(metrics.successfulRequests == 1)
        }
    }

    @Test func aStreamIsRetriedWhileNothingReachedTheCaller() async throws {
        let engine = Self.faulty(FaultConfiguration(failStatus: 503, failFirst: 1))
        try await withSimulatorAndClient(engine, resilience: Self.quickRetries()) { simulator, client in
            var answer = ChatStreamAccumulator()
            for try await chunk in client.streamChat("hi", options: ChatOptions(maxTokens: 5)) { answer.add(chunk) }
            #expect(answer.usage?.completionTokens == 5)
            #expect(simulator.ledger.byStatus == [503: 1, 200: 1])
            #expect(client.metrics().retries == 1)
            #expect(client.metrics().successfulRequests == 1)
        }
    }

    @Test func aBadRequestIsTriedOnce() async throws {
        let engine = Self.faulty(FaultConfiguration(failStatus: 400, failFirst: 1))
        try await withSimulatorAndClient(engine, resilience: Self.quickRetries()) { simulator, client in
            let error = await sageError { _ = try await client.chat("hi", options: ChatOptions(maxTokens: 4)) }
            #expect(error?.status == 400)
            #expect(error?.attempts == 1)
            #expect(simulator.ledger.total == 1, "a 400 is never sent twice")
            #expect(client.metrics().retries == 0)
            #expect(client.metrics().failedRequests == 1)
        }
    }

    @Test func theFinalErrorSaysHowManyAttemptsWereMade() async throws {
        let engine = Self.faulty(FaultConfiguration(failStatus: 503, failFirst: 100))
        try await withSimulatorAndClient(engine, resilience: Self.quickRetries(2)) { simulator, client in
            let error = await sageError { _ = try await client.chat("hi", options: ChatOptions(maxTokens: 4)) }
            #expect(error?.status == 503)
            #expect(error?.attempts == 3)
            #expect(error?.description.contains("3 attempts") == true)
            #expect(simulator.ledger.byStatus == [503: 3])
            // The seed's API-error family: endpoint, status, body, request id.
            let api = try #require(error?.apiError)
            #expect(api.endpoint == simulator.baseURL + "/chat/completions")
            #expect(api.status == 503)
            #expect(api.body?.contains("injected failure") == true)
            #expect(api.requestID?.hasSuffix("-retry2") == true)
        }
    }

    @Test func retryAfterOfOneSecondIsWaitedOut() async throws {
        let engine = Self.faulty(FaultConfiguration(failStatus: 429, failFirst: 1, retryAfterSeconds: 1))
        try await withSimulatorAndClient(engine, resilience: Self.quickRetries()) { simulator, client in
            let started = ContinuousClock.now
            let answer = try await client.chat("hi", options: ChatOptions(maxTokens: 2))
            #expect(ContinuousClock.now - started >= .seconds(1), "Retry-After: 1 wins over the 5 ms backoff")
            #expect(answer.attempts == 2)
            #expect(simulator.ledger.byStatus == [429: 1, 200: 1])
        }
    }

    @Test func aDisconnectAfterTheFirstStreamedTokenIsNotRetried() async throws {
        let engine = Self.faulty(FaultConfiguration(disconnectAfterTokens: 1))
        try await withSimulatorAndClient(engine, resilience: Self.quickRetries()) { simulator, client in
            var received = ""
            let error = await sageError {
                for try await chunk in client.streamChat("hi", options: ChatOptions(maxTokens: 8)) {
                    received += chunk.contentDelta
                }
            }
            #expect(!received.isEmpty, "the first token arrived")
            #expect(error?.code == .streamInterrupted)
            #expect(error?.receivedPartialOutput == true)
            #expect(error?.attempts == 1)
            #expect(error?.description.contains("not retried") == true)
            #expect(simulator.ledger.total == 1)
            #expect(client.metrics().retries == 0)
            #expect(client.metrics().failedRequests == 1)
        }
    }

    @Test func maxConcurrentTwoKeepsTheServerAtTwoRunning() async throws {
        var base = SimulatedEngineConfiguration.instant(model: "m")
        // 100 ms per request: long enough that the two allowed requests overlap on the server even
        // when the whole suite loads the 2 cores (with 20 ms they once never met).
        base.tbt = .milliseconds(10)
        var resilience = Self.quickRetries()
        resilience.maxConcurrent = 2
        try await withSimulatorAndClient(base, resilience: resilience) { simulator, client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<12 {
                    group.addTask {
                        let options = ChatOptions(maxTokens: 10)
                        if index.isMultiple(of: 2) {
                            _ = try await client.chat("request \(index)", options: options)
                        } else {
                            for try await _ in client.streamChat("request \(index)", options: options) {}
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(simulator.engine.statistics().peakRunning == 2)
            #expect(simulator.engine.statistics().completed == 12)
            #expect(client.metrics().successfulRequests == 12)
            // A batch goes through the same bound.
            let results = await client.batchGenerate(
                prompts: (0..<8).map { "batch \($0)" }, options: ChatOptions(maxTokens: 10), concurrency: 8)
            #expect(results.allSatisfy { (try? $0.get()) != nil })
            #expect(simulator.engine.statistics().peakRunning == 2)
        }
    }

    @Test func aRateOf120PerMinuteSpacesRequestsHalfASecondApart() async throws {
        let clock = ManualClock()
        var resilience = Self.quickRetries()
        resilience.requestsPerMinute = 120
        resilience.clock = clock
        try await withSimulatorAndClient(.instant(model: "m"), resilience: resilience) { _, client in
            var starts: [Duration] = []
            for _ in 0..<4 {
                _ = try await client.chat("hi", options: ChatOptions(maxTokens: 1))
                starts.append(clock.now.offset)
            }
            #expect(starts == [.zero, .milliseconds(500), .seconds(1), .milliseconds(1500)])
            #expect(clock.sleeps.withLock { $0 } == [.milliseconds(500), .milliseconds(500), .milliseconds(500)])
        }
    }

    @Test func aTokenBudgetMakesTheNextRequestWaitForTheTokensUsed() async throws {
        let clock = ManualClock()
        var resilience = Self.quickRetries()
        resilience.tokensPerMinute = 600  // 10 per second
        resilience.clock = clock
        try await withSimulatorAndClient(.instant(model: "m"), resilience: resilience) { _, client in
            // Reserves 4 + 400 / 4 = 104 of 600 up front; the usage report settles it to what was used.
            let first = try await client.chat(String(repeating: "word ", count: 80), options: ChatOptions(maxTokens: 4))
            let used = try #require(first.usage?.totalTokens)
            #expect(clock.sleeps.withLock { $0 }.isEmpty)
            // A request estimated at the whole budget waits until what the first used is paid back.
            _ = try await client.chat("x", options: ChatOptions(maxTokens: 600))
            let waited = try #require(clock.sleeps.withLock { $0 }.first)
            #expect(abs(waited.seconds - Double(used) / 10) < 0.01, "waited \(waited) for \(used) tokens")
        }
    }

    @Test func aBatchKeepsFailingItemsInPlace() async throws {
        try await withSimulatorAndClient(.instant(model: "m"), resilience: Self.quickRetries()) { simulator, client in
            let tooLong = String(repeating: "word ", count: 9_000)  // over the 8192-token context: 400
            let prompts = ["one", tooLong, "three", tooLong, "five"]
            let results = await client.batchGenerate(prompts: prompts, options: ChatOptions(maxTokens: 3), concurrency: 3)
            #expect(results.count == 5)
            for index in [0, 2, 4] {
                #expect((try? results[index].get())?.usage?.completionTokens == 3, "item \(index)")
            }
            for index in [1, 3] {
                guard case .failure(let error) = results[index] else {
                    Issue.record("item \(index) should have failed")
                    continue
                }
                #expect(error.status == 400)
                #expect(error.attempts == 1)
            }
            #expect(simulator.ledger.byStatus == [200: 3, 400: 2])
            let metrics = client.metrics()
            #expect(metrics.successfulRequests == 3)
            #expect(metrics.failedRequests == 2)
            #expect(metrics.successRate == 0.6)
        }
    }

    @Test func healthMeansAnAnswerNotAnIdlePool() async throws {
        try await withSimulatorAndClient(.instant(model: "m"), resilience: Self.quickRetries()) { simulator, client in
            let probed = await client.healthCheck()
            #expect(probed.healthy)
            #expect(probed.evidence == .probe)
            #expect(probed.endpoint == simulator.baseURL)
            _ = try await client.chat("hi", options: ChatOptions(maxTokens: 2))
            let recent = await client.healthCheck()
            #expect(recent.healthy)
            #expect(recent.evidence == .recentAnswer)
            #expect(recent.metrics.successfulRequests == 1)
            #expect(recent.connectionsInUse == 0)
            #expect(recent.poolSize == 64)
        }
        // Nothing listens on a port that was just closed.
        let port = try await withSimulatorServer { $0.port }
        let client = try IntelligentLLMClient(
            configuration: LLMClientConfiguration(baseURL: "http://127.0.0.1:\(port)/v1", model: "m"))
        let report = await client.healthCheck(probeTimeout: .seconds(2))
        try await client.shutdown()
        #expect(!report.healthy)
        #expect(report.evidence == .probeFailed)
        #expect(report.lastError?.contains("127.0.0.1:\(port)") == true)
    }

    @Test func warmUpOpensThePoolAheadOfDemand() async throws {
        let models = CannedHTTPServer.Reply(body: CannedHTTPServer.modelList("m", ownedBy: "vllm"), delay: .milliseconds(50))
        let connections = CannedHTTPServer.ConnectionCount()
        try await CannedHTTPServer.with(["/v1/models": models], connections: connections) { baseURL in
            var configuration = LLMClientConfiguration(baseURL: baseURL, model: "m")
            configuration.poolSize = 4
            let client = try IntelligentLLMClient(configuration: configuration)
            try await client.warmUp()
            #expect(connections.value.load(ordering: .relaxed) == 4, "the whole pool is open")
            try await client.warmUp()
            #expect(connections.value.load(ordering: .relaxed) == 4, "and reused, not opened again")
            #expect(await client.healthCheck().evidence == .recentAnswer)
            try await client.shutdown()
        }
    }

    /// Runs `body` with a client whose one `maxConcurrent` slot is held by a request that
    /// would take 10 s (far longer than any test needs, however loaded the machine); that
    /// request is then cancelled, freeing the slot, and `afterwards` runs with the client.
    static func withTheOnlySlotBusy(
        _ body: @Sendable (RunningSimulator, IntelligentLLMClient) async throws -> Void,
        afterwards: @Sendable (IntelligentLLMClient) async throws -> Void = { _ in }
    ) async throws {
        var base = SimulatedEngineConfiguration.instant(model: "m")
        base.tbt = .milliseconds(20)
        var resilience = Self.quickRetries()
        resilience.maxConcurrent = 1
        try await withSimulatorAndClient(base, resilience: resilience) { simulator, client in
            let busy = Task { try await client.chat("long", options: ChatOptions(maxTokens: 500)) }
            #expect(await eventually { simulator.engine.statistics().running == 1 })
            do {
                try await body(simulator, client)
            } catch {
                busy.cancel()
                throw error
            }
            busy.cancel()
            _ = await busy.result
            try await afterwards(client)
        }
    }

    @Test func cancellingARequestWaitingForASlotGivesItUp() async throws {
        try await Self.withTheOnlySlotBusy { simulator, client in
            let waiting = Task { try await client.chat("waits", options: ChatOptions(maxTokens: 1)) }
            #expect(await eventually { await client.healthCheck().requestsWaiting == 1 })
            waiting.cancel()
            let error = await sageError { _ = try await waiting.value }
            #expect(error?.code == .cancelled)
            #expect(client.metrics().cancelledRequests == 1)
            #expect(simulator.engine.statistics().admitted == 1, "the cancelled request was never sent")
        }
    }

    @Test func theDeadlineAlsoBoundsTheWaitForASlot() async throws {
        try await Self.withTheOnlySlotBusy { _, client in
            let started = ContinuousClock.now
            let error = await sageError { _ = try await client.chat("waits", options: ChatOptions(maxTokens: 1, timeout: .milliseconds(300))) }
            #expect(error?.code == .timeout)
            #expect(error?.timeoutKind == .total)
            #expect(error?.reason.contains("slot") == true, "\(String(describing: error))")
            #expect(ContinuousClock.now - started < .seconds(5))
        } afterwards: { client in
            // The slot is free again: the timed-out waiter took none.
            let answer = try await client.chat("after", options: ChatOptions(maxTokens: 1))
            #expect(answer.attempts == 1)
        }
    }

    @Test func aRateLimitTurnAfterTheDeadlineFailsAtOnce() async throws {
        var resilience = Self.quickRetries()
        resilience.requestsPerMinute = 1
        try await withSimulatorAndClient(resilience: resilience) { _, client in
            _ = try await client.chat("first", options: ChatOptions(maxTokens: 1))
            let started = ContinuousClock.now
            let error = await sageError { _ = try await client.chat("second", options: ChatOptions(maxTokens: 1, timeout: .seconds(2))) }
            #expect(error?.code == .timeout)
            #expect(error?.reason.contains("rate-limit turn") == true, "\(String(describing: error))")
            #expect(ContinuousClock.now - started < .seconds(1), "no wait for a turn that comes in about a minute")
            var stream = client.streamChat("third", options: ChatOptions(maxTokens: 1, timeout: .seconds(2))).makeAsyncIterator()
            let streamError = await sageError { _ = try await stream.next() }
            #expect(streamError?.code == .timeout)
        }
    }
}

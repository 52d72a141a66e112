import SageTesting
import Synchronization
import Testing

@testable import SageSimulator

@Suite("Simulated engine")
struct SimulatedEngineTests {
    @Test func tokenizerRules() {
        #expect(SimulatedTokenizer.count("hello") == 2)  // "hell" "o"
        #expect(SimulatedTokenizer.count(" the cat") == 2)  // " the" " cat"
        #expect(SimulatedTokenizer.count("a, b!") == 4)  // "a" "," " b" "!"
        #expect(SimulatedTokenizer.count("caf\u{e9}") == 2)  // "caf" "é"
        #expect(SimulatedTokenizer.count("line\n\nnext") == 4)
        #expect(SimulatedTokenizer.tokenize("same text") == SimulatedTokenizer.tokenize("same text"))
        let chat = SimulatedTokenizer.tokenize(messages: [("user", "hi all")])
        #expect(chat.count == SimulatedTokenizer.tokensPerMessage + 2 + SimulatedTokenizer.generationPromptTokens)
    }

    @Test func everyVocabularyWordIsOneToken() {
        for word in SimulatedEngine.vocabulary {
            #expect(SimulatedTokenizer.count(word) == 1, "\(word)")
        }
    }

    @Test func sameSeedSameTextAndTiming() async throws {
        func run() async throws -> (String, Int) {
            let engine = try SimulatedEngine(configuration: .instant(model: "m"))
            var text = ""
            let done = try await engine.generate(EngineRequest(promptTokens: SimulatedTokenizer.tokenize("seeded"), maxTokens: 10)) { step in
                for token in step.tokens { text += token.text }
            }
            return (text, done.completionTokens)
        }
        let first = try await run()
        let second = try await run()
        #expect(first == second)
        #expect(first.1 == 10)
    }

    @Test func timeToFirstTokenFollowsPrefillSpeed() async throws {
        let clock = ManualClock()
        let engine = try SimulatedEngine(
            configuration: .init(model: "m", ttft: .milliseconds(10), tbt: .zero, prefillTokensPerSecond: 10_000, jitter: 0), clock: clock)
        let prompt = Array(repeating: 7, count: 1_000).enumerated().map { $0.offset + $0.element }
        let done = try await engine.generate(EngineRequest(promptTokens: prompt, maxTokens: 1)) { _ in }
        // 10 ms + 1000 tokens / 10k tok/s = 110 ms, as the engine records it and as its clock waited
        #expect(done.timeToFirstToken == .milliseconds(110))
        #expect(clock.sleeps.withLock { $0 } == [.milliseconds(110)])
    }

    /// Stepped like vLLM: a 1,000-token prompt in chunks of the 512-token budget (20 ms + 51.2 ms,
    /// then 20 ms + 48.8 ms), its first token at the end of the step that completes it, then one
    /// per 20 ms step; a prompt whose KV cache arrived skips the chunks and waits its transfer.
    @Test func steppedEngineChunksThePromptAndStepsTheDecode() async throws {
        let clock = ManualClock()
        var configuration = SimulatedEngineConfiguration(model: "m", ttft: .zero, tbt: .zero, prefillTokensPerSecond: 10_000, jitter: 0, prefixCaching: false)
        configuration.steps = BatchSteps(stepTime: .milliseconds(20), timePerDecodeSequence: .zero, maxBatchedTokens: 512)
        configuration.kvBytesPerToken = 1_000
        configuration.kvTransferBytesPerSecond = 10_000_000  // 1,000 tokens: 100 ms
        let engine = try SimulatedEngine(configuration: configuration, clock: clock)
        let prompt = (0..<1_000).map { $0 + 100 }
        var steps: [Int] = []
        let done = try await engine.generate(EngineRequest(promptTokens: prompt, maxTokens: 3)) { steps.append($0.tokens.count) }
        #expect(abs((done.timeToFirstToken - .milliseconds(140)) / .microseconds(1)) < 10, "\(done.timeToFirstToken)")
        #expect(abs((clock.now.offset - .milliseconds(180)) / .microseconds(1)) < 10, "\(clock.now.offset)")
        #expect(steps == [1, 1, 1] && done.completionTokens == 3)

        var remote = EngineRequest(promptTokens: prompt, maxTokens: 2)
        remote.promptComputedRemotely = true
        let before = clock.now
        let decoded = try await engine.generate(remote) { _ in }
        // 100 ms of transfer, then two decode steps.
        #expect(abs((before.duration(to: clock.now) - .milliseconds(140)) / .microseconds(1)) < 10)
        #expect(abs((decoded.timeToFirstToken - .milliseconds(120)) / .microseconds(1)) < 10)

        configuration.steps = BatchSteps(stepTime: .milliseconds(20), timePerDecodeSequence: .zero, maxBatchedTokens: 256)
        configuration.maxBatch = 256
        #expect(throws: SimulatorError.self) { try configuration.validate() }
    }

    @Test func prefixCacheShortensRepeatedPrompts() async throws {
        let engine = try SimulatedEngine(
            configuration: .init(model: "m", ttft: .zero, tbt: .zero, prefillTokensPerSecond: 10_000, jitter: 0))
        let prompt = (0..<320).map { $0 + 200 }
        let cold = try await engine.generate(EngineRequest(promptTokens: prompt, maxTokens: 1)) { _ in }
        let warm = try await engine.generate(EngineRequest(promptTokens: prompt, maxTokens: 1)) { _ in }
        #expect(cold.cachedPromptTokens == 0)
        #expect(warm.cachedPromptTokens == 319 / 16 * 16)
        #expect(warm.timeToFirstToken < cold.timeToFirstToken)
        let statistics = engine.statistics()
        #expect(statistics.prefixCacheQueries == 640)
        #expect(statistics.prefixCacheHits == warm.cachedPromptTokens)
    }

    /// On real time (a clock that does not wait lets each request run to its end before the
    /// next starts); only lower bounds, which a loaded machine cannot break.
    @Test func batchLimitQueuesTheRest() async throws {
        let engine = try SimulatedEngine(
            configuration: .init(model: "m", ttft: .zero, tbt: .milliseconds(5), prefillTokensPerSecond: 0, jitter: 0, maxBatch: 2))
        let waits = try await withThrowingTaskGroup(of: Duration.self) { group in
            for index in 0..<6 {
                group.addTask {
                    try await engine.generate(EngineRequest(promptTokens: [index + 100], maxTokens: 10)) { _ in }.queueWait
                }
            }
            var all: [Duration] = []
            for try await wait in group { all.append(wait) }
            return all.sorted()
        }
        let statistics = engine.statistics()
        #expect(statistics.peakRunning == 2)
        #expect(statistics.completed == 6)
        #expect(statistics.running == 0)
        #expect(waits[5] >= .milliseconds(80))  // the last pair waited for two rounds of ~50 ms
    }

    @Test func cancelledWaiterLeavesTheQueue() async throws {
        let engine = try SimulatedEngine(
            configuration: .init(model: "m", ttft: .zero, tbt: .milliseconds(20), prefillTokensPerSecond: 0, jitter: 0, maxBatch: 1))
        let holder = Task { try await engine.generate(EngineRequest(promptTokens: [1], maxTokens: 20)) { _ in } }
        let waiter = Task { try await engine.generate(EngineRequest(promptTokens: [2], maxTokens: 1)) { _ in } }
        while engine.statistics().waiting == 0 { await Task.yield() }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(engine.statistics().waiting == 0)
        _ = try await holder.value
        #expect(engine.statistics().running == 0)
    }

    @Test func contextLimitIsChecked() throws {
        let engine = try SimulatedEngine(configuration: .init(model: "m", maxContext: 64))
        let error = #expect(throws: SimulatorError.self) {
            try engine.validate(EngineRequest(promptTokens: Array(0..<60), maxTokens: 10))
        }
        #expect(error?.code == .contextLengthExceeded)
        #expect(error?.message.contains("maximum context length is 64") == true)
    }

    @Test func badConfigurationNamesTheSetting() {
        let error = #expect(throws: SimulatorError.self) {
            try SimulatedEngine(configuration: .init(maxBatch: 0))
        }
        #expect(error?.message.hasPrefix("maxBatch") == true)
        #expect(throws: SimulatorError.self) { try FaultConfiguration(failRate: 2).validate() }
    }
}

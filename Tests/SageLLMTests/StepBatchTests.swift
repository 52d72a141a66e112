import SageSupport
import Testing

/// The engine step model shared by the cluster simulation and the simulated engine: decodes
/// first, prompt chunks in the rest of the token budget, runs of identical steps in one go.
@Suite struct StepBatchTests {
    /// 10 ms a step, 1 ms per decoding sequence, 1,000 prompt tokens per second, 100 tokens a step.
    static let cost = StepCost(baseSeconds: 0.010, secondsPerDecodeSequence: 0.001, prefillTokensPerSecond: 1_000, maxBatchedTokens: 100)

    static func approximately(_ a: Double?, _ b: Double) -> Bool { a.map { abs($0 - b) < 1e-9 } ?? false }

    @Test func aLonePromptIsChunkedThenDecodedOneTokenPerStep() {
        var batch = StepBatch(cost: Self.cost)
        var events: [StepBatch.Event] = []
        batch.add(id: 1, prefillTokens: 250, outputTokens: 3, now: 0, events: &events)
        // Chunks of 100, 100, 50 tokens: 110 ms, 110 ms, 60 ms; the third step yields the first
        // token. The steps change after the second.
        #expect(Self.approximately(batch.nextChange, 0.220))
        batch.advance(to: 10, events: &events)
        #expect(events.map(\.kind) == [.firstToken, .finished])
        #expect(Self.approximately(events[0].time, 0.280))
        // Then two decode steps of 11 ms each.
        #expect(Self.approximately(events[1].time, 0.302))
        #expect(batch.isEmpty && batch.nextChange == nil)
    }

    @Test func aLongPromptStretchesTheDecodeStepsBesideIt() {
        var batch = StepBatch(cost: Self.cost)
        var events: [StepBatch.Event] = []
        batch.add(id: 1, prefillTokens: 0, outputTokens: 20, now: 0, events: &events)  // decoding from the start
        #expect(Self.approximately(batch.nextBoundary, 0.011))
        batch.add(id: 2, prefillTokens: 396, outputTokens: 1, now: 0.005, events: &events)  // joins at 11 ms
        batch.advance(to: 0.011, events: &events)
        #expect(events.map(\.kind) == [.firstToken])
        // Each step now carries one decode and 99 prompt tokens: 10 + 1 + 99 ms.
        #expect(Self.approximately(batch.nextBoundary, 0.011 + 0.110))
        batch.advance(to: 100, events: &events)
        let promptDone = events.first { $0.id == 2 && $0.kind == .finished }
        #expect(Self.approximately(promptDone?.time, 0.011 + 4 * 0.110))
        let decodeDone = events.first { $0.id == 1 && $0.kind == .finished }
        // 1 step alone, 4 stretched steps, then 15 alone again.
        #expect(Self.approximately(decodeDone?.time, 0.011 * 16 + 4 * 0.110))
    }

    @Test func sequencesJoinAtTheNextBoundaryAndLeaveWhenRemoved() {
        var batch = StepBatch(cost: Self.cost)
        var events: [StepBatch.Event] = []
        batch.add(id: 1, prefillTokens: 0, outputTokens: 1_000, now: 0, events: &events)
        batch.add(id: 2, prefillTokens: 0, outputTokens: 1_000, now: 0.004, events: &events)
        #expect(batch.generated(id: 2) == 0)
        batch.advance(to: 0.011 + 0.012 * 10, events: &events)
        #expect(batch.generated(id: 1) == 11)
        #expect(batch.generated(id: 2) == 10)
        #expect(batch.remove(id: 1, now: 0.2, events: &events))
        #expect(!batch.remove(id: 1, now: 0.2, events: &events))
        #expect(batch.generated(id: 1) == nil)
        batch.advance(to: 1_000, events: &events)
        #expect(batch.isEmpty)
        #expect(events.filter { $0.kind == .finished }.map(\.id) == [2])
    }

    @Test func stepsOfIdenticalRunsAreTakenInOneGoWithTheSameResult() {
        // Many sequences, stepped once to the end and once in small increments: the same events.
        func run(increment: Double) -> [StepBatch.Event] {
            var batch = StepBatch(cost: Self.cost)
            var events: [StepBatch.Event] = []
            for id in 0..<20 {
                batch.add(id: id, prefillTokens: id % 3 == 0 ? 0 : 37 * id, outputTokens: 5 + id * 7, now: Double(id) * 0.013, events: &events)
            }
            var now = 0.3
            while !batch.isEmpty {
                now += increment
                batch.advance(to: now, events: &events)
            }
            return events.sorted { ($0.time, $0.id) < ($1.time, $1.id) }
        }
        let coarse = run(increment: 1_000)
        let fine = run(increment: 0.0007)
        #expect(coarse.count == 40)
        #expect(coarse.map(\.id) == fine.map(\.id))
        #expect(zip(coarse, fine).allSatisfy { abs($0.time - $1.time) < 1e-6 && $0.kind == $1.kind })
    }

    @Test func impossibleCostsAreNamed() {
        #expect(StepCost(baseSeconds: 0, secondsPerDecodeSequence: 0, prefillTokensPerSecond: 1, maxBatchedTokens: 8).problem != nil)
        #expect(StepCost(baseSeconds: 0.01, secondsPerDecodeSequence: -1, prefillTokensPerSecond: 1, maxBatchedTokens: 8).problem != nil)
        #expect(StepCost(baseSeconds: 0.01, secondsPerDecodeSequence: 0, prefillTokensPerSecond: .infinity, maxBatchedTokens: 8).problem != nil)
        #expect(StepCost(baseSeconds: 0.01, secondsPerDecodeSequence: 0, prefillTokensPerSecond: 1, maxBatchedTokens: 1).problem != nil)
        #expect(Self.cost.problem == nil)
    }
}

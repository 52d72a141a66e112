import SageLLM
import Testing

@testable import SageControlPlane

/// The dispatch path's decisions, event by event, without I/O.
@Suite("Dispatch machine")
struct DispatchMachineTests {
    static func request(phase: RequestPhase = .whole) -> QueuedRequest {
        QueuedRequest(
            id: 1, model: "m", placement: RequestPlacement(), arrival: .now, deadline: nil, prefixBlocks: [], excluded: [],
            topologyAnchor: nil, phase: phase)
    }

    static func lease(_ id: String) -> Lease {
        Lease(
            requestID: 1, instance: SharedInstanceSpec(InstanceSpec(id: id, baseURL: "http://127.0.0.1:9/v1", model: "m")), position: 0, arrival: .now, dispatched: .now,
            placement: RequestPlacement(), policy: .fifo)
    }

    static func status(_ code: Int) -> SageLLMError {
        var error = SageLLMError(code: .httpStatus, reason: "the server answered \(code)")
        error.status = code
        return error
    }

    static let unavailable = status(503)

    @Test func aRetryableFailureFailsOverToAnotherInstanceAndTheFailedOneIsGivenBackOnce() {
        var machine = DispatchMachine(request: Self.request(), maxFailovers: 2)
        guard case .acquire = machine.start() else { Issue.record("asks for an instance first"); return }
        guard case .send(let first) = machine.slotGranted(Self.lease("a"), instanceFound: true) else { Issue.record("sends"); return }
        #expect(first.instance.id == "a")
        guard case .retry(let released, let outcome) = machine.failed(Self.unavailable) else {
            Issue.record("a 503 before any output fails over")
            return
        }
        #expect(released.instance.id == "a")
        guard case .instanceFailure = outcome else { Issue.record("the instance is judged failed"); return }
        #expect(machine.request.excluded == ["a"], "the failed instance is not tried again")
        guard case .send = machine.slotGranted(Self.lease("b"), instanceFound: true) else { Issue.record("sends again"); return }
        guard case .finish(let done, _, let record) = machine.succeeded(.success(latency: .zero, timeToFirstToken: nil, outputTokens: 1)) else {
            Issue.record("finishes")
            return
        }
        #expect(done.instance.id == "b")
        #expect(record == .completed(succeeded: true))
        #expect(machine.attempts == 2)
    }

    @Test func noFailoverOnceOutputReachedTheCallerOrWhenNoneAreLeft() {
        var streamed = DispatchMachine(request: Self.request(), maxFailovers: 2)
        _ = streamed.start()
        _ = streamed.slotGranted(Self.lease("a"), instanceFound: true)
        streamed.outputDelivered()
        guard case .surface(let error, let released, _, let record) = streamed.failed(Self.unavailable) else {
            Issue.record("surfaces the failure")
            return
        }
        #expect(error.code == .instanceFailed && error.underlying?.status == 503, "the instance's error stays typed")
        #expect(released?.instance.id == "a")
        #expect(record == .completed(succeeded: false))

        var exhausted = DispatchMachine(request: Self.request(), maxFailovers: 0)
        _ = exhausted.start()
        _ = exhausted.slotGranted(Self.lease("a"), instanceFound: true)
        guard case .surface = exhausted.failed(Self.unavailable) else { Issue.record("no failovers left"); return }

        var fatal = DispatchMachine(request: Self.request(), maxFailovers: 2)
        _ = fatal.start()
        _ = fatal.slotGranted(Self.lease("a"), instanceFound: true)
        guard case .surface = fatal.failed(Self.status(400)) else {
            Issue.record("a 400 is the caller's, not the instance's")
            return
        }
    }

    @Test func aClientErrorIsSurfacedWithoutJudgingTheInstance() {
        var machine = DispatchMachine(request: Self.request(), maxFailovers: 2)
        _ = machine.start()
        _ = machine.slotGranted(Self.lease("a"), instanceFound: true)
        guard case .surface(let error, let released, let outcome, let record) = machine.failed(Self.status(400)) else {
            Issue.record("a 400 is not retried")
            return
        }
        #expect(error.code == .instanceFailed && error.underlying?.status == 400)
        #expect(released?.instance.id == "a")
        guard case .cancelled = outcome else { Issue.record("a 4xx says nothing against the instance (no circuit opens)"); return }
        #expect(record == .completed(succeeded: false), "the request itself still counts as failed")
    }

    @Test func aRemovedInstanceIsSkippedWithoutJudgingIt() {
        var machine = DispatchMachine(request: Self.request(), maxFailovers: 0)
        _ = machine.start()
        guard case .retry(let released, let outcome) = machine.slotGranted(Self.lease("gone"), instanceFound: false) else {
            Issue.record("asks again")
            return
        }
        #expect(released.instance.id == "gone" && machine.request.excluded == ["gone"])
        guard case .cancelled = outcome else { Issue.record("nothing to judge the instance by"); return }
        #expect(machine.failovers == 0, "a skipped instance is not a failover")
    }

    @Test func cancellationGivesTheInstanceBackAndRecordsNothing() {
        var machine = DispatchMachine(request: Self.request(), maxFailovers: 2)
        _ = machine.start()
        _ = machine.slotGranted(Self.lease("a"), instanceFound: true)
        guard case .surface(let error, let released, let outcome, let record) = machine.failed(SageLLMError(code: .cancelled, reason: "")) else {
            Issue.record("surfaces the cancellation")
            return
        }
        #expect(error.code == .cancelled && released?.instance.id == "a" && record == .nothing)
        guard case .cancelled = outcome else { Issue.record("released as cancelled"); return }

        var waiting = DispatchMachine(request: Self.request(), maxFailovers: 2)
        _ = waiting.start()
        guard case .surface(_, nil, _, .nothing) = waiting.cancelled() else { Issue.record("no instance held"); return }
    }

    @Test func refusalsAreRecordedButAPrefillHalfRecordsNothing() {
        var whole = DispatchMachine(request: Self.request(), maxFailovers: 2)
        _ = whole.start()
        guard case .surface(_, _, _, let record) = whole.slotRefused(ControlPlaneError(.queueFull, "full")) else { return }
        #expect(record == .rejected(.queueFull))

        var prefill = DispatchMachine(request: Self.request(phase: .prefill), maxFailovers: 0)
        _ = prefill.start()
        _ = prefill.slotGranted(Self.lease("p"), instanceFound: true)
        guard case .surface(let error, _, _, let failed) = prefill.failed(Self.unavailable) else { return }
        #expect(failed == .nothing, "the request is recorded when it ends, not its prefill")
        #expect(error.message.contains("prefill instance p failed"))
    }
}

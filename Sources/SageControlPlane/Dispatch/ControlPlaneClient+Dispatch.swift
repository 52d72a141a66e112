import Logging
import SageLLM

/// An instance ready to take a request: the lease the scheduler granted and the instance's client.
struct Dispatched: Sendable {
    let lease: Lease
    let client: IntelligentLLMClient
}

extension ControlPlaneClient {
    /// Carries out `action` and those that follow it, until the request can be sent (the
    /// instance is returned) or has finished (nil). A request that ends in an error throws it,
    /// after its instance was given back and the outcome recorded.
    ///
    /// - Parameters:
    ///   - prepared: the request as prepared (for its queue wait); nil for a prefill half.
    ///   - firstToken: when the first token reached the caller, from the request's arrival.
    func advance(
        _ machine: inout DispatchMachine, _ action: DispatchMachine.Action, prepared: PreparedRequest?, firstToken: Duration? = nil
    ) async throws(ControlPlaneError) -> Dispatched? {
        var action = action
        while true {
            switch action {
            case .acquire:
                do {
                    let lease = try await scheduler.acquire(machine.request)
                    action = machine.slotGranted(lease, instanceFound: lease.client != nil)
                } catch let error as ControlPlaneError {
                    action = machine.slotRefused(error)
                } catch {
                    action = machine.cancelled()
                }
            case .send(let lease):
                // `slotGranted` sends only when the lease holds its instance's client.
                if let client = lease.client { return Dispatched(lease: lease, client: client.client) }
                action = machine.slotGranted(lease, instanceFound: false)
            case .retry(let lease, let outcome):
                logger.debug("failing over", metadata: ["sage.instance": "\(lease.instance.id)"])
                clients.checkIn(lease)
                scheduler.release(lease, outcome: outcome)
                action = .acquire
            case .finish, .surface:
                if let error = settle(action, prepared: prepared, firstToken: firstToken) { throw error }
                return nil
            }
        }
    }

    /// Carries out an action that ends the request at once (gives the instance back, records
    /// the outcome). Returns the error to surface, if the action carries one.
    @discardableResult
    func settle(_ action: DispatchMachine.Action, prepared: PreparedRequest?, firstToken: Duration?) -> ControlPlaneError? {
        let lease: Lease?
        let record: DispatchMachine.Recording
        let error: ControlPlaneError?
        switch action {
        case .finish(let released, let outcome, let recording):
            clients.checkIn(released)
            scheduler.release(released, outcome: outcome)
            (lease, record, error) = (released, recording, nil)
        case .surface(let failure, let released, let outcome, let recording):
            if let released {
                clients.checkIn(released)
                scheduler.release(released, outcome: outcome)
            }
            (lease, record, error) = (released, recording, failure)
        case .acquire, .send, .retry:
            return nil
        }
        switch record {
        case .nothing: break
        case .rejected(let code): metricsTally.recordRejected(code)
        case .completed(let succeeded):
            guard let lease else { break }
            let waited = prepared?.queueWait(lease) ?? (lease.dispatched - lease.arrival)
            metricsTally.recordCompletion(
                lease, latency: .now - lease.arrival, timeToFirstToken: firstToken, queueWait: waited, succeeded: succeeded)
        }
        return error
    }
}

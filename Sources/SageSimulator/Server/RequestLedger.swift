import Foundation
import NIOCore
import SageLLM
import Synchronization

/// Counts the generation requests a simulator server answered, by HTTP status, so that tests
/// and `/metrics` can see retries and rejections from outside.
public final class RequestLedger: Sendable {
    private let counts = Mutex<[Int: Int]>([:])
    private let timings = Mutex<[String: Timing]?>(nil)
    private let bodies = Mutex<[JSONValue]?>(nil)

    public init() {}

    /// When a generation request's head was read from its connection, and when the first
    /// bytes of its answer (the first chunk of a stream) were written to the socket.
    public struct Timing: Sendable {
        public var arrived: ContinuousClock.Instant
        public var firstChunkWritten: ContinuousClock.Instant?
        /// The server's own time to first token, at its socket: from arrival to the first chunk written.
        public var timeToFirstChunk: Duration? { firstChunkWritten.map { $0 - arrived } }
    }

    /// From now on, keep the timing of every generation request by its `x-request-id` (for
    /// benchmarks that check their own accuracy; off by default, as it grows with each request).
    /// Requests on connections opened before this call are timed too.
    public func recordTimings() { timings.withLock { $0 = $0 ?? [:] } }

    /// The timings kept so far, by request id.
    public var requestTimings: [String: Timing] { timings.withLock { $0 ?? [:] } }

    var isRecordingTimings: Bool { timings.withLock { $0 != nil } }

    /// From now on, keep the JSON body of every generation request, in arrival order (for
    /// tests and debugging of what a client or proxy really sends; off by default).
    public func recordBodies() { bodies.withLock { $0 = $0 ?? [] } }

    /// The bodies kept so far; one that was not JSON is kept as a string.
    public var requestBodies: [JSONValue] { bodies.withLock { $0 ?? [] } }

    var isRecordingBodies: Bool { bodies.withLock { $0 != nil } }

    func received(body: ByteBuffer) {
        let value: JSONValue
        do {
            value = try BoundedJSONDecoder().decode(JSONValue.self, from: Data(body.readableBytesView))
        } catch {
            value = .string(String(buffer: body))
        }
        bodies.withLock { $0?.append(value) }
    }

    func arrived(_ requestID: String, at instant: ContinuousClock.Instant) {
        timings.withLock { $0?[requestID] = Timing(arrived: instant) }
    }

    func firstChunkWritten(_ requestID: String, at instant: ContinuousClock.Instant) {
        timings.withLock { $0?[requestID]?.firstChunkWritten = instant }
    }

    func record(_ status: Int) {
        counts.withLock { $0[status, default: 0] += 1 }
    }

    /// Requests per status.
    public var byStatus: [Int: Int] { counts.withLock { $0 } }

    /// All generation requests received.
    public var total: Int { counts.withLock { $0.values.reduce(0, +) } }
}

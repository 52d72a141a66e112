import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SageLLM
import Synchronization

/// etcd v3 through its HTTP/JSON gateway (`/v3/kv/range`, `/v3/watch`, `/v3/lease/...`),
/// over the project's transport. It knows every member's URL: a call that cannot reach one
/// member goes to the next, and the member that answered is tried first next time.
/// Keys and values are bytes, which the gateway writes in base64; 64-bit numbers are strings.
package final class EtcdClient: Sendable {
    let endpoints: [String]
    private let transports: [HTTPTransport]
    /// The member tried first.
    private let preferred = Mutex(0)

    /// A client of the members at `endpoints` (`http://10.0.0.1:2379`).
    package init(endpoints: [String], logger: Logger) throws(ControlPlaneError) {
        guard !endpoints.isEmpty else { throw ControlPlaneError(.invalidConfiguration, "no etcd endpoint is given", field: "etcd") }
        var configuration = TransportConfiguration(connectTimeout: .seconds(2), readTimeout: .seconds(30))
        configuration.requestTimeout = .seconds(5)
        configuration.maximumConnectionsPerHost = 4
        configuration.maximumResponseBytes = 64 * 1024 * 1024
        // A watch on a member that lost its leader is cancelled by etcd rather than left silent.
        configuration.extraHeaders = ["Grpc-Metadata-hasleader": "true"]
        var transports: [HTTPTransport] = []
        for endpoint in endpoints {
            do throws(SageLLMError) {
                transports.append(try HTTPTransport(baseURL: endpoint, apiKey: nil, configuration: configuration, logger: logger))
            } catch {
                throw ControlPlaneError(.invalidConfiguration, "the etcd endpoint '\(endpoint)' cannot be used: \(error.reason)", field: "etcd")
            }
        }
        self.endpoints = endpoints
        self.transports = transports
    }

    package func shutdown() async {
        for transport in transports {
            try? await transport.shutdown()  // closing idle connections; nothing is left to report
        }
    }

    // MARK: Calls

    /// Every key under `prefix` and the store's revision they were read at.
    func range(prefix: String) async throws(SageLLMError) -> (pairs: [EtcdWire.KeyValue], revision: Int64) {
        let response: EtcdWire.RangeResponse = try await call(
            "v3/kv/range", EtcdWire.RangeRequest(key: Self.base64(prefix), rangeEnd: Self.base64(Self.prefixEnd(prefix))))
        return (response.kvs ?? [], response.header?.revision?.value ?? 0)
    }

    package func put(key: String, value: String, lease: Int64?) async throws(SageLLMError) {
        let _: EtcdWire.Empty = try await call(
            "v3/kv/put", EtcdWire.PutRequest(key: Self.base64(key), value: Self.base64(value), lease: lease.map(EtcdWire.Number.init)))
    }

    package func delete(key: String) async throws(SageLLMError) {
        let _: EtcdWire.Empty = try await call("v3/kv/deleterange", EtcdWire.RangeRequest(key: Self.base64(key), rangeEnd: nil))
    }

    /// A new lease of `seconds`; its id.
    package func grant(seconds: Int) async throws(SageLLMError) -> Int64 {
        let response: EtcdWire.LeaseResponse = try await call("v3/lease/grant", EtcdWire.LeaseRequest(id: nil, ttl: EtcdWire.Number(Int64(clamping: seconds))))
        guard let id = response.id?.value, id != 0 else {
            throw SageLLMError(code: .decoding, reason: "etcd granted a lease without an id")
        }
        return id
    }

    /// Renews `lease`; the seconds it has left, 0 when it has already expired.
    package func keepAlive(lease: Int64) async throws(SageLLMError) -> Int64 {
        let response: EtcdWire.KeepAliveResponse = try await call("v3/lease/keepalive", EtcdWire.LeaseRequest(id: EtcdWire.Number(lease), ttl: nil))
        return response.result?.ttl?.value ?? 0
    }

    /// Ends `lease` and deletes its keys; a lease that is already gone is not an error.
    package func revoke(lease: Int64) async throws(SageLLMError) {
        do throws(SageLLMError) {
            let _: EtcdWire.Empty = try await call("v3/lease/revoke", EtcdWire.LeaseRequest(id: EtcdWire.Number(lease), ttl: nil))
        } catch where error.code == .httpStatus && error.status == 404 {
            return
        }
    }

    /// Watches the keys under `prefix` from `revision` on one member, handing each response to
    /// `receive`, until the stream ends (returns) or fails (throws). `renewAfter` ends a quiet
    /// watch so that a member that went silent is noticed.
    func watch(
        prefix: String, from revision: Int64, renewAfter: Duration,
        _ receive: (EtcdWire.WatchResponse) async throws(SageLLMError) -> Void
    ) async throws(SageLLMError) {
        let request = EtcdWire.WatchRequest(
            createRequest: .init(key: Self.base64(prefix), rangeEnd: Self.base64(Self.prefixEnd(prefix)), startRevision: EtcdWire.Number(revision)))
        let position = preferred.withLock { $0 }
        let transport = transports[position % transports.count]
        let reader: StreamingBodyReader
        do throws(SageLLMError) {
            reader = StreamingBodyReader(
                try await transport.openStream(
                    method: .POST, path: "v3/watch", body: try Self.encode(request), accept: "application/json",
                    requestID: HTTPTransport.makeRequestID(), timeout: renewAfter))
        } catch {
            moveOn(from: position)
            throw error
        }
        defer { reader.cancel() }
        var lines = JSONLines()
        do throws(SageLLMError) {
            while let piece = try await reader.next() {
                for line in try lines.append(piece) {
                    let envelope = try Self.decode(EtcdWire.WatchEnvelope.self, line)
                    if let error = envelope.error {
                        throw SageLLMError(code: .httpStatus, reason: "the etcd watch failed: \(error.message ?? "no message")")
                    }
                    if let result = envelope.result { try await receive(result) }
                }
            }
        } catch where error.code == .timeout && error.timeoutKind == .total {
            return  // renewed by the caller, from the revision it reached
        } catch {
            if error.code != .httpStatus { moveOn(from: position) }
            throw error
        }
    }

    /// Sends `body` to `path` of the preferred member, then of each other in turn while a
    /// member cannot be reached. An answer with an error status is thrown as it is.
    private func call<Response: Decodable>(_ path: String, _ body: some Encodable) async throws(SageLLMError) -> Response {
        let encoded = try Self.encode(body)
        let first = preferred.withLock { $0 }
        var failures: [String] = []
        for offset in 0..<transports.count {
            let position = (first + offset) % transports.count
            do throws(SageLLMError) {
                let answer = try await transports[position].send(
                    method: .POST, path: path, body: encoded, requestID: HTTPTransport.makeRequestID())
                if offset > 0 { preferred.withLock { $0 = position } }
                return try Self.decode(Response.self, answer)
            } catch where error.code == .httpStatus || error.code == .decoding || error.code == .cancelled {
                throw error
            } catch {
                failures.append("\(endpoints[position]): \(error.reason)")
            }
        }
        var error = SageLLMError(
            code: .connectionFailed,
            reason: "no etcd member answered \(path) (\(failures.joined(separator: "; "))): check that etcd runs and the endpoints are right")
        error.endpoint = endpoints.joined(separator: ",")
        throw error
    }

    /// After `position` failed, the next member is tried first.
    private func moveOn(from position: Int) {
        preferred.withLock { if $0 == position { $0 = (position + 1) % transports.count } }
    }

    // MARK: Encoding

    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    /// The end of the range of keys that start with `prefix`: the prefix with its last byte
    /// raised by one (etcd's `WithPrefix`). An empty or all-0xff prefix ranges over everything ("\0").
    static func prefixEnd(_ prefix: String) -> String {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return String(decoding: bytes, as: UTF8.self)
            }
            bytes.removeLast()
        }
        return "\0"
    }

    static func text(base64: String?) -> String? {
        base64.flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) }
    }

    private static func encode(_ value: some Encodable) throws(SageLLMError) -> ByteBuffer {
        do {
            return ByteBuffer(bytes: try JSONEncoder().encode(value))
        } catch {
            throw SageLLMError(code: .invalidRequest, reason: "an etcd request could not be written: \(error)")
        }
    }

    static func decode<Value: Decodable>(_ type: Value.Type, _ buffer: ByteBuffer) throws(SageLLMError) -> Value {
        do {
            return try JSONDecoder().decode(type, from: Data(buffer.readableBytesView))
        } catch {
            throw SageLLMError(code: .decoding, reason: "etcd answered with JSON that does not read as \(type): \(error)")
        }
    }
}

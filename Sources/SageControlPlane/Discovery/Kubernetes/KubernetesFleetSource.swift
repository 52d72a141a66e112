import Foundation
import NIOCore
import NIOHTTP1
import SageLLM

/// A fleet from the Kubernetes API: the EndpointSlices of a Service (ready endpoints only),
/// or the pods that match a label selector (ready pods only; their labels may give the
/// instance type, model and batch limit, see ``KubernetesLabels``). It lists, then watches
/// from the list's resourceVersion; a watch that ends is resumed from the last version seen
/// (bookmarks included), a `410 Gone` relists, and a failure is reported and retried with
/// backoff while the last fleet stays.
struct KubernetesFleetSource: FleetSource {
    typealias Selection = KubernetesSelection

    let access: KubernetesAccess
    let namespace: String
    let selection: Selection
    /// The engines' port: required for pods; for EndpointSlices it overrides the slice's.
    let port: Int?
    let template: InstanceTemplate
    /// How long the API server keeps one watch open (`timeoutSeconds`) before it is renewed.
    var watchSeconds = 240
    /// The longest wait between retries after a failure.
    var maximumBackoff = Duration.seconds(30)

    var name: String {
        switch selection {
        case .endpointSlices(let service, _): "kubernetes \(namespace)/\(service)"
        case .pods(let selector): "kubernetes \(namespace) pods \(selector)"
        }
    }

    func run(_ report: @escaping @Sendable (FleetSourceReport) async -> Void) async {
        switch selection {
        case .endpointSlices:
            await follow(KubernetesObjects.EndpointSlice.self, path: "apis/discovery.k8s.io/v1/namespaces/\(namespace)/endpointslices", report)
        case .pods:
            await follow(KubernetesObjects.Pod.self, path: "api/v1/namespaces/\(namespace)/pods", report)
        }
    }

    /// The label selector of the list and the watch.
    var labelSelector: String {
        switch selection {
        case .endpointSlices(let service, _): "kubernetes.io/service-name=\(service)"
        case .pods(let selector): selector
        }
    }

    /// Lists and watches `path` until cancelled.
    private func follow<Object: KubernetesFleetObject>(
        _ type: Object.Type, path: String, _ report: @escaping @Sendable (FleetSourceReport) async -> Void
    ) async {
        var objects: [String: Object] = [:]
        var resourceVersion: String?
        var backoff = Duration.milliseconds(500)
        let query = "labelSelector=" + Self.queryEscaped(labelSelector)
        while !Task.isCancelled {
            // A fresh transport per round: the service account's token file is read again,
            // as the kubelet rotates it.
            let transport: HTTPTransport
            do {
                transport = try access.transport()
            } catch {
                await report(.unreachable(error.message))
                guard await pauseBeforeRetry(&backoff, maximum: maximumBackoff) else { return }
                continue
            }
            let failure = await round(transport, path: path, query: query, objects: &objects, version: &resourceVersion, report)
            try? await transport.shutdown()  // nothing is left to close on failure
            if Task.isCancelled { return }  // stopped, not failed
            if let failure {
                await report(.unreachable(failure))
                guard await pauseBeforeRetry(&backoff, maximum: maximumBackoff) else { return }
            } else {
                backoff = .milliseconds(500)
            }
        }
    }

    /// Lists when there is no version to watch from, then watches once. Returns why it
    /// failed, or nil when the watch ended as watches do (or was too old, and `version` is
    /// cleared so that the next round lists again).
    private func round<Object: KubernetesFleetObject>(
        _ transport: HTTPTransport, path: String, query: String, objects: inout [String: Object], version: inout String?,
        _ report: @escaping @Sendable (FleetSourceReport) async -> Void
    ) async -> String? {
        do throws(SageLLMError) {
            if version == nil {
                let body = try await transport.send(method: .GET, path: "\(path)?\(query)", body: nil, requestID: HTTPTransport.makeRequestID())
                let list = try Self.decode(KubernetesObjects.List<Object>.self, body)
                objects = [:]
                for object in list.items ?? [] { objects[object.key] = object }
                version = list.metadata?.resourceVersion
                await report(.fleet(fleet(objects)))
            }
            if try await watch(transport, path: path, query: query, objects: &objects, version: &version, report) == .gone {
                version = nil
            }
            return nil
        } catch {
            if error.code == .httpStatus && error.status == 410 {
                version = nil  // too old to watch from: list again at once
                return nil
            }
            return describe(error)
        }
    }

    enum WatchEnd { case ended, gone }

    /// One watch from `version`: applies each event, reports the fleet after it, and moves
    /// `version` on (bookmarks included), so that the next watch resumes where this one ended.
    private func watch<Object: KubernetesFleetObject>(
        _ transport: HTTPTransport, path: String, query: String, objects: inout [String: Object],
        version: inout String?, _ report: @escaping @Sendable (FleetSourceReport) async -> Void
    ) async throws(SageLLMError) -> WatchEnd {
        let watchQuery = "\(query)&watch=1&allowWatchBookmarks=true&resourceVersion=\(Self.queryEscaped(version ?? ""))&timeoutSeconds=\(watchSeconds)"
        let reader = StreamingBodyReader(
            try await transport.openStream(
                method: .GET, path: "\(path)?\(watchQuery)", body: nil, accept: "application/json", requestID: HTTPTransport.makeRequestID()))
        defer { reader.cancel() }
        var lines = JSONLines()
        while let piece = try await reader.next() {
            for line in try lines.append(piece) {
                let event = try Self.decode(KubernetesObjects.Event<Object>.self, line)
                switch event.type {
                case "ADDED", "MODIFIED":
                    guard let object = event.object else { continue }
                    objects[object.key] = object
                    version = object.resourceVersion ?? version
                    await report(.fleet(fleet(objects)))
                case "DELETED":
                    guard let object = event.object else { continue }
                    objects[object.key] = nil
                    version = object.resourceVersion ?? version
                    await report(.fleet(fleet(objects)))
                case "BOOKMARK":
                    version = event.object?.resourceVersion ?? version
                case "ERROR":
                    // A Status that does not read is still a failed watch, reported below without its message.
                    let status = try? Self.decode(KubernetesObjects.Event<KubernetesObjects.Status>.self, line).object
                    if status?.code == 410 { return .gone }
                    throw SageLLMError(code: .httpStatus, reason: "the watch failed: \(status?.message ?? "an ERROR event without a message")")
                default:
                    continue
                }
            }
        }
        return .ended
    }

    /// The instances of every object, in a stable order.
    func fleet<Object: KubernetesFleetObject>(_ objects: [String: Object]) -> [InstanceSpec] {
        var seen = Set<String>()
        return objects.keys.sorted().flatMap { objects[$0]?.instances(port: port, selection: selection, template: template) ?? [] }
            .filter { seen.insert($0.id).inserted }
    }

    private func describe(_ error: SageLLMError) -> String {
        if error.code == .httpStatus, let status = error.status, status == 401 || status == 403 {
            return "the API server refused the request (\(status)) at \(access.apiServer): check the service account's token and that its Role allows list and watch on \(selection.resource) in \(namespace) (Docs/DEPLOYMENT.md)"
        }
        return "\(error.reason) (\(access.apiServer))"
    }

    static func decode<Value: Decodable>(_ type: Value.Type, _ buffer: ByteBuffer) throws(SageLLMError) -> Value {
        do {
            return try JSONDecoder().decode(type, from: Data(buffer.readableBytesView))
        } catch {
            throw SageLLMError(code: .decoding, reason: "the Kubernetes API answered with JSON that does not read as \(type): \(error)")
        }
    }

    static func queryEscaped(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}

/// What a Kubernetes source follows.
public enum KubernetesSelection: Sendable, Hashable {
    /// The EndpointSlices labelled `kubernetes.io/service-name=SERVICE`; the port named
    /// `portName` (else the slice's first, unless the source sets a port).
    case endpointSlices(service: String, portName: String?)
    /// Pods matching `labelSelector`.
    case pods(labelSelector: String)
}

extension KubernetesSelection {
    /// The resource listed and watched, as RBAC names it.
    var resource: String {
        switch self {
        case .endpointSlices: "endpointslices (discovery.k8s.io)"
        case .pods: "pods"
        }
    }
}

/// A listed or watched object that stands for instances.
protocol KubernetesFleetObject: Decodable, Sendable {
    var key: String { get }
    var resourceVersion: String? { get }
    func instances(port: Int?, selection: KubernetesFleetSource.Selection, template: InstanceTemplate) -> [InstanceSpec]
}

extension KubernetesObjects.EndpointSlice: KubernetesFleetObject {
    var key: String { metadata?.uid ?? metadata?.name ?? "" }
    var resourceVersion: String? { metadata?.resourceVersion }

    /// One instance per ready endpoint, named after its pod; its node is the machine and its
    /// zone the rack.
    func instances(port: Int?, selection: KubernetesFleetSource.Selection, template: InstanceTemplate) -> [InstanceSpec] {
        var portName: String?
        if case .endpointSlices(_, let name) = selection { portName = name }
        guard let chosen = port ?? (portName.flatMap { name in ports?.first { $0.name == name }?.port } ?? ports?.first?.port) else {
            return []
        }
        return (endpoints ?? []).compactMap { endpoint in
            // A missing ready condition means unknown, which Kubernetes asks consumers to read as ready.
            guard endpoint.conditions?.ready ?? true, !(endpoint.conditions?.terminating ?? false),
                let address = endpoint.addresses?.first
            else { return nil }
            return template.instance(
                id: endpoint.targetRef?.name ?? "\(address):\(chosen)", address: address, port: chosen,
                topology: Topology(machineID: endpoint.nodeName, rackID: endpoint.zone))
        }
    }
}

extension KubernetesObjects.Pod: KubernetesFleetObject {
    var key: String { metadata?.uid ?? metadata?.name ?? "" }
    var resourceVersion: String? { metadata?.resourceVersion }

    /// The pod when it is ready and has an address, with its labels over the template.
    func instances(port: Int?, selection: KubernetesFleetSource.Selection, template: InstanceTemplate) -> [InstanceSpec] {
        guard let port, let address = status?.podIP, status?.phase == "Running",
            status?.conditions?.contains(where: { $0.type == "Ready" && $0.status == "True" }) == true
        else { return [] }
        let labels = metadata?.labels ?? [:]
        var shaped = template
        if let type = labels[KubernetesLabels.instanceType].flatMap(InstanceType.init(name:)) { shaped.type = type }
        if let model = labels[KubernetesLabels.model], !model.isEmpty { shaped.model = model }
        if let limit = labels[KubernetesLabels.maxConcurrentRequests].flatMap(Int.init), limit > 0 { shaped.maxConcurrentRequests = limit }
        return [
            shaped.instance(
                id: metadata?.name ?? "\(address):\(port)", address: address, port: port,
                topology: Topology(machineID: spec?.nodeName, rackID: labels[KubernetesLabels.zone]))
        ]
    }
}

/// Splits a stream of bytes into lines (a watch sends one JSON object per line).
struct JSONLines {
    private var pending = ByteBuffer()
    /// The longest line kept: a larger one is an error, not unbounded memory.
    static let maximumLineBytes = 8 * 1024 * 1024

    mutating func append(_ piece: ByteBuffer) throws(SageLLMError) -> [ByteBuffer] {
        var piece = piece
        pending.writeBuffer(&piece)
        var lines: [ByteBuffer] = []
        while let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - pending.readerIndex
            if let line = pending.readSlice(length: length), line.readableBytes > 0 { lines.append(line) }
            pending.moveReaderIndex(forwardBy: 1)
        }
        if pending.readableBytes > Self.maximumLineBytes {
            throw SageLLMError(code: .decoding, reason: "a watch event is longer than \(Self.maximumLineBytes) bytes")
        }
        pending.discardReadBytes()
        return lines
    }
}

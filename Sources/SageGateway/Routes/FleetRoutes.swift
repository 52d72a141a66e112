import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SageControlPlane

/// What the gateway says about itself and the fleet: `GET /v1/models`, `/health` (alive),
/// `/ready` (a healthy instance for every model, and not draining) and `/metrics`.
struct FleetRoutes: Sendable {
    let controlPlane: ControlPlaneClient
    let state: GatewayState
    let metrics: GatewayMetrics
    let keys: KeyRing
    /// This gateway among replicas (nil: alone).
    let membership: ReplicaMembership?
    /// When the gateway started (the models' `created`).
    let started: Int
    /// Alias: model; listed with `root` naming the model.
    let aliases: [String: String]

    func register(on router: Router<GatewayRequestContext>) {
        router.get("v1/models") { request, _ in
            do throws(GatewayError) {
                return models(for: try keys.authenticate(request.headers))
            } catch {
                return CompletionRoutes.response(for: error)
            }
        }
        router.get("health") { _, _ in Self.json(["status": "ok"]) }
        router.get("ready") { _, _ in ready() }
        router.get("metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.render(fleet: controlPlane, requestsActive: state.requestsInFlight, perKey: keys.inFlight, replicas: membership?.current.replicas))))
        }
    }

    /// Every model of the fleet (that `key` may use) in OpenAI's list shape, with the number of
    /// its instances and how many are healthy.
    private func models(for key: GatewayKey?) -> Response {
        let served = controlPlane.servedModels()
        var data: [[String: Any]] = served.filter { key?.allows($0.model, servedAs: $0.model) ?? true }.map { served in
            [
                "id": served.model, "object": "model", "created": started, "owned_by": "sagellm",
                "instances": served.instances, "healthy_instances": served.healthy,
            ]
        }
        for (alias, model) in aliases.sorted(by: { $0.key < $1.key }) {
            guard let target = served.first(where: { $0.model == model }), key?.allows(alias, servedAs: model) ?? true else { continue }
            data.append([
                "id": alias, "object": "model", "created": started, "owned_by": "sagellm", "root": model,
                "instances": target.instances, "healthy_instances": target.healthy,
            ])
        }
        return Self.json(["object": "list", "data": data])
    }

    /// 200 when every model has a healthy instance and the gateway is not draining; 503 with
    /// the reasons otherwise.
    private func ready() -> Response {
        var reasons: [String] = []
        if state.isDraining { reasons.append("draining") }
        let served = controlPlane.servedModels()
        if served.isEmpty { reasons.append("no instance is configured") }
        for model in served where model.healthy == 0 {
            reasons.append("no healthy instance serves \(model.model) (\(model.instances) configured)")
        }
        let models = Dictionary(uniqueKeysWithValues: served.map { ($0.model, ["instances": $0.instances, "healthy": $0.healthy]) })
        var body: [String: Any] = ["models": models]
        // Discovery sources, and any that cannot be read: their last known instances stay, so
        // the gateway keeps serving, but an operator should know.
        let sources = controlPlane.discoveryStatus()
        if !sources.isEmpty {
            body["discovery"] = sources.map { source -> [String: Any] in
                var entry: [String: Any] = ["source": source.name, "reachable": source.isReachable, "instances": source.instances]
                if let error = source.lastError { entry["error"] = error }
                if let success = source.lastSuccess { entry["seconds_since_success"] = (ContinuousClock.now - success).components.seconds }
                return entry
            }
            let unreachable = sources.filter { !$0.isReachable }.map { "discovery source \($0.name) unreachable (\($0.lastError ?? "not read yet")); keeping its last \($0.instances) instances" }
            if !unreachable.isEmpty { body["warnings"] = unreachable }
        }
        if let membership {
            let (replicas, problem) = membership.current
            body["replicas"] = replicas
            if let problem {
                body["warnings"] = (body["warnings"] as? [String] ?? []) + ["the replica registry cannot be read (\(problem)); keys' limits stay split among \(replicas) replicas"]
            }
        }
        if reasons.isEmpty {
            body["status"] = "ready"
            return Self.json(body)
        }
        body["status"] = "not ready"
        body["reasons"] = reasons
        var response = Self.json(body, status: .serviceUnavailable)
        response.headers[.retryAfter] = "1"
        return response
    }

    static func json(_ object: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
        let bytes = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])).map(Array.init) ?? Array("{}".utf8)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

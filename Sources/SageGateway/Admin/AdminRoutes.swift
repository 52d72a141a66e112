import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SageControlPlane

/// The admin API, on a port of its own (off unless `gateway.admin_port` is set): list the
/// instances with their state and figures, add one, drain one, remove one, reload the cluster
/// file and the keys file. Every call needs an admin key; every change is logged with the
/// name of the key that made it.
///
/// - `GET /admin/instances`
/// - `POST /admin/instances` with a cluster file's instance entry as JSON (201)
/// - `POST /admin/instances/{id}/drain`
/// - `DELETE /admin/instances/{id}`
/// - `POST /admin/reload`
struct AdminRoutes: Sendable {
    let controlPlane: ControlPlaneClient
    let keys: KeyRing
    let logger: Logger

    func register(on router: Router<GatewayRequestContext>) {
        router.add(
            middleware: OpenAIErrorMiddleware(
                served: "GET and POST /admin/instances, POST /admin/instances/{id}/drain, DELETE /admin/instances/{id} and POST /admin/reload"))
        router.get("admin/instances") { request, _ in await admin(request) { _ in list() } }
        router.post("admin/instances") { request, _ in
            await admin(request) { who throws(GatewayError) in try await add(request, by: who) }
        }
        router.post("admin/instances/:id/drain") { request, context in
            await admin(request) { who throws(GatewayError) in try change(context.parameters.get("id"), by: who, verb: "drained", controlPlane.drain) }
        }
        router.delete("admin/instances/:id") { request, context in
            await admin(request) { who throws(GatewayError) in try change(context.parameters.get("id"), by: who, verb: "removed", controlPlane.remove) }
        }
        router.post("admin/reload") { request, _ in await admin(request) { who throws(GatewayError) in try await reload(by: who) } }
    }

    /// Runs `action` for the admin key the request carries (401 without a known key, 403 for
    /// a key that is not an admin key); its error becomes the OpenAI error response.
    private func admin(_ request: Request, _ action: (_ who: String) async throws(GatewayError) -> Response) async -> Response {
        do throws(GatewayError) {
            guard let key = try keys.authenticate(request.headers) else {
                throw GatewayError(.unauthorized, "the admin API needs an admin key, and none is configured", status: 401)
            }
            guard key.isAdmin else {
                throw GatewayError(.forbidden, "key '\(key.name)' is not an admin key (admin: true in the keys file)", status: 403)
            }
            return try await action(key.name)
        } catch {
            return CompletionRoutes.response(for: error)
        }
    }

    private func list() -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let instances = controlPlane.instances().filter { $0.healthReason != "removed" }
        let body = (try? encoder.encode(["instances": instances])).map(Array.init) ?? Array("{}".utf8)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    private func add(_ request: Request, by who: String) async throws(GatewayError) -> Response {
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: 64 * 1024)
        } catch {
            throw GatewayError(.invalidRequest, "the instance could not be read (at most 64 KiB): \(error)", status: 400)
        }
        let spec: InstanceSpec
        do {
            spec = try ClusterConfiguration.instance(from: String(buffer: body), source: "the request body")
        } catch {
            throw GatewayError(.invalidRequest, error.message, status: 400, field: error.field)
        }
        if controlPlane.instances().contains(where: { $0.instanceID == spec.id && $0.healthReason != "removed" }) {
            throw GatewayError(.conflict, "instance '\(spec.id)' exists; remove it first, or reload a changed cluster file", status: 409, field: "instance_id")
        }
        do {
            try controlPlane.add(spec)
        } catch {
            throw GatewayError(.invalidRequest, error.message, status: 400, field: error.field)
        }
        logger.notice("admin: instance added", metadata: ["sage.admin": "\(who)", "sage.instance": "\(spec.id)", "sage.url": "\(spec.baseURL)"])
        return FleetRoutes.json(["added": spec.id], status: .created)
    }

    private func change(_ id: String?, by who: String, verb: String, _ apply: (String) -> Bool) throws(GatewayError) -> Response {
        guard let id, apply(id) else {
            throw GatewayError(.notFound, "no instance '\(id ?? "")'; GET /admin/instances lists them", status: 404, field: "id")
        }
        logger.notice("admin: instance \(verb)", metadata: ["sage.admin": "\(who)", "sage.instance": "\(id)"])
        return FleetRoutes.json([verb: id])
    }

    /// Reloads the cluster file (when the fleet came from one) and the keys file (when there
    /// is one); either failing changes nothing of its own and is reported.
    private func reload(by who: String) async throws(GatewayError) -> Response {
        var result: [String: Any] = [:]
        if controlPlane.clusterFile != nil {
            do {
                let changes = try await controlPlane.reloadClusterFile()
                result["instances"] = ["added": changes.added, "removed": changes.removed, "changed": changes.changed]
            } catch {
                throw GatewayError(.invalidRequest, "the cluster file was not reloaded: \(error.message)", status: 400, field: error.field)
            }
        }
        if keys.file != nil { result["keys"] = try keys.reload() }
        guard !result.isEmpty else {
            throw GatewayError(.invalidRequest, "there is nothing to reload: the gateway has neither a cluster file nor a keys file", status: 400)
        }
        logger.notice("admin: reloaded", metadata: ["sage.admin": "\(who)", "sage.result": "\(result)"])
        return FleetRoutes.json(result)
    }
}

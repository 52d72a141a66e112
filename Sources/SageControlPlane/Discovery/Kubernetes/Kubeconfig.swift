import Foundation
import SageLLM
import Yams

/// A kubeconfig file (`~/.kube/config`, `KUBECONFIG`) read for the Kubernetes source: the
/// current context (or a named one) gives the API server, its CA and a bearer token, and the
/// default namespace. Tokens only: client certificates and `exec` plugins are refused with an
/// error that says so (create a service account token: `kubectl create token NAME`).
enum Kubeconfig {
    /// The access of `context` (nil: the file's `current-context`) in the kubeconfig at `path`,
    /// and the context's namespace.
    static func access(path: String, context wanted: String?) throws(ControlPlaneError) -> (access: KubernetesAccess, namespace: String?) {
        func fail(_ message: String) -> ControlPlaneError {
            ControlPlaneError(.invalidConfiguration, "kubeconfig \(path): \(message)", field: "discovery.kubeconfig", file: path)
        }
        let file: File
        do {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            if let problem = YAMLLimits.problem(in: text, maximumBytes: 4 << 20, maximumLines: 100_000) { throw fail(problem) }
            file = try YAMLDecoder().decode(File.self, from: text)
        } catch let error as ControlPlaneError {
            throw error
        } catch let error as DecodingError {
            // Without the decoder's details: a kubeconfig holds secrets.
            throw fail(ClusterConfiguration.describe(error, withDetails: false))
        } catch {
            throw fail("cannot be read: \(error.localizedDescription)")
        }
        guard let name = wanted ?? file.currentContext, !name.isEmpty else { throw fail("it names no current-context: set context") }
        guard let context = file.contexts?.first(where: { $0.name == name })?.value else { throw fail("it has no context '\(name)'") }
        guard let cluster = file.clusters?.first(where: { $0.name == context.cluster })?.value, let server = cluster.server else {
            throw fail("the cluster '\(context.cluster ?? "")' of context '\(name)' has no server")
        }
        var access = KubernetesAccess(apiServer: server)
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        func relative(_ file: String) -> String { file.hasPrefix("/") ? file : directory.appendingPathComponent(file).path }
        if let authority = cluster.certificateAuthority {
            access.caFile = relative(authority)
        } else if let data = cluster.certificateAuthorityData {
            guard let decoded = Data(base64Encoded: data, options: .ignoreUnknownCharacters) else {
                throw fail("certificate-authority-data of cluster '\(context.cluster ?? "")' is not base64")
            }
            // The transport reads a CA from a file: written private to this user, named by a
            // stable hash of the data, so that restarts reuse one file rather than add one each.
            let caFile = FileManager.default.temporaryDirectory.appendingPathComponent("sagellm-kubeconfig-ca-\(FleetIndex.hash(data)).crt").path
            guard FileManager.default.createFile(atPath: caFile, contents: decoded, attributes: [.posixPermissions: 0o600]) else {
                throw fail("cannot write its CA to \(caFile)")
            }
            access.caFile = caFile
        }
        if let userName = context.user {
            guard let user = file.users?.first(where: { $0.name == userName })?.value else { throw fail("it has no user '\(userName)'") }
            if let tokenFile = user.tokenFile {
                access.tokenFile = relative(tokenFile)
            } else if let token = user.token {
                access.token = APIKey(token)
            } else if user.signsInOtherwise {
                throw fail(
                    "user '\(userName)' signs in with a client certificate or a plugin, which this gateway does not run: give it a token (kubectl create token SERVICE_ACCOUNT) or run it in the cluster")
            }
        }
        return (access, context.namespace)
    }

    /// The default kubeconfig: the first file of `KUBECONFIG`, else `~/.kube/config`, if it exists.
    static func defaultPath(environment: [String: String]) -> String? {
        let candidates = (environment["KUBECONFIG"] ?? "").split(separator: ":").map(String.init)
            + [environment["HOME"].map { $0 + "/.kube/config" }].compactMap { $0 }
        return candidates.first { FileManager.default.fileExists(atPath: $0) }
    }

    private struct File: Decodable {
        struct Named<Value: Decodable>: Decodable {
            var name: String
            var value: Value?
            enum CodingKeys: String, CodingKey { case name, context, cluster, user }
            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                name = try container.decode(String.self, forKey: .name)
                value =
                    try container.decodeIfPresent(Value.self, forKey: .context) ?? container.decodeIfPresent(Value.self, forKey: .cluster)
                    ?? container.decodeIfPresent(Value.self, forKey: .user)
            }
        }
        struct Context: Decodable {
            var cluster: String?
            var user: String?
            var namespace: String?
        }
        struct Cluster: Decodable {
            var server: String?
            var certificateAuthority: String?
            var certificateAuthorityData: String?
            enum CodingKeys: String, CodingKey {
                case server, certificateAuthority = "certificate-authority", certificateAuthorityData = "certificate-authority-data"
            }
        }
        struct User: Decodable {
            var token: String?
            var tokenFile: String?
            /// A client certificate, an `exec` plugin or an auth provider: not supported.
            var signsInOtherwise: Bool
            enum CodingKeys: String, CodingKey {
                case token, tokenFile, clientCertificate = "client-certificate", clientCertificateData = "client-certificate-data", exec,
                    authProvider = "auth-provider"
            }
            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                token = try container.decodeIfPresent(String.self, forKey: .token)
                tokenFile = try container.decodeIfPresent(String.self, forKey: .tokenFile)
                signsInOtherwise = [.clientCertificate, .clientCertificateData, .exec, .authProvider].contains { container.contains($0) }
            }
        }

        var currentContext: String?
        var contexts: [Named<Context>]?
        var clusters: [Named<Cluster>]?
        var users: [Named<User>]?
        enum CodingKeys: String, CodingKey { case currentContext = "current-context", contexts, clusters, users }
    }
}

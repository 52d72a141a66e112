import Foundation
import Logging
import SageLLM

/// How to reach the Kubernetes API: its URL, the bearer token and the CA that signs its
/// certificate. In a pod these come from the standard places (``inCluster(environment:)``).
public struct KubernetesAccess: Sendable, Hashable {
    /// `https://10.96.0.1:443`.
    public var apiServer: String
    /// A file holding the bearer token (read again for every list and watch: tokens rotate).
    public var tokenFile: String?
    /// A CA bundle for the API server's certificate (nil: the system's).
    public var caFile: String?
    /// A bearer token given inline (a kubeconfig's `token`), used when there is no token file.
    /// Redacted when printed.
    public var token: APIKey?

    public init(apiServer: String, tokenFile: String? = nil, caFile: String? = nil, token: APIKey? = nil) {
        self.apiServer = apiServer
        self.tokenFile = tokenFile
        self.caFile = caFile
        self.token = token
    }

    /// Where a pod's service account is mounted.
    public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// The API from inside a pod: `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT`,
    /// the service account's token and CA; nil when not in a pod.
    public static func inCluster(environment: [String: String]) -> KubernetesAccess? {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty else { return nil }
        let port = environment["KUBERNETES_SERVICE_PORT"].flatMap { $0.isEmpty ? nil : $0 } ?? "443"
        let bracketed = host.contains(":") ? "[\(host)]" : host
        return KubernetesAccess(
            apiServer: "https://\(bracketed):\(port)", tokenFile: serviceAccountDirectory + "/token", caFile: serviceAccountDirectory + "/ca.crt")
    }

    /// The namespace of the pod this runs in (nil: not in a pod).
    public static func podNamespace() -> String? {
        // No readable file means not in a pod; the caller then asks for `namespace` by name.
        (try? String(contentsOfFile: serviceAccountDirectory + "/namespace", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A transport to the API server with the token read now.
    func transport() throws(ControlPlaneError) -> HTTPTransport {
        var token = self.token?.secret
        if let tokenFile {
            do {
                token = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            } catch {
                throw ControlPlaneError(.invalidConfiguration, "cannot read the Kubernetes token file: \(error.localizedDescription)", field: "discovery.token_file", file: tokenFile)
            }
        }
        var configuration = TransportConfiguration(connectTimeout: .seconds(5), readTimeout: .seconds(300))
        configuration.tls.caBundlePath = caFile
        configuration.maximumResponseBytes = 64 * 1024 * 1024
        do throws(SageLLMError) {
            return try HTTPTransport(
                baseURL: apiServer, apiKey: token.map { APIKey($0) }, configuration: configuration,
                logger: Logger(label: "sagellm.discovery.kubernetes"))
        } catch {
            throw ControlPlaneError(.invalidConfiguration, "the Kubernetes API server cannot be used: \(error.reason)", field: "discovery.api_server")
        }
    }
}

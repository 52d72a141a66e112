#if Curl
import CCurl
import SageLLM
import Synchronization

/// The third engine behind ``HTTPTransport``, on libcurl (built with the package trait `Curl`):
/// what libcurl does best, for the users who need it. It honours `HTTPS_PROXY`, `HTTP_PROXY`
/// and `NO_PROXY` from the environment, speaks HTTP/2 to https endpoints, takes a custom CA
/// bundle and a client certificate (mTLS), and reaches an engine on a Unix socket
/// (`unix:///path/engine.sock`). The timeouts, error codes and timing stamps are the other
/// engines': the transport conformance tests run over it too.
///
/// Transfers run on one multi handle driven by its own thread (``CurlMultiLoop``); a slow
/// consumer pauses its transfer (`CURL_WRITEFUNC_PAUSE`) instead of buffering without bound,
/// and cancelling ends the transfer at once.
package final class CurlEngine: HTTPEngine {
    /// What the engine needs beside each request.
    struct Settings: Sendable {
        var connectTimeout: Duration
        var unixSocketPath: String?
        var caBundlePath: String?
        var clientCertificatePath: String?
        var clientKeyPath: String?

        /// The URL libcurl is given: a Unix-socket URL becomes `http://localhost/...` over the socket.
        func curlURL(_ url: String) -> String {
            guard unixSocketPath != nil, let parsed = UnixSocketURL(url) else { return url }
            return "http://localhost" + parsed.path
        }
    }

    private let loop: CurlMultiLoop
    private let settings: Settings

    init(baseURL: String, configuration: TransportConfiguration) throws(SageLLMError) {
        guard sage_curl_global_init() == CURLE_OK, let loop = CurlMultiLoop(maximumConnectionsPerHost: configuration.maximumConnectionsPerHost)
        else {
            throw .invalidConfiguration(field: "transport.engine", "libcurl could not be initialised")
        }
        self.loop = loop
        settings = Settings(
            connectTimeout: configuration.connectTimeout, unixSocketPath: UnixSocketURL(baseURL)?.socketPath,
            caBundlePath: configuration.tls.caBundlePath, clientCertificatePath: configuration.tls.clientCertificatePath,
            clientKeyPath: configuration.tls.clientKeyPath)
    }

    package func open(_ request: EngineRequest, receiver: BodyReceiver?) async throws(TransportFailure) -> EngineResponse {
        guard let exchange = CurlExchange(request: request, receiver: receiver, loop: loop, configuration: settings) else {
            throw TransportFailure(.connectFailed, underlying: CurlError(code: -1, message: "curl_easy_init failed"), requestWritten: false)
        }
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<EngineResponse, TransportFailure>, Never>) in
                exchange.headContinuation = continuation
                if !loop.submit(.add(exchange)) {
                    exchange.headContinuation = nil
                    continuation.resume(returning: .failure(TransportFailure(.cancelled, requestWritten: false)))
                }
            }
        } onCancel: {
            loop.submit(.cancel(exchange))
        }
        return try result.get()
    }

    package func shutdown() async {
        await loop.stop()
    }

    /// Makes `TransportConfiguration.Engine.curl` available to every ``HTTPTransport`` made
    /// afterwards (the `sagellm` commands do this when built with the trait). Idempotent.
    package static func install() {
        HTTPEngineMakers.install(.curl) { baseURL, configuration throws(SageLLMError) in
            try CurlEngine(baseURL: baseURL, configuration: configuration)
        }
    }
}

/// `unix:///path/engine.sock` or `unix:///path/engine.sock:/v1`: the socket, and the API's
/// path on it (default `/v1`); a request's URL carries its path after that.
struct UnixSocketURL {
    var socketPath: String
    var path: String

    init?(_ url: String) {
        guard url.hasPrefix("unix://") else { return nil }
        let rest = url.dropFirst("unix://".count)
        if let colon = rest.firstIndex(of: ":") {
            socketPath = String(rest[..<colon])
            path = String(rest[rest.index(after: colon)...])
        } else {
            socketPath = String(rest)
            path = ""
        }
        guard socketPath.hasPrefix("/") else { return nil }
    }
}
#endif

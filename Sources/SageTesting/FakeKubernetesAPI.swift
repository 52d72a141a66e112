import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A loopback stand-in for the Kubernetes API server, for discovery's tests (Kubernetes does
/// not run here): a list answers with the JSON the test sets; a watch (`watch=1` in the
/// query) stays open and streams the lines the test sends, until the test ends it; the next
/// watch can be answered with an HTTP status instead (`410 Gone`). Every request's path and
/// query is recorded, so a test can check where a watch resumed.
package final class FakeKubernetesAPI: Sendable {
    private struct State {
        var list = #"{"kind":"List","metadata":{"resourceVersion":"1"},"items":[]}"#
        var nextWatchStatus: HTTPResponseStatus?
        var listStatus: HTTPResponseStatus?
        var watches: [any Channel] = []
        var requests: [String] = []
        var authorizations: [String] = []
    }

    private let state = Mutex(State())

    private init() {}

    /// Runs `body` with a fake API server on 127.0.0.1 and its URL (`http://127.0.0.1:PORT`).
    package static func with<Result>(_ body: (FakeKubernetesAPI, String) async throws -> Result) async throws -> Result {
        let api = FakeKubernetesAPI()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap { channel.pipeline.addHandler(Handler(api: api)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let url = "http://127.0.0.1:\(channel.localAddress?.port ?? 0)"
        do {
            let result = try await body(api, url)
            api.endWatches()
            try await channel.close()
            return result
        } catch {
            api.endWatches()
            try? await channel.close()
            throw error
        }
    }

    /// The JSON every list answers with from now on.
    package func setList(_ json: String) { state.withLock { $0.list = json } }

    /// Lists answer with `status` (nil: the list again), as an API server that refuses.
    package func failLists(withStatus code: Int?) { state.withLock { $0.listStatus = code.map { HTTPResponseStatus(statusCode: $0) } } }

    /// The next watch is answered with the status `code` and no stream (410: Gone).
    package func answerNextWatch(withStatus code: Int) { state.withLock { $0.nextWatchStatus = HTTPResponseStatus(statusCode: code) } }

    /// Sends one event line to every open watch.
    package func send(_ line: String) {
        for channel in state.withLock({ $0.watches }) {
            channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: line + "\n"))), promise: nil)
        }
    }

    /// Ends every open watch, as the API server does when its timeout passes.
    package func endWatches() {
        let open = state.withLock { state in
            defer { state.watches = [] }
            return state.watches
        }
        for channel in open { channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil) }
    }

    /// Watches open now.
    package var openWatches: Int { state.withLock { $0.watches.count } }

    /// Every request's path and query, in order.
    package var requests: [String] { state.withLock { $0.requests } }

    /// Every request's `authorization` header, in order.
    package var authorizations: [String] { state.withLock { $0.authorizations } }

    private final class Handler: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let api: FakeKubernetesAPI
        init(api: FakeKubernetesAPI) { self.api = api }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .head(let head) = unwrapInboundIn(data) else { return }
            let isWatch = head.uri.contains("watch=1")
            let channel = context.channel
            let (status, list) = api.state.withLock { state -> (HTTPResponseStatus?, String) in
                state.requests.append(head.uri)
                state.authorizations.append(head.headers["authorization"].first ?? "")
                if isWatch {
                    defer { state.nextWatchStatus = nil }
                    if state.nextWatchStatus == nil { state.watches.append(channel) }
                    return (state.nextWatchStatus, "")
                }
                return (state.listStatus, state.list)
            }
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "application/json")
            if isWatch && status == nil {
                headers.add(name: "transfer-encoding", value: "chunked")
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
                return
            }
            let body = status.map { #"{"kind":"Status","code":\#($0.code),"reason":"\#($0.reasonPhrase)"}"# } ?? list
            headers.add(name: "content-length", value: String(body.utf8.count))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status ?? .ok, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}

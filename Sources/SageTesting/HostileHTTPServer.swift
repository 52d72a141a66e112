import NIOCore
import SageLLM
import NIOPosix
import Synchronization

/// A loopback server that speaks raw bytes, for the servers the simulator will not pose as:
/// ones that lie, stall, break HTTP, echo secrets or close connections at the worst moment.
///
/// Each request (head and `content-length` body, read whole) gets the steps `respond` returns
/// for it; the server counts every request it read, so a test can tell whether a client sent
/// one twice.
package struct HostileHTTPServer {
    /// What the server does, in order.
    package enum Step: Sendable {
        /// Writes these bytes.
        case send(String)
        /// Writes `piece` `count` times (large bodies without building them at once).
        case repeated(String, count: Int)
        /// Waits.
        case pause(Duration)
        /// Closes the connection.
        case close
        /// Answers nothing more and keeps the connection open.
        case hang
    }

    /// A request as the server read it.
    package struct Request: Sendable {
        /// The request head, as text.
        package var head: String
        /// Its number on its connection (1 for the first).
        package var numberOnConnection: Int
        /// Its number among all the server's requests (1 for the first).
        package var number: Int
    }

    /// What the server has seen.
    package final class Record: Sendable {
        package init() {}
        package let requests = Atomic<Int>(0)
        package let connections = Atomic<Int>(0)
        package let heads = Mutex<[String]>([])
    }

    /// Runs `body` with the server's API root (`http://127.0.0.1:PORT/v1`). `onAccept` runs
    /// when a connection opens, before anything is read (an empty list waits for a request).
    /// With `unixSocket`, the server listens on that socket path instead, and the root is
    /// `unix://PATH:/v1`.
    package static func with<Result>(
        onAccept: [Step] = [], idleClose: Duration? = nil, record: Record = Record(), unixSocket: String? = nil,
        respond: @escaping @Sendable (Request) -> [Step], _ body: (String, Record) async throws -> Result
    ) async throws -> Result {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
            .childChannelInitializer { channel in
                record.connections.add(1, ordering: .relaxed)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        Handler(record: record, respond: respond, onAccept: onAccept, idleClose: idleClose))
                }
            }
        let channel = try await (unixSocket.map { bootstrap.bind(unixDomainSocketPath: $0, cleanupExistingSocketFile: true) }
            ?? bootstrap.bind(host: "127.0.0.1", port: 0)).get()
        let root = unixSocket.map { "unix://\($0):/v1" } ?? "http://127.0.0.1:\(channel.localAddress?.port ?? 0)/v1"
        do {
            let result = try await body(root, record)
            try await channel.close()
            return result
        } catch {
            try? await channel.close()
            throw error
        }
    }

    /// A whole HTTP/1.1 response with a `content-length`.
    package static func response(
        status: String = "200 OK", headers: [String] = [], body: String, contentType: String = "application/json"
    ) -> String {
        let lines = ["HTTP/1.1 \(status)", "content-type: \(contentType)", "content-length: \(body.utf8.count)"] + headers
        return lines.joined(separator: "\r\n") + "\r\n\r\n" + body
    }

    /// The head of a streamed (chunked) event-stream response.
    package static let streamHead =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"

    /// One chunk of a chunked body.
    package static func chunk(_ text: String) -> String {
        String(text.utf8.count, radix: 16) + "\r\n" + text + "\r\n"
    }

    /// The last chunk of a chunked body.
    package static let lastChunk = "0\r\n\r\n"

    /// A complete, well-formed chat completion.
    package static let goodChat =
        #"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        // Safety: every method runs on the channel's event loop.
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        let record: Record
        let respond: @Sendable (Request) -> [Step]
        let onAccept: [Step]
        /// Closes the connection when it has been idle this long after a response.
        let idleClose: Duration?
        private var idleTimer: Scheduled<Void>?
        private var received: [UInt8] = []
        private var onConnection = 0
        private var busy = false

        init(record: Record, respond: @escaping @Sendable (Request) -> [Step], onAccept: [Step], idleClose: Duration?) {
            self.record = record
            self.respond = respond
            self.onAccept = onAccept
            self.idleClose = idleClose
        }

        func channelActive(context: ChannelHandlerContext) {
            if !onAccept.isEmpty {
                busy = true
                run(onAccept[...], context: context)
            }
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            idleTimer?.cancel()
            idleTimer = nil
            received += unwrapInboundIn(data).readableBytesView
            takeRequest(context: context)
        }

        /// Starts on the next whole request, if one has arrived and none is being answered.
        private func takeRequest(context: ChannelHandlerContext) {
            guard !busy, let end = Self.requestEnd(received) else { return }
            let head = String(decoding: received[..<end.headEnd], as: UTF8.self)
            received.removeFirst(end.requestEnd)
            onConnection += 1
            let number = record.requests.add(1, ordering: .relaxed).newValue
            record.heads.withLock { $0.append(head) }
            busy = true
            run(respond(Request(head: head, numberOnConnection: onConnection, number: number))[...], context: context)
        }

        private func run(_ steps: ArraySlice<Step>, context: ChannelHandlerContext) {
            guard let step = steps.first else {
                busy = false
                if let idleClose {
                    idleTimer = context.eventLoop.scheduleTask(in: .nanoseconds(idleClose.nanoseconds)) { [channel = context.channel] in
                        channel.close(promise: nil)
                    }
                }
                takeRequest(context: context)
                return
            }
            let rest = steps.dropFirst()
            switch step {
            case .send(let text):
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text)), promise: nil)
                run(rest, context: context)
            case .repeated(let piece, let count):
                let buffer = ByteBuffer(string: piece)
                for _ in 0..<count { context.write(wrapOutboundOut(buffer), promise: nil) }
                context.flush()
                run(rest, context: context)
            case .pause(let duration):
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(in: .nanoseconds(duration.nanoseconds)) {
                    let (handler, context) = bound.value
                    handler.run(rest, context: context)
                }
            case .close:
                context.close(promise: nil)
            case .hang:
                break
            }
        }

        /// Where the first request's head ends and the whole request (with its body) ends.
        private static func requestEnd(_ bytes: [UInt8]) -> (headEnd: Int, requestEnd: Int)? {
            let separator: [UInt8] = Array("\r\n\r\n".utf8)
            guard bytes.count >= 4 else { return nil }
            var index = 0
            while index + 4 <= bytes.count {
                if bytes[index..<index + 4].elementsEqual(separator) { break }
                index += 1
            }
            guard index + 4 <= bytes.count else { return nil }
            let head = String(decoding: bytes[..<index], as: UTF8.self).lowercased()
            var length = 0
            for line in head.split(separator: "\r\n") where line.hasPrefix("content-length:") {
                length = Int(line.dropFirst("content-length:".count).trimmingPrefix(" ")) ?? 0
            }
            let end = index + 4 + length
            return bytes.count >= end ? (index, end) : nil
        }
    }
}

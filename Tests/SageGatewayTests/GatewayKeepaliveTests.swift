import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SageControlPlane
import SageSimulator
import SageTesting
import Testing

@testable import SageGateway

/// SSE keepalive comments while a stream waits for its first token (`gateway.keepalive_seconds`).
@Suite(.serialized) struct GatewayKeepaliveTests {
    static func configuration(every interval: Duration) -> GatewayConfiguration {
        var configuration = GatewayConfiguration(host: "127.0.0.1", port: 0)
        configuration.keepaliveInterval = interval
        return configuration
    }

    static let streamed = #"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":3,"stream":true}"#

    /// A gateway over one engine with one slot, which a stream of about 1.2 s holds while
    /// `body` runs (so that `body`'s requests wait in the queue).
    func withTheOnlySlotHeld(
        keepaliveEvery interval: Duration,
        _ body: @Sendable (RunningGateway, Task<(status: Int, headers: HTTPHeaders, body: String), any Error>) async throws -> Void
    ) async throws {
        try await withGateway(
            [engine(tbtMs: 20)], configuration: Self.configuration(every: interval),
            controlPlane: { simulators in
                try ControlPlaneClient(instances: [InstanceSpec(id: "i0", baseURL: simulators[0].baseURL, model: "m", maxConcurrentRequests: 1)])
            }
        ) { gateway in
            let holder = Task {
                try await gateway.send(
                    .POST, "/v1/chat/completions", body: #"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":60,"stream":true}"#)
            }
            #expect(await eventually { gateway.controlPlane.instances().first?.activeRequests == 1 })
            try await body(gateway, holder)
        }
    }

    /// The first token waits (here in the control plane's queue, behind a request holding the
    /// only slot): keepalives go out until it comes, then the stream as the engine sent it.
    @Test func aSlowFirstTokenGetsKeepalivesThenTheStreamAsItIs() async throws {
        try await withTheOnlySlotHeld(keepaliveEvery: .milliseconds(100)) { gateway, holder in
            let answer = try await gateway.send(.POST, "/v1/chat/completions", body: Self.streamed)
            #expect(answer.status == 200)
            #expect(answer.body.hasPrefix(": keepalive\n\n"), "\(answer.body.prefix(80))")
            let comments = answer.body.components(separatedBy: ": keepalive\n\n").count - 1
            #expect((2...20).contains(comments), "about one per 100 ms of a wait of up to 1.2 s: \(comments)")
            #expect(answer.body.contains(#""content""#) && answer.body.hasSuffix("data: [DONE]\n\n"))
            #expect(try await holder.value.status == 200)
        }
    }

    /// A client that leaves while it is sent keepalives takes its request out of the queue.
    @Test func aClientLeavingDuringKeepalivesLeavesTheQueue() async throws {
        try await withTheOnlySlotHeld(keepaliveEvery: .milliseconds(50)) { gateway, holder in
            var request = HTTPClientRequest(url: gateway.baseURL + "/v1/chat/completions")
            request.method = .POST
            request.body = .bytes(ByteBuffer(string: Self.streamed))
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            let response = try await client.execute(request, timeout: .seconds(10))
            var pieces = response.body.makeAsyncIterator()
            let first = try await pieces.next()
            #expect(first.map { String(buffer: $0) } == ": keepalive\n\n")
            #expect(gateway.controlPlane.metrics().queuedRequests == 1)
            try await client.shutdown()  // leaves while queued
            #expect(await eventually { gateway.controlPlane.metrics().queuedRequests == 0 }, "its request left the queue")
            #expect(try await holder.value.status == 200)
            #expect(await eventually {
                (try? await gateway.send(.GET, "/metrics").body.contains("sagellm_gateway_requests_active 0")) == true
            })
            #expect(gateway.simulators[0].engine.statistics().completed == 1, "the request that left never reached the engine")
        }
    }

    @Test func aFastFirstTokenGetsNone() async throws {
        try await withGateway([engine(tbtMs: 1)], configuration: Self.configuration(every: .seconds(5))) { gateway in
            let answer = try await gateway.send(.POST, "/v1/chat/completions", body: Self.streamed)
            #expect(answer.status == 200 && !answer.body.contains(": keepalive") && answer.body.hasSuffix("data: [DONE]\n\n"))
            #expect(answer.headers.first(name: "x-sagellm-instance") == "i0")
        }
    }

    /// Once a keepalive went out the response has begun: a failure before the first token is
    /// an error event, then `[DONE]`.
    @Test func aFailureAfterAKeepaliveIsAnErrorEvent() async throws {
        try await HostileHTTPServer.with(respond: { request in
            request.head.contains("/health")
                ? [.send(HostileHTTPServer.response(body: "{}"))]
                : [.send(HostileHTTPServer.streamHead), .pause(.milliseconds(300)), .close]
        }) { root, _ in
            try await withGateway(
                [], configuration: Self.configuration(every: .milliseconds(50)),
                controlPlane: { _ in try ControlPlaneClient(instances: [InstanceSpec(id: "hostile", baseURL: root, model: "m")]) }
            ) { gateway in
                let answer = try await gateway.send(.POST, "/v1/chat/completions", body: Self.streamed)
                #expect(answer.status == 200 && answer.body.hasPrefix(": keepalive\n\n"))
                #expect(answer.body.contains("event: error\ndata: {\"error\""), "\(answer.body)")
                #expect(answer.body.hasSuffix("data: [DONE]\n\n"))
                #expect(await eventually { gateway.controlPlane.instances().first?.activeRequests == 0 })
            }
        }
    }

    @Test func theSettingIsReadAndChecked() throws {
        let configured = try GatewayConfiguration().applying(environment: ["SAGE_GATEWAY_KEEPALIVE_SECONDS": "15"])
        #expect(configured.keepaliveInterval == .seconds(15))
        #expect(try GatewayConfiguration().applying(environment: ["SAGE_GATEWAY_KEEPALIVE_SECONDS": "0"]).keepaliveInterval == nil)
        #expect(throws: GatewayError.self) { try GatewayConfiguration().applying(environment: ["SAGE_GATEWAY_KEEPALIVE_SECONDS": "-1"]) }
    }
}

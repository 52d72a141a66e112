import SageTesting
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import SageLLM
import SageSimulator
import Testing

/// The simulator against clients that misbehave: numbers meant to overflow, requests that
/// stop halfway, connections that sit idle, and clients that leave while their answer is
/// being generated. A real engine's server survives all of these; so must ours.
@Suite("Simulator against hostile clients")
struct HostileClientTests {
    @Test func maxTokensOfIntMaxIsABadRequestNotACrash() async throws {
        try await withSimulatorServer(configuration: .instant(model: "m")) { sim in
            let url = sim.baseURL + "/chat/completions"
            for maxTokens in ["9223372036854775807", "9223372036854775806"] {
                let reply = try await SimulatorServerTests.send(
                    "POST", url, body: #"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":\#(maxTokens)}"#)
                #expect(reply.status == 400, "\(reply.body)")
                #expect(reply.json?["error"]?["message"]?.stringValue?.contains("maximum context length") == true)
            }
            let nested = String(repeating: "[", count: 100_000)
            let deep = try await SimulatorServerTests.send("POST", url, body: nested)
            #expect(deep.status == 400)
            let health = try await SimulatorServerTests.send("GET", sim.rootURL + "/health")
            #expect(health.status == 200, "the server is still up")
        }
    }

    /// Opens a raw connection to the simulator and sends `text`. With `closedIsFine`, a server
    /// that already closed the connection (a loaded machine wrote late, after an idle timeout)
    /// is not an error.
    static func rawConnection(_ sim: RunningSimulator, sending text: String, closedIsFine: Bool = false) async throws -> any Channel {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: sim.host, port: sim.port).get()
        do {
            try await channel.writeAndFlush(ByteBuffer(string: text))
        } catch ChannelError.ioOnClosedChannel where closedIsFine {
            // closed by the server already: what the caller waits for
        }
        return channel
    }

    @Test func idleAndHalfSentConnectionsAreClosed() async throws {
        try await withSimulatorServer(configuration: .instant(model: "m"), idleTimeout: .milliseconds(300)) { sim in
            let idle = try await Self.rawConnection(sim, sending: "", closedIsFine: true)
            let halfSent = try await Self.rawConnection(
                sim, sending: "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"model\":", closedIsFine: true)
            let started = ContinuousClock.now
            try await idle.closeFuture.get()
            try await halfSent.closeFuture.get()
            #expect(ContinuousClock.now - started < .seconds(5), "both closed by the server")
        }
    }

    @Test func aNonStreamedRequestWhoseClientLeftStopsGenerating() async throws {
        var engine = SimulatedEngineConfiguration(model: "m", ttft: .milliseconds(1), tbt: .milliseconds(20), jitter: 0)
        engine.maxBatch = 4
        try await withSimulatorServer(configuration: engine) { sim in
            let body = #"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":2000}"#
            let channel = try await Self.rawConnection(
                sim,
                sending: "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: \(body.utf8.count)\r\n\r\n\(body)")
            #expect(await eventually { sim.engine.statistics().running == 1 }, "generation started")
            try await channel.close()
            // 2000 tokens take 40 s; a client that left frees its slot at once.
            #expect(await eventually(timeout: .seconds(5)) { sim.engine.statistics().running == 0 }, "generation stopped")
            #expect(sim.engine.statistics().aborted == 1)
        }
    }
}


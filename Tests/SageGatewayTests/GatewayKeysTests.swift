import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import SageControlPlane
import SageLLM
import SageTesting
import Testing

@testable import SageGateway

/// A keys file in a fresh temporary directory.
func keysFile(_ text: String) throws -> String {
    let path = try TestFiles.directory("sagellm-keys").appendingPathComponent("keys.yaml").path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

func gatewayWithKeys(_ path: String, adminPort: Int? = nil) -> GatewayConfiguration {
    var configuration = GatewayConfiguration(host: "127.0.0.1", port: 0)
    configuration.keysFile = path
    configuration.adminPort = adminPort
    return configuration
}

func bearer(_ key: String) -> [(String, String)] { [("authorization", "Bearer \(key)")] }

@Suite(.serialized) struct GatewayKeysTests {
    static let twoKeys = """
        keys:
          - name: team-a
            key: sk-team-a-secret-0001
            models: [m]
          - name: team-b
            key_sha256: \(GatewayKey.digest(of: "sk-team-b-secret-0002").map { String(format: "%02x", $0) }.joined())
        """

    static func chat(model: String = "m", stream: Bool = false, maxTokens: Int = 4) -> String {
        #"{"model":"\#(model)","messages":[{"role":"user","content":"hi"}],"max_tokens":\#(maxTokens),"stream":\#(stream)}"#
    }

    @Test func withKeysAMissingOrUnknownKeyIs401AndAKnownOneServes() async throws {
        let path = try keysFile(Self.twoKeys)
        try await withGateway([engine(model: "m"), engine(model: "n")], configuration: gatewayWithKeys(path)) { gateway in
            let none = try await gateway.send(.POST, "/v1/chat/completions", body: Self.chat())
            #expect(none.status == 401)
            #expect(RunningGateway.error(none.body)["type"] as? String == "authentication_error")
            let unknown = try await gateway.send(.POST, "/v1/chat/completions", body: Self.chat(), headers: bearer("sk-not-a-key-000"))
            #expect(unknown.status == 401 && RunningGateway.error(unknown.body)["code"] as? String == "invalid_api_key")
            #expect(!unknown.body.contains("sk-not-a-key-000"), "an error never repeats the key")
            let served = try await gateway.send(.POST, "/v1/chat/completions", body: Self.chat(), headers: bearer("sk-team-a-secret-0001"))
            #expect(served.status == 200)
            // key_sha256 and the x-api-key header.
            let hashed = try await gateway.send(.POST, "/v1/chat/completions", body: Self.chat(model: "n"), headers: [("x-api-key", "sk-team-b-secret-0002")])
            #expect(hashed.status == 200)
            #expect(try await gateway.send(.GET, "/v1/models").status == 401)
            #expect(try await gateway.send(.GET, "/health").status == 200, "probes need no key")
        }
    }

    @Test func aModelTheKeyMayNotUseIs403AndIsNotListed() async throws {
        let path = try keysFile(Self.twoKeys)
        try await withGateway([engine(model: "m"), engine(model: "n")], configuration: gatewayWithKeys(path)) { gateway in
            let refused = try await gateway.send(.POST, "/v1/chat/completions", body: Self.chat(model: "n"), headers: bearer("sk-team-a-secret-0001"))
            #expect(refused.status == 403)
            let error = RunningGateway.error(refused.body)
            #expect(error["type"] as? String == "permission_error" && error["param"] as? String == "model")
            let listed = try await gateway.send(.GET, "/v1/models", headers: bearer("sk-team-a-secret-0001"))
            let ids = (RunningGateway.json(listed.body)["data"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            #expect(ids == ["m"])
            let all = try await gateway.send(.GET, "/v1/models", headers: bearer("sk-team-b-secret-0002"))
            #expect((RunningGateway.json(all.body)["data"] as? [[String: Any]])?.count == 2)
        }
    }

    @Test func requestsPerMinuteIs429WithRetryAfter() async throws {
        let path = try keysFile("""
            keys:
              - name: small
                key: sk-small-key-0001
                requests_per_minute: 2
            """)
        try await withGateway([engine()], configuration: gatewayWithKeys(path)) { gateway in
            for _ in 0..<2 {
                #expect(try await gateway.send(.POST, "/v1/chat/completions", body: Self.chat(), headers: bearer("sk-small-key-0001")).status == 200)
            }
            let limited = try await gateway.send(.POST, "/v1/chat/completions", body: Self.chat(), headers: bearer("sk-small-key-0001"))
            #expect(limited.status == 429)
            #expect(RunningGateway.error(limited.body)["code"] as? String == "rate_limit_exceeded")
            let retryAfter = limited.headers.first(name: "retry-after").flatMap(Int.init) ?? 0
            #expect((1...30).contains(retryAfter), "a bucket of 2 per minute has one again within 30 s")
            let metrics = try await gateway.send(.GET, "/metrics").body
            #expect(metrics.contains(#"key="small""#) && metrics.contains(#"status="429""#))
            #expect(!metrics.contains("sk-small-key-0001"), "metrics never show a key")
        }
    }

    @Test func theConcurrencyBoundRefusesASecondRequestUntilTheFirstEnds() async throws {
        let path = try keysFile("""
            keys:
              - name: one-at-a-time
                key: sk-one-at-a-time-1
                max_concurrency: 1
            """)
        try await withGateway([engine(tbtMs: 20)], configuration: gatewayWithKeys(path)) { gateway in
            let long = Task {
                try await gateway.send(.POST, "/v1/chat/completions", body: Self.chat(stream: true, maxTokens: 50), headers: bearer("sk-one-at-a-time-1"))
            }
            #expect(await eventually { gateway.controlPlane.instances().first?.activeRequests == 1 })
            let second = try await gateway.send(.POST, "/v1/chat/completions", body: Self.chat(), headers: bearer("sk-one-at-a-time-1"))
            #expect(second.status == 429 && second.headers.first(name: "retry-after") == "1")
            #expect(try await long.value.status == 200)
            let after = try await gateway.send(.POST, "/v1/chat/completions", body: Self.chat(), headers: bearer("sk-one-at-a-time-1"))
            #expect(after.status == 200, "the stream's end gave the slot back")
        }
    }

    @Test func tokensPerMinuteCountsTheUsageTheEngineReports() async throws {
        let path = try keysFile("""
            keys:
              - name: frugal
                key: sk-frugal-key-01
                tokens_per_minute: 20
            """)
        try await withGateway([engine()], configuration: gatewayWithKeys(path)) { gateway in
            let first = try await gateway.send(.POST, "/v1/chat/completions", body: Self.chat(maxTokens: 30), headers: bearer("sk-frugal-key-01"))
            #expect(first.status == 200)
            let used = (RunningGateway.json(first.body)["usage"] as? [String: Any])?["total_tokens"] as? Int ?? 0
            #expect(used > 20)
            let second = try await gateway.send(.POST, "/v1/chat/completions", body: Self.chat(), headers: bearer("sk-frugal-key-01"))
            #expect(second.status == 429)
            #expect(second.body.contains("tokens_per_minute"))
        }
    }

    @Test func theKeysPriorityCapsWhatItsRequestsAskFor() throws {
        let capped = GatewayKey(name: "batch", key: "sk-batch-key-001", maxPriority: .normal, defaultPriority: .low)
        var headers = HTTPFields()
        headers[HTTPField.Name("x-sagellm-priority")!] = "CRITICAL"
        let fields = try RequestRoutingFields.read(ByteBuffer(string: #"{"model":"m"}"#))
        #expect(try CompletionRoutes.placement(headers, fields, key: capped).priority == .normal)
        #expect(try CompletionRoutes.placement(HTTPFields(), fields, key: capped).priority == .low, "its default when none is asked")
        #expect(try CompletionRoutes.placement(headers, fields, key: nil).priority == .critical, "no key, no cap")
    }

    @Test func aReloadedKeysFileTakesEffectAndABrokenOneKeepsTheKeys() async throws {
        let path = try keysFile("""
            keys:
              - name: old
                key: sk-old-key-00001
            """)
        let log = LogCapture()
        try await withGateway([engine()], configuration: gatewayWithKeys(path), logger: Logger(label: "test") { _ in log.handler }) { gateway in
            #expect(try await gateway.send(.GET, "/v1/models", headers: bearer("sk-old-key-00001")).status == 200)
            try """
                keys:
                  - name: new
                    key: sk-new-key-00001
                """.write(toFile: path, atomically: true, encoding: .utf8)
            #expect(await eventually(timeout: .seconds(10)) { (try? await gateway.send(.GET, "/v1/models", headers: bearer("sk-new-key-00001")).status) == 200 })
            #expect(try await gateway.send(.GET, "/v1/models", headers: bearer("sk-old-key-00001")).status == 401)
            try "keys:\n  - name: broken\n    key: sk-broken-but-secret-1\n    max_concurrency: many\n".write(toFile: path, atomically: true, encoding: .utf8)
            #expect(await eventually(timeout: .seconds(10)) { log.text.contains("keys file not reloaded") })
            #expect(try await gateway.send(.GET, "/v1/models", headers: bearer("sk-new-key-00001")).status == 200, "the keys stayed")
            #expect(!log.text.contains("sk-new-key-00001") && !log.text.contains("sk-broken-but-secret-1"), "no log line holds a key")
        }
    }

    @Test func keysFileErrorsNameTheEntryAndNeverTheKey() throws {
        let cases: [(String, String)] = [
            ("keys:\n  - name: a\n", "needs exactly one of key and key_sha256"),
            ("keys:\n  - name: a\n    key: sk-short\n    key_sha256: abc\n", "needs exactly one"),
            ("keys:\n  - name: a\n    key_sha256: sk-this-is-not-hex-at-all\n", "64 hex digits"),
            ("keys:\n  - name: a\n    key: sk-abcdefgh-1\n  - name: a\n    key: sk-abcdefgh-2\n", "used twice"),
            ("keys:\n  - name: a\n    key: sk-abcdefgh-1\n  - name: b\n    key: sk-abcdefgh-1\n", "the same key as another"),
            ("keys:\n  - name: a\n    key: sk-abcdefgh-1\n    requests_per_minute: 0\n", "requests_per_minute must be"),
            ("keys:\n  - name: a\n    key: sk-abcdefgh-1\n    max_priority: URGENT\n", "max_priority 'URGENT'"),
            ("keys:\n  - name: a\n    key: [sk-abcdefgh-1]\n", "keys[0].key must be"),
        ]
        for (text, expected) in cases {
            let path = try keysFile(text)
            do {
                _ = try KeysFile.load(path)
                Issue.record("\(text) was accepted")
            } catch {
                #expect(error.message.contains(expected), "\(error.message)")
                #expect(error.message.contains(path))
                #expect(!error.message.contains("sk-abcdefgh") && !error.message.contains("sk-this-is"), "\(error.message)")
            }
        }
        #expect("\(GatewayKey(name: "n", key: "sk-secret-value-1"))" == "GatewayKey(n)")
    }

    @Test func keysGivenInCodeAreCheckedAtStart() async throws {
        var configuration = GatewayConfiguration(host: "127.0.0.1", port: 0)
        configuration.apiKeys = [GatewayKey(name: "zero", key: "sk-zero-limit-01", requestsPerMinute: 0)]
        await #expect(throws: GatewayError.self) {
            try await withGateway([engine()], configuration: configuration) { _ in }
        }
    }

    @Test func keysFromTheEnvironment() throws {
        let configured = try GatewayConfiguration().applying(environment: [
            "SAGE_GATEWAY_API_KEYS": "alice=sk-alice-key-1, bob=sk-bob-key-0001", "SAGE_GATEWAY_ADMIN_KEY": "sk-admin-key-001",
        ])
        #expect(configured.apiKeys.map(\.name) == ["alice", "bob", "admin"])
        #expect(configured.apiKeys.map(\.isAdmin) == [false, false, true])
        #expect(throws: GatewayError.self) { try GatewayConfiguration().applying(environment: ["SAGE_GATEWAY_API_KEYS": "alice"]) }
    }
}

import Foundation
import Logging
import NIOHTTP1
import SageControlPlane
import SageSimulator
import SageTesting
import Testing

@testable import SageGateway

@Suite(.serialized) struct GatewayAdminTests {
    static let keys = """
        keys:
          - name: ops-alice
            key: sk-admin-alice-01
            admin: true
          - name: app
            key: sk-app-key-00001
        """

    @Test func theAdminAPIIsOffByDefaultAndNeedsAnAdminKeyToStart() async throws {
        try await withGateway([engine()]) { gateway in
            #expect(gateway.adminURL == nil)
        }
        var configuration = GatewayConfiguration(host: "127.0.0.1", port: 0)
        configuration.adminPort = 0
        await #expect(throws: GatewayError.self) {
            try await withGateway([engine()], configuration: configuration) { _ in }
        }
    }

    @Test func listDrainAddAndRemoveInstancesLoggedWithTheKeysName() async throws {
        let path = try keysFile(Self.keys)
        let log = LogCapture()
        try await withGateway(
            [engine(), engine()], configuration: gatewayWithKeys(path, adminPort: 0), logger: Logger(label: "test") { _ in log.handler }
        ) { gateway in
            let admin = try #require(gateway.adminURL)
            #expect(try await gateway.send(.GET, "/admin/instances", to: admin).status == 401)
            #expect(try await gateway.send(.GET, "/admin/instances", headers: bearer("sk-app-key-00001"), to: admin).status == 403)
            let listed = try await gateway.send(.GET, "/admin/instances", headers: bearer("sk-admin-alice-01"), to: admin)
            #expect(listed.status == 200)
            let ids = (RunningGateway.json(listed.body)["instances"] as? [[String: Any]] ?? []).compactMap { $0["instance_id"] as? String }
            #expect(ids.sorted() == ["i0", "i1"])
            #expect(try await gateway.send(.GET, "/admin/instances", headers: bearer("sk-admin-alice-01")).status == 404, "not on the API port")
            let unknown = try await gateway.send(.GET, "/admin/nope", headers: bearer("sk-admin-alice-01"), to: admin)
            #expect(unknown.status == 404 && (RunningGateway.error(unknown.body)["message"] as? String ?? "").contains("POST /admin/reload"), "\(unknown.body)")

            // Drain i0: requests go to i1 only.
            #expect(try await gateway.send(.POST, "/admin/instances/i0/drain", headers: bearer("sk-admin-alice-01"), to: admin).status == 200)
            for _ in 0..<4 {
                let answer = try await gateway.send(.POST, "/v1/chat/completions", body: GatewayKeysTests.chat(), headers: bearer("sk-app-key-00001"))
                #expect(answer.headers.first(name: "x-sagellm-instance") == "i1")
            }
            // Add a third engine, remove i1: requests go to the new one.
            try await withSimulatorServers(configurations: [engine()]) { added in
                let entry = #"{"instance_id":"i2","base_url":"\#(added[0].baseURL)","model_name":"m"}"#
                let created = try await gateway.send(.POST, "/admin/instances", body: entry, headers: bearer("sk-admin-alice-01"), to: admin)
                #expect(created.status == 201, "\(created.body)")
                let again = try await gateway.send(.POST, "/admin/instances", body: entry, headers: bearer("sk-admin-alice-01"), to: admin)
                #expect(again.status == 409)
                let broken = try await gateway.send(
                    .POST, "/admin/instances", body: #"{"instance_id":"i3"}"#, headers: bearer("sk-admin-alice-01"), to: admin)
                #expect(broken.status == 400 && broken.body.contains("base_url"))
                #expect(try await gateway.send(.DELETE, "/admin/instances/i1", headers: bearer("sk-admin-alice-01"), to: admin).status == 200)
                #expect(try await gateway.send(.DELETE, "/admin/instances/nope", headers: bearer("sk-admin-alice-01"), to: admin).status == 404)
                #expect(await eventually { gateway.controlPlane.instances().first { $0.instanceID == "i2" }?.isHealthy == true })
                let answer = try await gateway.send(.POST, "/v1/chat/completions", body: GatewayKeysTests.chat(), headers: bearer("sk-app-key-00001"))
                #expect(answer.status == 200 && answer.headers.first(name: "x-sagellm-instance") == "i2")
                #expect(added[0].engine.statistics().completed == 1)
            }
            for change in ["instance drained", "instance added", "instance removed"] {
                #expect(log.text.contains("admin: \(change)") && log.text.contains("ops-alice"), "\(change) is logged with who made it")
            }
            #expect(!log.text.contains("sk-admin-alice-01"))
        }
    }

    @Test func reloadPicksUpTheKeysFileAtOnce() async throws {
        let path = try keysFile(Self.keys)
        try await withGateway([engine()], configuration: gatewayWithKeys(path, adminPort: 0)) { gateway in
            let admin = try #require(gateway.adminURL)
            try (Self.keys + "\n  - name: late\n    key: sk-late-key-0001\n").write(toFile: path, atomically: true, encoding: .utf8)
            let reloaded = try await gateway.send(.POST, "/admin/reload", headers: bearer("sk-admin-alice-01"), to: admin)
            #expect(reloaded.status == 200 && RunningGateway.json(reloaded.body)["keys"] as? Int == 3)
            #expect(try await gateway.send(.GET, "/v1/models", headers: bearer("sk-late-key-0001")).status == 200)
        }
    }

    /// The cluster file changes under load (an instance replaced by another), reloaded through
    /// the admin API: every request is answered.
    @Test func aReloadUnderLoadLosesNoRequest() async throws {
        let path = try keysFile(Self.keys)
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        let clusterFile = directory.appendingPathComponent("cluster.yaml").path
        @Sendable func write(_ simulators: [RunningSimulator], ids: [Int]) throws {
            let entries = ids.map { "  - instance_id: i\($0)\n    base_url: \(simulators[$0].baseURL)\n    model_name: m\n" }
            try ("routing_strategy: load_balanced\ninstances:\n" + entries.joined()).write(toFile: clusterFile, atomically: true, encoding: .utf8)
        }
        try await withGateway(
            [engine(tbtMs: 2), engine(tbtMs: 2), engine(tbtMs: 2)], configuration: gatewayWithKeys(path, adminPort: 0),
            controlPlane: { simulators in
                try write(simulators, ids: [0, 1])
                return try ControlPlaneClient(clusterFile: clusterFile)
            }
        ) { gateway in
            let admin = try #require(gateway.adminURL)
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<200 {
                    if index == 60 {
                        try write(gateway.simulators, ids: [0, 2])  // i1 leaves, i2 joins
                        let reloaded = try await gateway.send(.POST, "/admin/reload", headers: bearer("sk-admin-alice-01"), to: admin)
                        #expect(reloaded.status == 200, "\(reloaded.body)")
                    }
                    if index >= 16 { _ = try await group.next() }
                    group.addTask {
                        try await gateway.send(
                            .POST, "/v1/chat/completions", body: GatewayKeysTests.chat(stream: index % 2 == 0, maxTokens: 8),
                            headers: bearer("sk-app-key-00001")
                        ).status
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.allSatisfy { $0 == 200 }, "every request answered: \(Set(statuses))")
            #expect(gateway.simulators[2].engine.statistics().completed > 0, "the new instance took requests")
            #expect(gateway.controlPlane.instances().contains { $0.instanceID == "i1" && $0.healthReason != "removed" } == false)
        }
    }
}

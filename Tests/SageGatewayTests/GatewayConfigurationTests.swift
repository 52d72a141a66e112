import Foundation
import SageGateway
import SageTesting
import Testing
import SageControlPlane

/// The gateway's settings: the cluster file's `gateway:` section, then `SAGE_GATEWAY_*`.
struct GatewayConfigurationTests {
    static func file(_ text: String) throws -> String {
        let path = TestFiles.path("gateway", suffix: ".yaml")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func theSectionThenTheEnvironmentOverrideTheDefaults() throws {
        let path = try Self.file("gateway:\n  port: 9090\n  max_body_bytes: 1024\n  drain_timeout_seconds: 2.5\ninstances: []\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fromFile = try GatewayConfiguration().applying(clusterFile: path)
        #expect(fromFile.port == 9090 && fromFile.maximumBodyBytes == 1024 && fromFile.drainTimeout == .milliseconds(2500))
        let overridden = try fromFile.applying(environment: ["SAGE_GATEWAY_PORT": "7070", "SAGE_GATEWAY_HOST": "0.0.0.0"])
        #expect(overridden.port == 7070 && overridden.host == "0.0.0.0" && overridden.maximumBodyBytes == 1024)
        let withoutSection = try Self.file("instances: []\n")
        defer { try? FileManager.default.removeItem(atPath: withoutSection) }
        #expect(try GatewayConfiguration().applying(clusterFile: withoutSection) == GatewayConfiguration())
    }

    @Test func wrongValuesNameTheirKey() throws {
        func field(_ body: () throws -> Void) -> String? {
            do {
                try body()
                return nil
            } catch {
                return (error as? GatewayError)?.field ?? "not a GatewayError: \(error)"
            }
        }
        #expect(field { _ = try GatewayConfiguration().applying(environment: ["SAGE_GATEWAY_PORT": "80x"]) } == "SAGE_GATEWAY_PORT")
        #expect(field { _ = try GatewayConfiguration().applying(environment: ["SAGE_GATEWAY_PORT": "70000"]) } == "gateway.port")
        #expect(
            field { _ = try GatewayConfiguration().applying(environment: ["SAGE_GATEWAY_DRAIN_TIMEOUT_SECONDS": "nan"]) }
                == "SAGE_GATEWAY_DRAIN_TIMEOUT_SECONDS")
        #expect(field { _ = try GatewayConfiguration().applying(environment: ["SAGE_GATEWAY_MAX_BODY_BYTES": "0"]) } == "gateway.max_body_bytes")
        let path = try Self.file("gateway:\n  port: [1]\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(field { _ = try GatewayConfiguration().applying(clusterFile: path) } == "gateway")
    }
}

/// A gateway that cannot listen says where and what to change.
struct GatewayStartTests {
    @Test func aTakenPortIsAClearError() async throws {
        try await withGateway([engine()]) { gateway in
            let port = try #require(Int(gateway.baseURL.split(separator: ":").last ?? ""))
            let second = GatewayService(controlPlane: gateway.controlPlane, configuration: GatewayConfiguration(host: "127.0.0.1", port: port))
            do {
                try await second.run()
                Issue.record("a second gateway on a taken port started")
            } catch let error as GatewayError {
                #expect(error.code == .serverFailed && error.field == "gateway.port")
                #expect(error.message.contains("127.0.0.1:\(port)") && error.message.contains("--port"))
            }
        }
    }
}

import Foundation
import NIOHTTP1
import SageControlPlane
import SageGateway
import SageSimulator
import SageTesting
import Testing

/// A resolver that cannot reach any DNS server.
struct UnreachableResolver: HostResolving {
    func addresses(of host: String) async throws(ControlPlaneError) -> [String] {
        throw ControlPlaneError(.invalidConfiguration, "cannot resolve '\(host)': temporary failure in name resolution")
    }
}

/// What the gateway says about its discovery sources and itself as one of several replicas.
@Suite("Gateway discovery")
struct GatewayDiscoveryTests {
    @Test func anUnreachableSourceIsAWarningInReadyAndAMetricNotAnOutage() async throws {
        var configuration = GatewayConfiguration(host: "127.0.0.1", port: 0)
        configuration.replicaID = "gateway-7"
        let source = FleetSourceConfiguration(
            kind: .dns(host: "engines.test", port: 8000), template: InstanceTemplate(model: "m"), refresh: .milliseconds(100))
        try await withGateway(
            [engine()], configuration: configuration,
            controlPlane: { simulators in
                try ControlPlaneClient(
                    instances: specs(simulators), schedulingPolicy: .fifo, discovery: [source], resolver: UnreachableResolver())
            }
        ) { gateway in
            #expect(await eventually { gateway.controlPlane.discoveryStatus().first?.failures ?? 0 > 0 })
            let ready = try await gateway.send(.GET, "/ready")
            #expect(ready.status == 200, "the static instance still serves: \(ready.body)")
            let body = RunningGateway.json(ready.body)
            let sources = try #require(body["discovery"] as? [[String: Any]])
            #expect(sources.first?["source"] as? String == "dns engines.test:8000" && sources.first?["reachable"] as? Bool == false)
            #expect((sources.first?["error"] as? String)?.contains("temporary failure") == true)
            #expect((body["warnings"] as? [String])?.first?.contains("keeping its last 0 instances") == true, "\(body)")
            let metrics = try await gateway.send(.GET, "/metrics").body
            #expect(metrics.contains(#"sagellm_gateway_discovery_source_up{source="dns engines.test:8000"} 0"#), "\(metrics)")
            #expect(metrics.contains(#"sagellm_gateway_discovery_instances{source="dns engines.test:8000"} 0"#))
            #expect(metrics.contains(#"sagellm_gateway_replica_info{replica="gateway-7"} 1"#))
            #expect(try await gateway.send(.POST, "/v1/chat/completions", body: #"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":2}"#).status == 200)
        }
    }

    @Test func aReplicaIDMustBeSensible() {
        var configuration = GatewayConfiguration()
        configuration.replicaID = "a\"b"
        #expect(throws: GatewayError.self) { try configuration.validate() }
        configuration = (try? GatewayConfiguration().applying(environment: ["SAGE_GATEWAY_REPLICA_ID": "r-1"])) ?? GatewayConfiguration()
        #expect(configuration.replicaID == "r-1")
    }
}

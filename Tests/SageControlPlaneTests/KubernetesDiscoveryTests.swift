import Foundation
import SageTesting
import Synchronization
import Testing

@testable import SageControlPlane

/// What a source reported, in order.
final class SourceReports: Sendable {
    private let reports = Mutex<[FleetSourceReport]>([])
    func append(_ report: FleetSourceReport) { reports.withLock { $0.append(report) } }
    var all: [FleetSourceReport] { reports.withLock { $0 } }
    /// The ids of the last fleet reported.
    var lastFleet: [String]? {
        for report in all.reversed() { if case .fleet(let fleet) = report { return fleet.map(\.id) } }
        return nil
    }
    var lastFailure: String? {
        if case .unreachable(let reason)? = all.last { return reason }
        return nil
    }
}

/// The Kubernetes source against a fake API server that replays the documented list and
/// watch JSON (Kubernetes cannot run on these machines): ready endpoints only, a watch that
/// ends and resumes from the last version (bookmarks included), `410 Gone` as a status and as
/// an ERROR event (both relist), and an API server that refuses.
@Suite("Kubernetes discovery")
struct KubernetesDiscoveryTests {
    static func slice(version: String, endpoints: [(pod: String, ip: String, ready: Bool)]) -> String {
        let items = endpoints.map { endpoint in
            #"{"addresses":["\#(endpoint.ip)"],"conditions":{"ready":\#(endpoint.ready)},"targetRef":{"kind":"Pod","name":"\#(endpoint.pod)"},"nodeName":"node-\#(endpoint.pod)","zone":"zone-a"}"#
        }
        return #"{"kind":"EndpointSlice","metadata":{"name":"vllm-abc","uid":"u1","resourceVersion":"\#(version)","labels":{"kubernetes.io/service-name":"vllm"}},"addressType":"IPv4","endpoints":[\#(items.joined(separator: ","))],"ports":[{"name":"metrics","port":9090},{"name":"http","port":8000}]}"#
    }

    static func source(_ url: String, tokenFile: String? = nil, selection: KubernetesSelection, port: Int? = nil) -> KubernetesFleetSource {
        var source = KubernetesFleetSource(
            access: KubernetesAccess(apiServer: url, tokenFile: tokenFile), namespace: "inference", selection: selection, port: port,
            template: InstanceTemplate(model: "m", maxConcurrentRequests: 8))
        source.maximumBackoff = .milliseconds(500)
        return source
    }

    @Test func endpointSlicesAreListedWatchedAndResumed() async throws {
        try await FakeKubernetesAPI.with { api, url in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sagellm-k8s-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }  // cleanup only
            let tokenFile = directory.appendingPathComponent("token").path
            try "secret-token\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
            api.setList(#"{"kind":"EndpointSliceList","metadata":{"resourceVersion":"5"},"items":[\#(Self.slice(version: "5", endpoints: [("pod-a", "10.1.0.1", true), ("pod-b", "10.1.0.2", false)]))]}"#)
            let reports = SourceReports()
            let source = Self.source(url, tokenFile: tokenFile, selection: .endpointSlices(service: "vllm", portName: "http"))
            #expect(source.name == "kubernetes inference/vllm")
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await source.run { reports.append($0) } }
                defer { group.cancelAll() }
                #expect(await eventually { reports.lastFleet == ["pod-a"] }, "only the ready endpoint: \(reports.all)")
                guard case .fleet(let first)? = reports.all.last else { return }
                #expect(first.first?.baseURL == "http://10.1.0.1:8000/v1", "the port named http")
                #expect(first.first?.topology.machineID == "node-pod-a" && first.first?.topology.rackID == "zone-a")
                #expect(api.requests.first?.hasPrefix("/apis/discovery.k8s.io/v1/namespaces/inference/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dvllm") == true, "\(api.requests)")
                #expect(api.authorizations.first == "Bearer secret-token")

                // A change arrives on the watch.
                #expect(await eventually { api.openWatches == 1 })
                #expect(api.requests.last?.contains("resourceVersion=5") == true, "the watch starts at the list's version")
                api.send(#"{"type":"MODIFIED","object":\#(Self.slice(version: "6", endpoints: [("pod-a", "10.1.0.1", true), ("pod-b", "10.1.0.2", true)]))}"#)
                #expect(await eventually { reports.lastFleet == ["pod-a", "pod-b"] }, "\(reports.all)")

                // A bookmark moves the version; the watch ends and resumes from it, without a list.
                api.send(#"{"type":"BOOKMARK","object":{"kind":"EndpointSlice","metadata":{"resourceVersion":"9"}}}"#)
                // (The end of the watch follows the bookmark on the same connection, so it is read first.)
                let listsBefore = api.requests.filter { !$0.contains("watch=1") }.count
                api.endWatches()
                #expect(await eventually { api.openWatches == 1 })
                #expect(api.requests.last?.contains("resourceVersion=9") == true, "\(api.requests)")
                #expect(api.requests.filter { !$0.contains("watch=1") }.count == listsBefore, "resumed, not listed again")

                // An ERROR event with 410: the version is too old, so it lists again.
                api.setList(#"{"kind":"EndpointSliceList","metadata":{"resourceVersion":"20"},"items":[\#(Self.slice(version: "20", endpoints: [("pod-b", "10.1.0.2", true)]))]}"#)
                api.send(#"{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version"}}"#)
                #expect(await eventually { reports.lastFleet == ["pod-b"] }, "\(reports.all)")
                #expect(await eventually { api.requests.last?.contains("resourceVersion=20") == true })

                // A 410 status on opening the watch: the same.
                api.setList(#"{"kind":"EndpointSliceList","metadata":{"resourceVersion":"30"},"items":[]}"#)
                api.answerNextWatch(withStatus: 410)
                api.endWatches()
                #expect(await eventually { reports.lastFleet == [] }, "\(reports.all)")

                // The API server refuses: reported with what to check, and the fleet is not emptied by it.
                api.setList(#"{"kind":"EndpointSliceList","metadata":{"resourceVersion":"40"},"items":[\#(Self.slice(version: "40", endpoints: [("pod-c", "10.1.0.3", true)]))]}"#)
                api.answerNextWatch(withStatus: 410)
                api.endWatches()
                #expect(await eventually { reports.lastFleet == ["pod-c"] })
                api.failLists(withStatus: 403)
                api.answerNextWatch(withStatus: 410)
                api.endWatches()
                #expect(await eventually { reports.lastFailure != nil }, "\(reports.all)")
                #expect(reports.lastFailure?.contains("refused the request (403)") == true && reports.lastFailure?.contains("endpointslices") == true)
                #expect(reports.lastFleet == ["pod-c"], "a failure is a report of its own; the last fleet stands")
                api.failLists(withStatus: nil)
                #expect(await eventually { if case .fleet? = reports.all.last { return true } else { return false } }, "recovers")
            }
        }
    }

    @Test func podsByLabelTakeTheirTypeAndModelFromTheirLabels() async throws {
        try await FakeKubernetesAPI.with { api, url in
            func pod(_ name: String, ip: String, ready: Bool, labels: String) -> String {
                #"{"metadata":{"name":"\#(name)","uid":"\#(name)","resourceVersion":"3","labels":{\#(labels)}},"spec":{"nodeName":"node-1"},"status":{"phase":"Running","podIP":"\#(ip)","conditions":[{"type":"Ready","status":"\#(ready ? "True" : "False")"}]}}"#
            }
            api.setList(
                #"{"kind":"PodList","metadata":{"resourceVersion":"3"},"items":[\#(pod("decode-0", ip: "10.2.0.1", ready: true, labels: #""sagellm.io/instance-type":"DECODE","sagellm.io/model":"big","sagellm.io/max-concurrent-requests":"16","topology.kubernetes.io/zone":"z1""#)),\#(pod("prefill-0", ip: "10.2.0.2", ready: false, labels: #""sagellm.io/instance-type":"PREFILL""#)),\#(pod("plain-0", ip: "10.2.0.3", ready: true, labels: #""app":"vllm""#))]}"#)
            let reports = SourceReports()
            let source = Self.source(url, selection: .pods(labelSelector: "app in (vllm)"), port: 8000)
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await source.run { reports.append($0) } }
                defer { group.cancelAll() }
                #expect(await eventually { reports.lastFleet == ["decode-0", "plain-0"] }, "\(reports.all)")
                guard case .fleet(let fleet)? = reports.all.last else { return }
                #expect(fleet[0].type == .decode && fleet[0].model == "big" && fleet[0].maxConcurrentRequests == 16 && fleet[0].topology.rackID == "z1")
                #expect(fleet[1].type == .general && fleet[1].model == "m" && fleet[1].maxConcurrentRequests == 8)
                #expect(api.requests.first?.hasPrefix("/api/v1/namespaces/inference/pods?labelSelector=app%20in%20%28vllm%29") == true, "\(api.requests)")
            }
        }
    }

    /// A kubeconfig's current context gives the server, the namespace and the token; a user
    /// that signs in with a plugin is refused, saying what to do, without quoting the file.
    @Test func aKubeconfigGivesTheServerTheNamespaceAndTheToken() async throws {
        try await FakeKubernetesAPI.with { api, url in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sagellm-kubeconfig-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }  // cleanup only
            let kubeconfig = directory.appendingPathComponent("config").path
            try """
            apiVersion: v1
            kind: Config
            current-context: dev
            clusters:
              - name: local
                cluster:
                  server: \(url)
                  certificate-authority-data: \(Data("not a real CA".utf8).base64EncodedString())
            contexts:
              - name: dev
                context: {cluster: local, user: gateway, namespace: serving}
              - name: sso
                context: {cluster: local, user: human}
            users:
              - name: gateway
                user: {token: kube-token-0001}
              - name: human
                user:
                  exec: {command: kubelogin, args: [get-token], apiVersion: client.authentication.k8s.io/v1}
            """.write(toFile: kubeconfig, atomically: true, encoding: .utf8)
            let yaml = "discovery:\n  - kubernetes: vllm\n    kubeconfig: config\n    port: 8000\n    model_name: m\n"
            let cluster = directory.appendingPathComponent("cluster.yaml").path
            let configuration = try ClusterConfiguration.parse(yaml, file: cluster)
            guard case .kubernetes(let access, let namespace, _, _) = try #require(configuration.discovery.first).kind else {
                Issue.record("not a Kubernetes source")
                return
            }
            #expect(access.apiServer == url && namespace == "serving" && access.caFile != nil)
            #expect(!"\(access)".contains("kube-token-0001"), "the token is redacted when printed")
            api.setList(#"{"kind":"EndpointSliceList","metadata":{"resourceVersion":"1"},"items":[]}"#)
            let reports = SourceReports()
            let source = KubernetesFleetSource(
                access: KubernetesAccess(apiServer: url, token: access.token), namespace: namespace, selection: .endpointSlices(service: "vllm", portName: nil), port: 8000,
                template: InstanceTemplate(model: "m"))
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await source.run { reports.append($0) } }
                defer { group.cancelAll() }
                #expect(await eventually { reports.lastFleet == [] })
                #expect(api.authorizations.first == "Bearer kube-token-0001")
                #expect(api.requests.first?.hasPrefix("/apis/discovery.k8s.io/v1/namespaces/serving/endpointslices") == true)
            }
            do throws(ControlPlaneError) {
                _ = try ClusterConfiguration.parse(yaml.replacingOccurrences(of: "kubeconfig: config", with: "kubeconfig: config\n    context: sso"), file: cluster)
                Issue.record("a plugin user was accepted")
            } catch {
                #expect(error.message.contains("kubectl create token") && error.field == "discovery.kubeconfig", "\(error)")
            }
        }
    }
}

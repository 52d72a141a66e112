import Foundation

/// The parts of the Kubernetes API's JSON that discovery reads: lists and watch events of
/// EndpointSlices (`discovery.k8s.io/v1`) and Pods (`v1`). Every field is optional, so an
/// object written by a newer API server still reads.
enum KubernetesObjects {
    struct Metadata: Decodable, Sendable {
        var name: String?
        var namespace: String?
        var uid: String?
        var resourceVersion: String?
        var labels: [String: String]?
    }

    struct List<Item: Decodable & Sendable>: Decodable, Sendable {
        var metadata: Metadata?
        var items: [Item]?
    }

    /// One line of a watch: `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR` (whose
    /// object is a Status).
    struct Event<Object: Decodable & Sendable>: Decodable, Sendable {
        var type: String
        var object: Object?
    }

    /// The object of an `ERROR` event: `code` 410 means the resource version is too old.
    struct Status: Decodable, Sendable {
        var code: Int?
        var message: String?
        var reason: String?
    }

    struct EndpointSlice: Decodable, Sendable {
        struct Endpoint: Decodable, Sendable {
            struct Conditions: Decodable, Sendable {
                var ready: Bool?
                var terminating: Bool?
            }
            struct Reference: Decodable, Sendable {
                var kind: String?
                var name: String?
            }
            var addresses: [String]?
            var conditions: Conditions?
            var targetRef: Reference?
            var nodeName: String?
            var zone: String?
        }
        struct Port: Decodable, Sendable {
            var name: String?
            var port: Int?
        }
        var metadata: Metadata?
        var endpoints: [Endpoint]?
        var ports: [Port]?
    }

    struct Pod: Decodable, Sendable {
        struct Spec: Decodable, Sendable {
            var nodeName: String?
        }
        struct Status: Decodable, Sendable {
            struct Condition: Decodable, Sendable {
                var type: String?
                var status: String?
            }
            var podIP: String?
            var phase: String?
            var conditions: [Condition]?
        }
        var metadata: Metadata?
        var spec: Spec?
        var status: Status?
    }
}

/// The pod labels discovery reads, documented in `Docs/DEPLOYMENT.md`.
public enum KubernetesLabels {
    /// `GENERAL`, `PREFILL`, `DECODE` or `HYBRID` (else the source's `instance_type`).
    public static let instanceType = "sagellm.io/instance-type"
    /// The model the pod serves (else the source's `model_name`).
    public static let model = "sagellm.io/model"
    /// Requests the pod takes at once (else the source's `max_concurrent_requests`).
    public static let maxConcurrentRequests = "sagellm.io/max-concurrent-requests"
    /// The zone, as the rack of topology-aware routing.
    public static let zone = "topology.kubernetes.io/zone"
}

import Logging

/// The `discovery:` section of a cluster file: sources of instances beside (or instead of)
/// the static `instances:` list.
///
/// ```yaml
/// discovery:
///   - dns: vllm-headless.default.svc.cluster.local   # every address it resolves to
///     port: 8000
///     model_name: Qwen/Qwen2.5-7B-Instruct
///     instance_type: GENERAL                          # optional, as in `instances:`
///     max_concurrent_requests: 64                     # optional
///     refresh_seconds: 5                              # optional: how often it is resolved
///   - kubernetes: vllm                                # a Service's EndpointSlices (ready endpoints)
///     namespace: inference                            # optional: the pod's own
///     port_name: http                                 # optional: else the slice's first port
///     model_name: Qwen/Qwen2.5-7B-Instruct
///   - kubernetes_pods: app=vllm-decode                # pods by label selector; labels may set the type
///     port: 8000
///     model_name: Qwen/Qwen2.5-7B-Instruct
///     api_server: https://10.96.0.1                   # optional: in a pod, the in-cluster API
///   - etcd: http://10.0.0.1:2379,http://10.0.0.2:2379  # every member's client URL
///     prefix: /sagellm/instances/                     # keys written by `sagellm register`
/// ```
public struct FleetSourceConfiguration: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// A name resolved through the system resolver every ``FleetSourceConfiguration/refresh``.
        case dns(host: String, port: Int)
        /// EndpointSlices of a Service, or pods by label selector, listed and watched through
        /// the Kubernetes API (`port`: required for pods, else it overrides the slices').
        case kubernetes(access: KubernetesAccess, namespace: String, selection: KubernetesSelection, port: Int?)
        /// The keys under `prefix` in etcd v3, listed and watched: each value is an instance
        /// entry in JSON (the template is not used: the entries say everything).
        case etcd(endpoints: [String], prefix: String)
    }

    public var kind: Kind
    /// What the source does not say about its instances.
    public var template: InstanceTemplate
    /// How often a polled source (DNS) is read again; watched sources (Kubernetes) are told at once.
    public var refresh: Duration

    public init(kind: Kind, template: InstanceTemplate, refresh: Duration = .seconds(5)) {
        self.kind = kind
        self.template = template
        self.refresh = refresh
    }

    /// Checks the values, naming the key that is wrong (`discovery[0].port`).
    public func validate(at index: Int) throws(ControlPlaneError) {
        func fail(_ key: String, _ message: String) -> ControlPlaneError {
            ControlPlaneError(.invalidConfiguration, message, field: "discovery[\(index)].\(key)")
        }
        switch kind {
        case .dns(let host, let port):
            if host.isEmpty { throw fail("dns", "the DNS name is empty") }
            if !(1...65_535).contains(port) { throw fail("port", "the port must be 1-65535, got \(port)") }
        case .kubernetes(let access, let namespace, let selection, let port):
            if namespace.isEmpty { throw fail("namespace", "the namespace is empty") }
            if let port, !(1...65_535).contains(port) { throw fail("port", "the port must be 1-65535, got \(port)") }
            switch selection {
            case .endpointSlices(let service, _): if service.isEmpty { throw fail("kubernetes", "the Service name is empty") }
            case .pods(let selector):
                if selector.isEmpty { throw fail("kubernetes_pods", "the label selector is empty") }
                if port == nil { throw fail("port", "a pods source needs the engines' port") }
            }
            if !access.apiServer.hasPrefix("https://") && !access.apiServer.hasPrefix("http://") {
                throw fail("api_server", "the API server must be an http(s) URL, got '\(access.apiServer)'")
            }
        case .etcd(let endpoints, let prefix):
            if prefix.isEmpty { throw fail("prefix", "the key prefix is empty: name the prefix the sidecars register under, /sagellm/instances/") }
            if endpoints.isEmpty { throw fail("etcd", "no etcd endpoint is given") }
            for endpoint in endpoints where !endpoint.hasPrefix("http://") && !endpoint.hasPrefix("https://") {
                throw fail("etcd", "an etcd endpoint must be an http(s) URL, got '\(endpoint)'")
            }
            return
        }
        if template.model.isEmpty { throw fail("model_name", "the instances' model_name is empty") }
        if template.maxConcurrentRequests < 1 { throw fail("max_concurrent_requests", "must be at least 1, got \(template.maxConcurrentRequests)") }
        if !["http", "https"].contains(template.scheme) { throw fail("scheme", "use http or https, got '\(template.scheme)'") }
        if refresh < .milliseconds(100) || refresh > .seconds(3_600) {
            throw fail("refresh_seconds", "must be within 0.1-3600 seconds, got \(refresh)")
        }
    }

    /// The source that reads it; `resolver` for DNS names, `logger` for what a source logs itself.
    func source(resolver: any HostResolving, logger: Logger) -> any FleetSource {
        switch kind {
        case .dns(let host, let port): DNSFleetSource(host: host, port: port, template: template, interval: refresh, resolver: resolver)
        case .kubernetes(let access, let namespace, let selection, let port):
            KubernetesFleetSource(access: access, namespace: namespace, selection: selection, port: port, template: template)
        case .etcd(let endpoints, let prefix): EtcdFleetSource(endpoints: endpoints, prefix: prefix, logger: logger)
        }
    }
}

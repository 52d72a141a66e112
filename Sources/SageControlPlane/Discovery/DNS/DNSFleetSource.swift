/// A name that resolves to many addresses (a Kubernetes headless Service, a DNS round robin),
/// resolved again every `interval` through a ``HostResolving``: each address is an instance
/// made from `template`, named `address:port`. An address that appears is added; one that
/// vanishes is drained. A failed lookup keeps the last fleet.
struct DNSFleetSource: FleetSource {
    let host: String
    let port: Int
    let template: InstanceTemplate
    let interval: Duration
    let resolver: any HostResolving

    var name: String { "dns \(host):\(port)" }

    func run(_ report: @escaping @Sendable (FleetSourceReport) async -> Void) async {
        while !Task.isCancelled {
            await report(await read())
            do { try await Task.sleep(for: interval) } catch { return }  // cancelled
        }
    }

    /// One lookup, as a report.
    func read() async -> FleetSourceReport {
        do {
            let addresses = try await resolver.addresses(of: host)
            guard !addresses.isEmpty else { return .unreachable("'\(host)' resolved to no address") }
            return .fleet(addresses.sorted().map { address in
                template.instance(id: "\(address.contains(":") ? "[\(address)]" : address):\(port)", address: address, port: port)
            })
        } catch {
            return .unreachable(error.message)
        }
    }
}

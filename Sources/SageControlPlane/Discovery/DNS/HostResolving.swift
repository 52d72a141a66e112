import Dispatch
import Foundation

/// Turns a host name into its addresses. The default is the system's resolver
/// (`getaddrinfo`: /etc/hosts, the search domains, DNS); tests inject their own.
public protocol HostResolving: Sendable {
    /// Every address `host` resolves to now (IPv4 and IPv6, as text), or an error naming why not.
    func addresses(of host: String) async throws(ControlPlaneError) -> [String]
}

/// The system resolver, called on a Dispatch thread so that a slow lookup never blocks the
/// tasks' threads.
public struct SystemHostResolver: HostResolving {
    public init() {}

    public func addresses(of host: String) async throws(ControlPlaneError) -> [String] {
        let result: Result<[String], ControlPlaneError> = await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: Self.lookUp(host)) }
        }
        return try result.get()
    }

    static func lookUp(_ host: String) -> Result<[String], ControlPlaneError> {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0 else {
            let reason = String(cString: gai_strerror(status))
            return .failure(ControlPlaneError(.invalidConfiguration, "cannot resolve '\(host)': \(reason)", field: "discovery.dns"))
        }
        defer { freeaddrinfo(list) }
        var addresses: [String] = []
        var entry = list
        while let current = entry {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if let address = current.pointee.ai_addr,
                getnameinfo(address, current.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0
            {
                let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !addresses.contains(text) { addresses.append(text) }
            }
            entry = current.pointee.ai_next
        }
        return .success(addresses)
    }
}

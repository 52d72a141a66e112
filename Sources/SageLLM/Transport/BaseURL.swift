/// The parts of an `http://` or `https://` base URL that the client checks: user info, host,
/// port, query and fragment. Parsing is by hand and total: any text gives parts or nil,
/// never a trap.
package struct BaseURL: Sendable, Hashable {
    package var scheme: String
    /// `user:password` before an `@`, if any (never printed).
    package var userInfo: Substring?
    /// The host without brackets (`::1` for `[::1]`).
    package var host: String
    /// The port as written, if any.
    package var portText: Substring?
    package var hasQuery: Bool
    package var hasFragment: Bool

    /// Reads `url`; nil when it does not start with `http://` or `https://`.
    package init?(_ url: String) {
        let lower = url.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://") else { return nil }
        scheme = lower.hasPrefix("https://") ? "https" : "http"
        let rest = url.dropFirst(scheme.count + 3)
        var authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let afterAuthority = rest.dropFirst(authority.count)
        hasQuery = afterAuthority.contains("?")
        hasFragment = afterAuthority.contains("#")
        if let at = authority.lastIndex(of: "@") {
            userInfo = authority[..<at]
            authority = authority[authority.index(after: at)...]
        }
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            portText = after.hasPrefix(":") ? after.dropFirst() : nil
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            portText = authority[authority.index(after: colon)...]
        } else {
            host = String(authority)
        }
    }

    /// The port, when one is written and it is 1-65535; nil when none is written.
    /// - Throws: the reason, when one is written and it is not a valid port.
    package func port() throws(SageLLMError) -> Int? {
        guard let portText else { return nil }
        guard let port = Int(portText), OutsideNumber.port(port) != nil else {
            throw .invalidConfiguration(field: "baseURL", "the base URL's port must be 1-65535, got '\(portText)'")
        }
        return port
    }

    /// Whether the host is this machine: `localhost`, an IPv4 literal in 127.0.0.0/8, or `::1`.
    /// A name that merely starts with `127.` (`127.attacker.example`) is not.
    package var isLoopback: Bool { Self.isLoopbackHost(host) }

    package static func isLoopbackHost(_ host: String) -> Bool {
        let name = host.lowercased()
        if name == "localhost" || name == "::1" || name == "0:0:0:0:0:0:0:1" { return true }
        let octets = name.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4,
            octets.allSatisfy({ $0.count <= 3 && $0.allSatisfy({ $0 >= "0" && $0 <= "9" }) && UInt8($0) != nil })
        else { return false }
        return octets[0] == "127"
    }

    /// `url` with any user info replaced by `<redacted>`, for messages.
    package static func redactingUserInfo(_ url: String) -> String {
        guard let schemeEnd = url.firstRange(of: "://") else { return url }
        let rest = url[schemeEnd.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard let at = authority.lastIndex(of: "@") else { return url }
        return String(url[..<schemeEnd.upperBound]) + "<redacted>" + String(rest[at...])
    }
}

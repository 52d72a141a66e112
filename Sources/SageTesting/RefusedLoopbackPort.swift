#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `body` with a port on 127.0.0.1 that refuses connections: bound but not listening, so
/// connecting fails at once and no other server (of a test running in parallel) can take the
/// port meanwhile, as it can take a port that was merely freed. For testing how clients
/// treat a dead server.
package func withRefusedLoopbackPort<Result>(_ body: (Int) async throws -> Result) async throws -> Result {
    func failure(_ call: String) -> TestingError {
        TestingError("could not reserve a loopback port: \(call) failed (errno \(errno))")
    }
    #if canImport(Glibc)
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let descriptor = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard descriptor >= 0 else { throw failure("socket()") }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
    }
    guard bound == 0 else { throw failure("bind()") }
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
    }
    guard named == 0 else { throw failure("getsockname()") }
    return try await body(Int(UInt16(bigEndian: address.sin_port)))
}

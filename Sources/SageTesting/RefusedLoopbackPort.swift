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
    let (descriptor, port) = try boundLoopbackSocket()
    defer { close(descriptor) }
    return try await body(port)
}

/// `count` distinct ports on 127.0.0.1 that were free a moment ago (bound to port 0 together,
/// then released), for a server that must be told its ports before it starts (etcd's peers).
package func freeLoopbackPorts(count: Int) throws -> [Int] {
    var descriptors: [Int32] = []
    defer { for descriptor in descriptors { close(descriptor) } }
    var ports: [Int] = []
    for _ in 0..<count {
        let (descriptor, port) = try boundLoopbackSocket()
        descriptors.append(descriptor)
        ports.append(port)
    }
    return ports
}

/// A TCP socket bound to a free port of 127.0.0.1, not listening; the caller closes it.
private func boundLoopbackSocket() throws -> (descriptor: Int32, port: Int) {
    func failure(_ call: String) -> TestingError {
        TestingError("could not reserve a loopback port: \(call) failed (errno \(errno))")
    }
    #if canImport(Glibc)
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let descriptor = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard descriptor >= 0 else { throw failure("socket()") }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
    }
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
    }
    guard bound == 0, named == 0 else {
        close(descriptor)
        throw failure(bound == 0 ? "getsockname()" : "bind()")
    }
    return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
}

import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SageLLM
import Synchronization

/// A real etcd cluster of `members` processes on 127.0.0.1, each with its own data directory
/// under a temporary one, for the etcd discovery and registration tests. Needs the `etcd`
/// binary (Debian's `etcd-server`; `ETCD_BINARY` names another); ``binary`` is nil without it,
/// and the tests say so and are skipped.
package final class EtcdTestCluster: Sendable {
    /// Each member's client URL, `http://127.0.0.1:PORT`.
    package let clientURLs: [String]
    private let peerURLs: [String]
    private let directory: URL
    private let processes: Mutex<[Process?]>
    private let binary: String

    /// The etcd binary to run, or nil when there is none.
    package static var binary: String? {
        let environment = ProcessInfo.processInfo.environment
        let candidates = [environment["ETCD_BINARY"]].compactMap { $0 }
            + (environment["PATH"] ?? "/usr/bin").split(separator: ":").map { "\($0)/etcd" }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Why the etcd tests are skipped here, or nil when they can run.
    package static var skipReason: String? {
        binary == nil ? "etcd is not installed (apt-get install etcd-server, or set ETCD_BINARY): the etcd tests are skipped" : nil
    }

    /// Starts `members` members and waits until the cluster has a leader; stop it with ``shutdown()``.
    package static func start(members: Int = 3) async throws -> EtcdTestCluster {
        guard let binary else { throw TestingError(skipReason ?? "no etcd") }
        let ports = try freeLoopbackPorts(count: members * 2)
        let cluster = try EtcdTestCluster(binary: binary, ports: ports, members: members)
        for member in 0..<members { try cluster.launch(member) }
        guard await cluster.waitUntilHealthy(timeout: .seconds(20)) else {
            cluster.shutdown()
            throw TestingError("the etcd cluster did not become healthy within 20 s (logs in \(cluster.directory.path))")
        }
        return cluster
    }

    private init(binary: String, ports: [Int], members: Int) throws {
        self.binary = binary
        clientURLs = (0..<members).map { "http://127.0.0.1:\(ports[$0 * 2])" }
        peerURLs = (0..<members).map { "http://127.0.0.1:\(ports[$0 * 2 + 1])" }
        // In memory where there is a tmpfs: etcd syncs its log on every write, which on a disk
        // shared with the other tests running in parallel stalls them all.
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? URL(fileURLWithPath: "/dev/shm") : FileManager.default.temporaryDirectory
        directory = base.appendingPathComponent("sagellm-etcd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        processes = Mutex(Array(repeating: nil, count: members))
    }

    /// Kills member `member` at once (SIGKILL): its connections drop, as when a machine fails.
    package func kill(member: Int) {
        let process = processes.withLock { processes in
            defer { processes[member] = nil }
            return processes[member]
        }
        guard let process, process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Starts a killed member again, with its data.
    package func restart(member: Int) throws { try launch(member) }

    /// Kills every member and removes the data.
    package func shutdown() {
        for member in clientURLs.indices { kill(member: member) }
        try? FileManager.default.removeItem(at: directory)  // a leftover temporary directory is harmless
    }

    private func launch(_ member: Int) throws {
        let name = "m\(member)"
        let cluster = zip(clientURLs.indices, peerURLs).map { "m\($0)=\($1)" }.joined(separator: ",")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "--name", name, "--data-dir", directory.appendingPathComponent(name).path,
            "--listen-client-urls", clientURLs[member], "--advertise-client-urls", clientURLs[member],
            "--listen-peer-urls", peerURLs[member], "--initial-advertise-peer-urls", peerURLs[member],
            "--initial-cluster", cluster, "--initial-cluster-state", "new", "--initial-cluster-token", directory.lastPathComponent,
            // Fast elections, so that losing a member costs tests little time.
            "--heartbeat-interval", "50", "--election-timeout", "500",
        ]
        let log = directory.appendingPathComponent("\(name).log")
        guard FileManager.default.createFile(atPath: log.path, contents: nil) else { throw TestingError("cannot create \(log.path)") }
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        processes.withLock { $0[member] = process }
    }

    /// Whether every running member answers `/health` with `"health":"true"` before `timeout`.
    package func waitUntilHealthy(timeout: Duration) async -> Bool {
        await eventually(timeout: timeout) {
            for (member, url) in clientURLs.enumerated() where isRunning(member) {
                guard let body = await Self.get(url, "health"), body.contains("\"health\":\"true\"") else { return false }
            }
            return true
        }
    }

    /// Puts `value` under `key` through the member at `url` (no lease), as a test's setup.
    package static func put(_ url: String, key: String, value: String) async throws {
        let transport = try HTTPTransport(baseURL: url, apiKey: nil, configuration: TransportConfiguration(), logger: Logger(label: "etcd-test"))
        let body = #"{"key":"\#(Data(key.utf8).base64EncodedString())","value":"\#(Data(value.utf8).base64EncodedString())"}"#
        do {
            _ = try await transport.send(method: .POST, path: "v3/kv/put", body: ByteBuffer(string: body), requestID: "etcd-test-put")
        } catch {
            try? await transport.shutdown()  // closing a test's connection
            throw error
        }
        try? await transport.shutdown()  // closing a test's connection
    }

    /// The body of `GET url/path`, or nil when it cannot be read.
    private static func get(_ url: String, _ path: String) async -> String? {
        guard let transport = try? HTTPTransport(baseURL: url, apiKey: nil, configuration: TransportConfiguration(), logger: Logger(label: "etcd-test")) else {
            return nil
        }
        let body = try? await transport.sendToServerRoot(method: .GET, path, timeout: .seconds(1), maximumBytes: 1 << 20)
        try? await transport.shutdown()  // closing a test's connection
        return body.map { String(buffer: $0) }
    }

    private func isRunning(_ member: Int) -> Bool { processes.withLock { $0[member]?.isRunning ?? false } }
}

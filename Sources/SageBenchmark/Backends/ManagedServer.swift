import AsyncHTTPClient
import Foundation
import SageLLM
import NIOCore
import NIOHTTP1
import Synchronization

/// A server process the benchmark starts and stops itself (`vllm serve`, `lmdeploy serve
/// api_server`): started with its arguments, waited for until `/health` answers 200 (or the
/// `/v1/models` list, for servers without `/health`), stopped with SIGTERM (then SIGKILL)
/// on ``stop()``. Its output is kept, and the last lines go into every startup error.
public final class ManagedServer: Sendable {
    public let command: [String]
    public let baseURL: String
    private let process: Process
    private let output: OutputTail

    /// Starts `command` (the first element is looked up on `PATH`) and waits until the
    /// server at `root` (e.g. `http://127.0.0.1:8000`) is healthy, or `startupTimeout` ends.
    public static func start(_ command: [String], root: String, startupTimeout: Duration) async throws(BenchmarkError)
        -> ManagedServer
    {
        guard let executable = command.first, let path = Self.find(executable) else {
            throw BenchmarkError(
                .backendUnavailable,
                "'\(command.first ?? "")' is not on PATH; install it, or run the server yourself and pass --base-url", field: "backend")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = Array(command.dropFirst())
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let output = OutputTail()
        pipe.fileHandleForReading.readabilityHandler = { output.append($0.availableData) }
        do {
            try process.run()
        } catch {
            throw BenchmarkError(.backendUnavailable, "could not start \(command.joined(separator: " ")): \(error)")
        }
        let server = ManagedServer(command: command, baseURL: root + "/v1", process: process, output: output)
        let deadline = ContinuousClock.now + startupTimeout
        while ContinuousClock.now < deadline {
            if !process.isRunning {
                Self.drain(pipe.fileHandleForReading, into: output)
                throw BenchmarkError(
                    .backendUnavailable,
                    "\(command.joined(separator: " ")) exited with status \(process.terminationStatus) before it was healthy; its last output:\n\(output.text)")
            }
            if await Self.isHealthy(root) { return server }
            do {
                try await Task.sleep(for: .milliseconds(200))
            } catch {
                await server.stop()
                throw BenchmarkError(.backendUnavailable, "cancelled while waiting for \(command.joined(separator: " "))")
            }
        }
        await server.stop()
        throw BenchmarkError(
            .backendUnavailable,
            "\(command.joined(separator: " ")) was not healthy at \(root)/health within \(SageLLMError.format(startupTimeout)); its last output:\n\(output.text)")
    }

    private init(command: [String], baseURL: String, process: Process, output: OutputTail) {
        self.command = command
        self.baseURL = baseURL
        self.process = process
        self.output = output
    }

    /// The process id (for its memory and CPU time in `/proc`).
    public var pid: Int32 { process.processIdentifier }

    /// The server's peak resident memory so far, in MB.
    public func peakMemoryMegabytes() -> Double? { ProcessMemory.peakMegabytes(pid: pid) }

    /// SIGTERM, up to 10 s for a clean exit, then SIGKILL.
    public func stop() async {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = ContinuousClock.now + .seconds(10)
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))  // polling; a cancelled wait goes straight to SIGKILL
        }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    static func isHealthy(_ root: String) async -> Bool {
        for path in ["/health", "/v1/models"] {
            var request = HTTPClientRequest(url: root + path)
            request.method = .GET
            do {
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(2))
                _ = try await response.body.collect(upTo: 1 << 20)
                if response.status.code == 200 { return true }
            } catch {
                continue  // not up yet
            }
        }
        return false
    }

    static func find(_ executable: String) -> String? {
        if executable.contains("/") { return FileManager.default.isExecutableFile(atPath: executable) ? executable : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(executable)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Keeps the last 4 KiB a process wrote.
    /// Reads what the exited process left in the pipe: the handler may not have run for its
    /// last words yet, and they usually say why it died.
    private static func drain(_ handle: FileHandle, into output: OutputTail) {
        handle.readabilityHandler = nil
        var descriptor = pollfd(fd: handle.fileDescriptor, events: Int16(POLLIN), revents: 0)
        // Up to 100 ms for each piece still in the pipe; an empty read is the end of file.
        while poll(&descriptor, 1, 100) > 0 {
            let data = handle.availableData
            if data.isEmpty { break }
            output.append(data)
        }
    }

    final class OutputTail: Sendable {
        private let bytes = Mutex<[UInt8]>([])
        func append(_ data: Data) {
            bytes.withLock { bytes in
                bytes.append(contentsOf: data)
                if bytes.count > 4096 { bytes.removeFirst(bytes.count - 4096) }
            }
        }
        var text: String { bytes.withLock { String(decoding: $0, as: UTF8.self) } }
    }
}

import AsyncHTTPClient
import Foundation
import NIOCore
import SageBenchmark
import SageLLM
import SageSimulator

#if canImport(Glibc)
import Glibc
#endif

extension SagePerformance {
    /// How much memory the gateway needs per stream held open: `sagellm serve` and a simulated
    /// engine (`sagellm simulate`, which sends its first event and then stalls for 10 minutes)
    /// each in a process of their own; this program opens the streams as plain sockets that
    /// send a request and then read nothing. The gateway's RSS is read from `/proc` before and
    /// with every stream established (each one's first event relayed).
    ///
    /// Each stream costs the gateway two sockets (the client's and the engine's), so the
    /// streams are capped by the open-file limit: `min(10,000, (limit - 400) / 2)`.
    static func gatewayIdleStreamsBenchmark() async throws {
        print("Gateway idle streams (sagellm serve and sagellm simulate in their own processes; streams stalled after their first event)")
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let sagellm = directory.appendingPathComponent("sagellm").path
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let fileLimit = Int(clamping: limit.rlim_cur)
        let streams = max(100, min(10_000, (fileLimit - 400) / 2))
        if streams < 10_000 {
            print("  this machine allows \(fileLimit) open files per process (hard limit \(limit.rlim_max)); the gateway needs 2 per stream: \(streams) streams")
        }
        let enginePort = try await freePort()
        let engine = try await ManagedServer.start(
            [sagellm, "simulate", "--port", String(enginePort), "--model", "idle", "--stall-ms", "600000", "--max-batch", "20000",
             "--jitter", "0", "--prefill-tps", "0"],
            root: "http://127.0.0.1:\(enginePort)", startupTimeout: .seconds(30))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("sagellm-perf-idle-\(getpid()).yaml").path
        try """
        instances:
          - instance_id: stalled
            base_url: http://127.0.0.1:\(enginePort)/v1
            model_name: idle
            max_concurrent_requests: 20000
        """.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let gatewayPort = try await freePort()
        let gateway: ManagedServer
        do {
            gateway = try await ManagedServer.start(
                [sagellm, "serve", "--config", file, "--port", String(gatewayPort)], root: "http://127.0.0.1:\(gatewayPort)",
                startupTimeout: .seconds(30))
        } catch {
            await engine.stop()
            throw error
        }
        do {
            try await holdIdleStreams(streams, gateway: gateway, gatewayPort: gatewayPort, engine: engine)
        } catch {
            print("  failed: \(error)")
        }
        // The engine's streams stall for 10 minutes: it is not waited for.
        await gateway.stop()
        kill(engine.pid, SIGKILL)
        await engine.stop()
        print("")
    }

    private static func holdIdleStreams(_ streams: Int, gateway: ManagedServer, gatewayPort: Int, engine: ManagedServer) async throws {
        let request = Array(
            """
            POST /v1/chat/completions HTTP/1.1\r
            host: 127.0.0.1\r
            content-type: application/json\r
            content-length: 92\r
            \r
            {"model":"idle","messages":[{"role":"user","content":"wait"}],"max_tokens":16,"stream":true}
            """.utf8)
        var sockets: [Int32] = []
        defer { for socket in sockets { close(socket) } }
        // A few streams first, so that the base figure includes the pools and caches warmed up.
        sockets += try openStreams(100, port: gatewayPort, request: request)
        guard await waitForActive(100, gateway: gateway.baseURL) else { throw PerformanceError("the warm-up streams were not established") }
        let base = residentBytes(gateway.pid)
        let cpuBefore = (processCPUSeconds(gateway.pid), processCPUSeconds(engine.pid))
        let started = ContinuousClock.now
        sockets += try openStreams(streams - 100, port: gatewayPort, request: request)
        let established = await waitForActive(streams, gateway: gateway.baseURL, timeout: .seconds(120))
        let took = ContinuousClock.now - started
        let held = residentBytes(gateway.pid)
        let cpu = (processCPUSeconds(gateway.pid) - cpuBefore.0, processCPUSeconds(engine.pid) - cpuBefore.1)
        print("  \(streams) streams \(established ? "established" : "NOT all established") in \(fmt3(took.seconds)) s (CPU: gateway \(fmt3(cpu.0)) s, engine \(fmt3(cpu.1)) s)")
        print("  gateway RSS: \(base / 1_048_576) MiB with 100 streams, \(held / 1_048_576) MiB with \(streams): \(fmt3(Double(held - base) / Double(streams - 100) / 1024)) KiB per stream")
        for socket in sockets { close(socket) }
        sockets = []
        let drained = await waitForActive(0, gateway: gateway.baseURL, timeout: .seconds(60))
        print("  all closed: \(drained ? "the gateway's requests came back to 0" : "requests still active"); RSS then \(residentBytes(gateway.pid) / 1_048_576) MiB")
    }

    struct PerformanceError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// A port that was free a moment ago.
    static func freePort() async throws -> Int { try await withSimulatorServer { $0.port } }

    static func fetch(_ url: String) async throws -> String {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
        return String(buffer: try await response.body.collect(upTo: 16 << 20))
    }

    /// `count` connections to 127.0.0.1:`port`, each having sent `request`.
    static func openStreams(_ count: Int, port: Int, request: [UInt8]) throws -> [Int32] {
        var sockets: [Int32] = []
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(clamping: port)).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        for _ in 0..<count {
            let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard socket >= 0 else { throw PerformanceError("socket() failed: errno \(errno) after \(sockets.count) streams") }
            sockets.append(socket)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { throw PerformanceError("connect() failed: errno \(errno) after \(sockets.count - 1) streams") }
            let written = request.withUnsafeBytes { write(socket, $0.baseAddress, $0.count) }
            guard written == request.count else { throw PerformanceError("write() failed: errno \(errno)") }
        }
        return sockets
    }

    /// Whether the gateway's `sagellm_gateway_requests_active` reached `count` within `timeout`.
    static func waitForActive(_ count: Int, gateway root: String, timeout: Duration = .seconds(30)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        let url = root.hasSuffix("/v1") ? String(root.dropLast(3)) + "/metrics" : root + "/metrics"
        while ContinuousClock.now < deadline {
            if let text = try? await fetch(url),
                let line = text.split(separator: "\n").first(where: { $0.hasPrefix("sagellm_gateway_requests_active ") }),
                line.split(separator: " ").last.flatMap({ Double($0) }) == Double(count)
            {
                return true
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return false
    }

    /// A process's resident memory from `/proc/PID/status`, in bytes; 0 when unreadable.
    static func residentBytes(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        else { return 0 }
        return kilobytes * 1024
    }
}

import ArgumentParser
import Synchronization
import UnixSignals

/// The entry point of both executables: parses the arguments, runs the command, and turns
/// SIGINT (Ctrl-C) or SIGTERM into cancellation of the command's work, so that requests in
/// flight are cancelled (their connections close and the server stops generating) before the
/// process ends. An interrupted command ends quietly with status 128 + the signal (130 for
/// Ctrl-C, 143 for SIGTERM), as shells expect.
/// A command that conforms to ``HandlesItsOwnSignals`` (a server that stops gracefully) is
/// run as it is.
public enum CommandLineMain {
    public static func run<Root: ParsableCommand>(_ root: Root.Type, arguments: [String]? = nil) async {
        do {
            let command = try root.parseAsRoot(arguments)
            guard let asynchronous = command as? any AsyncParsableCommand else {
                var synchronous = command
                try synchronous.run()
                return
            }
            if asynchronous is any HandlesItsOwnSignals {
                var running = asynchronous
                try await running.run()
            } else if let signal = try await runUntilInterrupted(asynchronous) {
                throw ExitCode(128 + signal.rawValue)
            }
        } catch {
            root.exit(withError: error)
        }
    }

    /// Runs `command`; returns the signal that interrupted it, or nil when it ended by itself.
    static func runUntilInterrupted(_ command: any AsyncParsableCommand) async throws -> UnixSignal? {
        let moved = MovedCommand(command: command)
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        let received = ReceivedSignal()
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    var running = moved.command
                    try await running.run()
                }
                group.addTask {
                    for await signal in signals {
                        received.signal.withLock { $0 = signal }
                        throw Interrupted()
                    }
                }
                // The first to end: the command (done, or failed), or the signal watcher (interrupted).
                try await group.next()
                group.cancelAll()
            }
        } catch {
            // After a signal, whatever the cancelled work threw is the interruption itself.
            if let signal = received.signal.withLock({ $0 }) { return signal }
            throw error
        }
        return received.signal.withLock { $0 }
    }

    private struct Interrupted: Error {}

    /// The parsed command, handed to the task that runs it.
    private struct MovedCommand: @unchecked Sendable {
        // Safety: only the child task that runs the command uses it; the caller does not touch
        // it after the hand-over.
        var command: any AsyncParsableCommand
    }

    private final class ReceivedSignal: Sendable {
        let signal = Mutex<UnixSignal?>(nil)
    }
}

/// A command that traps SIGINT and SIGTERM itself (a server that finishes its requests and
/// ends with status 0).
public protocol HandlesItsOwnSignals {}

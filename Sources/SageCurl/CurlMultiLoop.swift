#if Curl
import CCurl
import Foundation
import SageLLM
import Synchronization

/// One libcurl multi handle and the thread that drives it: transfers are added, unpaused and
/// cancelled through commands (the thread is woken with `curl_multi_wakeup`), so no Swift
/// concurrency thread ever blocks in libcurl. The thread waits in `curl_multi_poll` until a
/// socket is ready, a command arrives or the next timer of an exchange is due.
final class CurlMultiLoop: @unchecked Sendable {
    // Safety: `multi` and `active` are used on the loop's thread only; other threads reach it
    // through `commands` (under its lock) and `curl_multi_wakeup`, which libcurl allows from
    // any thread, called under the same lock so it never meets a cleaned-up handle.
    enum Command {
        case add(CurlExchange)
        case resume(CurlExchange)
        case cancel(CurlExchange)
    }

    private struct Queue {
        var commands: [Command] = []
        var stopping = false
        var stopped = false
        var onStopped: [CheckedContinuation<Void, Never>] = []
    }

    private let multi: UnsafeMutableRawPointer
    private let queue = Mutex(Queue())
    private var active: [UnsafeMutableRawPointer: CurlExchange] = [:]
    /// Cancelled before the loop added them.
    private var cancelledBeforeAdd = Set<ObjectIdentifier>()

    init?(maximumConnectionsPerHost: Int) {
        guard let multi = curl_multi_init() else { return nil }
        self.multi = multi
        sage_curl_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, maximumConnectionsPerHost)
        sage_curl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, maximumConnectionsPerHost)
        let thread = Thread { [self] in run() }
        thread.name = "sagellm-curl"
        thread.start()
    }

    /// Hands a command to the loop; false when the loop has stopped.
    @discardableResult
    func submit(_ command: Command) -> Bool {
        queue.withLock { queue in
            guard !queue.stopping else { return false }
            queue.commands.append(command)
            curl_multi_wakeup(multi)
            return true
        }
    }

    /// Ends every transfer (as cancelled) and the thread; returns once it has stopped.
    func stop() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let stopped = queue.withLock { queue -> Bool in
                if queue.stopped { return true }
                queue.onStopped.append(continuation)
                queue.stopping = true
                curl_multi_wakeup(multi)
                return false
            }
            if stopped { continuation.resume() }
        }
    }

    private func run() {
        var running: Int32 = 0
        while true {
            let (commands, stopping) = queue.withLock { queue in
                defer { queue.commands = [] }
                return (queue.commands, queue.stopping)
            }
            for command in commands { handle(command) }
            if stopping { break }
            curl_multi_perform(multi, &running)
            var left: Int32 = 0
            while let message = curl_multi_info_read(multi, &left) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
                let code = sage_curl_message_result(message)
                finish(easy) { $0.completed(code) }
            }
            let now = ContinuousClock.now
            var next = now + .milliseconds(1000)
            for exchange in Array(active.values) {
                if let failure = exchange.overdue(at: now) {
                    finish(exchange.easy) { $0.end(failure) }
                } else if let check = exchange.nextCheck() {
                    next = min(next, check)
                }
            }
            let wait = max(0, min(1000, CurlExchange.milliseconds(next - .now)))
            curl_multi_poll(multi, nil, 0, Int32(wait), nil)
        }
        for easy in Array(active.keys) {
            finish(easy) { $0.end(TransportFailure(.cancelled, requestWritten: $0.written)) }
        }
        let waiters = queue.withLock { queue in
            queue.stopped = true
            curl_multi_cleanup(multi)
            defer { queue.onStopped = [] }
            return queue.onStopped
        }
        for waiter in waiters { waiter.resume() }
    }

    private func handle(_ command: Command) {
        switch command {
        case .add(let exchange):
            if cancelledBeforeAdd.remove(ObjectIdentifier(exchange)) != nil {
                exchange.end(TransportFailure(.cancelled, requestWritten: false))
                return
            }
            active[exchange.easy] = exchange
            curl_multi_add_handle(multi, exchange.easy)
        case .resume(let exchange):
            guard active[exchange.easy] === exchange else { return }
            exchange.pauseNext = false
            if exchange.paused {
                exchange.paused = false
                curl_easy_pause(exchange.easy, SAGE_CURLPAUSE_CONT)
            }
        case .cancel(let exchange):
            guard active[exchange.easy] === exchange else {
                // Not added yet (its task was cancelled at once): the add that follows ends it.
                if !exchange.ended { cancelledBeforeAdd.insert(ObjectIdentifier(exchange)) }
                return
            }
            finish(exchange.easy) { $0.end(TransportFailure(.cancelled, requestWritten: $0.written)) }
        }
    }

    /// Takes the transfer off the multi handle, then tells its exchange how it ended.
    private func finish(_ easy: UnsafeMutableRawPointer, _ end: (CurlExchange) -> Void) {
        guard let exchange = active.removeValue(forKey: easy) else { return }
        curl_multi_remove_handle(multi, easy)
        end(exchange)
    }
}
#endif

import DequeModule
import SageSupport
import Testing

/// The waiting room that the client's concurrency limit and the control plane's admission
/// queue share.
@Suite("Waiting room")
struct WaitingRoomTests {
    struct Timeout: Error {}

    /// A room whose state is a queue of waiter ids; `hand` gives the oldest a value.
    final class Queue: Sendable {
        let room = WaitingRoom<Deque<UInt64>, Int>(Deque())

        func wait(_ id: UInt64, ready: Int? = nil) async throws -> Int {
            try await room.wait(
                id: id,
                admit: { queue in
                    if let ready { return (.ready(ready), []) }
                    queue.append(id)
                    return (.park, [])
                },
                withdraw: { queue in queue.removeAll { $0 == id } },
                cancelled: { CancellationError() })
        }

        func hand(_ value: Int) -> Bool {
            var handed = false
            room.update { queue in
                guard let id = queue.popFirst() else { return [] }
                handed = true
                return [.init(id, .success(value))]
            }
            return handed
        }

        var waiting: Int { room.withState { $0.count } }
    }

    @Test func parkedWaitersGetTheirValuesInOrder() async throws {
        let queue = Queue()
        #expect(try await queue.wait(1, ready: 7) == 7, "a ready waiter does not park")
        try await withThrowingTaskGroup(of: (UInt64, Int).self) { group in
            for id: UInt64 in 1...3 {
                group.addTask { (id, try await queue.wait(id)) }
                while queue.waiting < Int(id) { await Task.yield() }  // parked in this order
            }
            for value in 10...12 { #expect(queue.hand(value)) }
            var got: [UInt64: Int] = [:]
            for try await (id, value) in group { got[id] = value }
            #expect(got == [1: 10, 2: 11, 3: 12])
        }
    }

    @Test func aCancelledWaiterLeavesTheQueueEvenBeforeItParked() async throws {
        let queue = Queue()
        let parked = Task { try await queue.wait(1) }
        while queue.waiting < 1 { await Task.yield() }
        parked.cancel()
        await #expect(throws: CancellationError.self) { try await parked.value }
        #expect(queue.waiting == 0, "withdrawn from the owner's queue")
        #expect(!queue.hand(1), "nobody left to hand to")

        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }  // cancelled before it parks
            return try await queue.wait(2)
        }
        await #expect(throws: CancellationError.self) { try await early.value }
        #expect(queue.waiting == 0)
    }

    @Test func aWithdrawnWaiterThrowsTheGivenError() async throws {
        let queue = Queue()
        let parked = Task { try await queue.wait(5) }
        while queue.waiting < 1 { await Task.yield() }
        queue.room.withdraw(5, error: Timeout(), using: { queue in queue.removeAll { $0 == 5 } })
        await #expect(throws: Timeout.self) { try await parked.value }
        #expect(queue.waiting == 0)
    }
}

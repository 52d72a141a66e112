import SageLLM
import Testing

@testable import SageControlPlane

/// The admission queue keeps the heaps of orderings it set aside (`adaptive` flips between
/// them) up to date: whatever the flips, inserts and removals, the first request in line is
/// the one a fresh sort of the waiting requests puts first.
struct WaitingQueueTests {
    @Test func flippingOrderingsAlwaysGivesTheFirstInLineOfAFreshSort() {
        let origin = ContinuousClock.now
        var queue = WaitingQueue(origin: origin)
        var random = SystemRandomNumberGenerator()
        let orderings: [WaitingQueue.Ordering] = [.arrival, .deadline, .priority(aging: 5), .arrival, .priority(aging: 5), .deadline]
        var waiting: [UInt64: (request: QueuedRequest, sequence: Int)] = [:]
        var nextID: UInt64 = 0
        var sequence = 0
        for step in 0..<3_000 {
            if waiting.isEmpty || Int.random(in: 0..<3, using: &random) > 0 {
                nextID += 1
                sequence += 1
                let priority = RequestPriority(rawValue: Int.random(in: 0...4, using: &random)) ?? .normal
                let deadline: ContinuousClock.Instant? =
                    Bool.random(using: &random) ? origin + .milliseconds(Int.random(in: 1...100_000, using: &random)) : nil
                let request = QueuedRequest(
                    id: nextID, model: "m", placement: RequestPlacement(priority: priority), arrival: origin + .milliseconds(step),
                    deadline: deadline, prefixBlocks: [], excluded: [], topologyAnchor: nil)
                queue.insert(request)
                waiting[nextID] = (request, sequence)
            } else if let victim = waiting.keys.randomElement(using: &random) {
                queue.remove(victim)
                waiting[victim] = nil
            }
            if step % 97 == 0 { queue.order(by: orderings[(step / 97) % orderings.count]) }
            let pool = PoolKey(model: "m", phase: .whole)
            let expected = waiting.values.min { a, b in
                let (x, y) = (Self.key(a.request, queue.ordering, origin), Self.key(b.request, queue.ordering, origin))
                return x < y || (x == y && a.sequence < b.sequence)
            }
            #expect(queue.first(in: pool)?.request.id == expected?.request.id, "step \(step), \(queue.ordering)")
        }
    }

    static func key(_ request: QueuedRequest, _ ordering: WaitingQueue.Ordering, _ origin: ContinuousClock.Instant) -> Double {
        switch ordering {
        case .arrival: (request.arrival - origin) / .seconds(1)
        case .priority(let aging): Double(request.placement.priority.rawValue) + (request.arrival - origin) / .seconds(1) / aging
        case .deadline: request.deadline.map { ($0 - origin) / .seconds(1) } ?? .infinity
        }
    }
}

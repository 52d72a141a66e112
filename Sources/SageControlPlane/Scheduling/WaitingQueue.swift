/// The admission queue: per pool (model and phase) a binary heap ordered by the policy's
/// key, so that adding, taking the first and removing cost O(log n) however long the queue
/// grows. Every key is fixed when the request is queued (aging and deadlines are measured
/// from a fixed origin), so the order never needs refreshing until the policy changes.
struct WaitingQueue: Sendable {
    /// How a policy orders waiting requests.
    enum Ordering: Sendable, Equatable {
        /// Arrival order (`fifo`, `cost_optimized`).
        case arrival
        /// Priority, each level worth `aging` of waiting (`priority`).
        case priority(aging: Double)
        /// Earliest deadline first, those without one last (`slo_aware`).
        case deadline
    }

    struct Entry: Sendable {
        var request: QueuedRequest
        let sequence: UInt64
    }

    private struct Item: Sendable {
        let key: Double
        let sequence: UInt64
        let id: UInt64

        func precedes(_ other: Item) -> Bool { key < other.key || (key == other.key && sequence < other.sequence) }
    }

    /// Live entries by request id; heap items whose entry is gone are skipped when they surface.
    private(set) var entries: [UInt64: Entry] = [:]
    private var heaps: [PoolKey: [Item]] = [:]
    private var liveByPool: [PoolKey: Int] = [:]
    private(set) var ordering = Ordering.arrival
    private var nextSequence: UInt64 = 0
    private let origin: ContinuousClock.Instant
    /// Waiting requests of CRITICAL or HIGH priority, and those with a deadline (for `adaptive`).
    private(set) var urgentCount = 0
    private(set) var withDeadlineCount = 0

    init(origin: ContinuousClock.Instant) { self.origin = origin }

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }
    func hasWaiters(in pool: PoolKey) -> Bool { (liveByPool[pool] ?? 0) > 0 }
    var poolsWithWaiters: [PoolKey] { liveByPool.compactMap { $0.value > 0 ? $0.key : nil } }

    mutating func insert(_ request: QueuedRequest) {
        nextSequence += 1
        insert(Entry(request: request, sequence: nextSequence))
    }

    private mutating func insert(_ entry: Entry) {
        let request = entry.request
        entries[request.id] = entry
        liveByPool[request.pool, default: 0] += 1
        if request.placement.priority <= .high { urgentCount += 1 }
        if request.deadline != nil { withDeadlineCount += 1 }
        push(Item(key: key(request), sequence: entry.sequence, id: request.id), into: request.pool)
    }

    @discardableResult
    mutating func remove(_ id: UInt64) -> Entry? {
        guard let entry = entries.removeValue(forKey: id) else { return nil }
        let request = entry.request
        liveByPool[request.pool, default: 1] -= 1
        if request.placement.priority <= .high { urgentCount -= 1 }
        if request.deadline != nil { withDeadlineCount -= 1 }
        // Dead items are dropped as they surface; a heap mostly dead is rebuilt.
        if let heap = heaps[request.pool], heap.count > 64 && heap.count > 4 * (liveByPool[request.pool] ?? 0) { rebuild(request.pool) }
        return entry
    }

    /// Changes a waiting request (its deadline, say), keeping its place in arrival order.
    mutating func update(_ id: UInt64, _ change: (inout QueuedRequest) -> Void) {
        guard var entry = remove(id) else { return }
        change(&entry.request)
        insert(entry)
    }

    /// The first waiting request of `pool` in the current order.
    mutating func first(in pool: PoolKey) -> Entry? {
        while let top = heaps[pool]?.first {
            if let entry = entries[top.id], entry.sequence == top.sequence { return entry }
            popTop(of: pool)
        }
        return nil
    }

    /// Reorders every pool for `ordering` (when `adaptive` changes its mind).
    mutating func order(by ordering: Ordering) {
        guard ordering != self.ordering else { return }
        self.ordering = ordering
        for pool in Array(heaps.keys) { rebuild(pool) }
    }

    // MARK: Heap

    private func key(_ request: QueuedRequest) -> Double {
        switch ordering {
        case .arrival: 0
        case .priority(let aging):
            Double(request.placement.priority.rawValue) + (request.arrival - origin).seconds / aging
        case .deadline:
            request.deadline.map { ($0 - origin).seconds } ?? .infinity
        }
    }

    private mutating func rebuild(_ pool: PoolKey) {
        heaps[pool] = []
        for entry in entries.values where entry.request.pool == pool {
            push(Item(key: key(entry.request), sequence: entry.sequence, id: entry.request.id), into: pool)
        }
        if heaps[pool]?.isEmpty ?? true {
            heaps[pool] = nil
            liveByPool[pool] = nil
        }
    }

    private mutating func push(_ item: Item, into pool: PoolKey) {
        var heap = heaps.removeValue(forKey: pool) ?? []
        heap.append(item)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
        heaps[pool] = heap
    }

    private mutating func popTop(of pool: PoolKey) {
        guard var heap = heaps.removeValue(forKey: pool), !heap.isEmpty else { return }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var first = parent
                if left < heap.count && heap[left].precedes(heap[first]) { first = left }
                if right < heap.count && heap[right].precedes(heap[first]) { first = right }
                if first == parent { break }
                heap.swapAt(parent, first)
                parent = first
            }
        }
        heaps[pool] = heap
    }
}

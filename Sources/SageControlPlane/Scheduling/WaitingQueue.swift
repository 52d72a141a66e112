import SageSupport

/// The admission queue: per pool (model and phase) a binary heap ordered by the policy's
/// key, so that adding, taking the first and removing cost O(log n) however long the queue
/// grows. Every key is fixed when the request is queued (aging and deadlines are measured
/// from a fixed origin), so the order never needs refreshing until the policy changes.
struct WaitingQueue: Sendable {
    /// How a policy orders waiting requests.
    enum Ordering: Sendable, Hashable {
        /// Arrival order (`fifo`, `cost_optimized`); the decode half of a split request keeps
        /// its original arrival.
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

    private struct Item: HeapOrdered {
        let key: Double
        let sequence: UInt64
        let id: UInt64

        func precedes(_ other: Item) -> Bool { key < other.key || (key == other.key && sequence < other.sequence) }
    }

    /// Live entries by request id; heap items whose entry is gone are skipped when they surface.
    private(set) var entries: [UInt64: Entry] = [:]
    private var heaps: [PoolKey: BinaryHeap<Item>] = [:]
    /// The heaps of orderings used before and set aside (`adaptive` flips between orderings):
    /// kept up to date on every insert, so that flipping back costs nothing instead of a
    /// rebuild of every pool.
    private var parked: [Ordering: [PoolKey: BinaryHeap<Item>]] = [:]
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
    func waiters(in pool: PoolKey) -> Int { liveByPool[pool] ?? 0 }
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
        if request.hasDeadline { withDeadlineCount += 1 }
        push(Item(key: key(request, ordering), sequence: entry.sequence, id: request.id), into: request.pool)
        for other in Array(parked.keys) {
            let item = Item(key: key(request, other), sequence: entry.sequence, id: request.id)
            parked[other]?[request.pool, default: BinaryHeap()].push(item)
            // A set-aside heap sheds its dead items only when rebuilt: do so once it is mostly dead.
            if let heap = parked[other]?[request.pool], heap.count > 64 && heap.count > 4 * (liveByPool[request.pool] ?? 0) {
                let rebuilt = built(request.pool, other)
                parked[other]?[request.pool] = rebuilt
            }
        }
    }

    @discardableResult
    mutating func remove(_ id: UInt64) -> Entry? {
        guard let entry = entries.removeValue(forKey: id) else { return nil }
        let request = entry.request
        liveByPool[request.pool, default: 1] -= 1
        if request.placement.priority <= .high { urgentCount -= 1 }
        if request.hasDeadline { withDeadlineCount -= 1 }
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
    mutating func first(in pool: PoolKey) -> Entry? { head(of: pool).flatMap { entries[$0.id] } }

    /// The first waiting request over `pools` (which may share instances) in the current order.
    mutating func first(among pools: some Sequence<PoolKey>) -> (pool: PoolKey, entry: Entry)? {
        var best: (pool: PoolKey, item: Item)?
        for pool in pools {
            guard let head = head(of: pool) else { continue }
            if best == nil || head.precedes(best!.item) { best = (pool, head) }
        }
        // Only the winner's entry is copied out.
        return best.flatMap { best in entries[best.item.id].map { (best.pool, $0) } }
    }

    /// The heap item of `pool`'s first live entry, dropping dead items above it.
    private mutating func head(of pool: PoolKey) -> Item? {
        while let top = heaps[pool]?.first {
            if entries[top.id]?.sequence == top.sequence { return top }
            heaps[pool]?.pop()
        }
        return nil
    }

    /// Reorders every pool for `ordering` (when `adaptive` changes its mind).
    mutating func order(by ordering: Ordering) {
        guard ordering != self.ordering else { return }
        parked[self.ordering] = heaps
        self.ordering = ordering
        if let ready = parked.removeValue(forKey: ordering) {
            heaps = ready
            for (pool, heap) in heaps where heap.count > 64 && heap.count > 4 * (liveByPool[pool] ?? 0) { rebuild(pool) }
        } else {
            heaps = [:]
            for (pool, live) in liveByPool where live > 0 { rebuild(pool) }
        }
    }

    // MARK: Heap

    private func key(_ request: QueuedRequest, _ ordering: Ordering) -> Double {
        switch ordering {
        case .arrival: (request.arrival - origin).seconds
        case .priority(let aging):
            Double(request.placement.priority.rawValue) + (request.arrival - origin).seconds / aging
        case .deadline:
            // The end-to-end deadline where there is one: ordered by first-token deadlines, the
            // requests nearly late go first and overload cascades (see Docs/CONTROL_PLANE.md).
            (request.deadline ?? request.firstTokenDeadline).map { ($0 - origin).seconds } ?? .infinity
        }
    }

    private mutating func rebuild(_ pool: PoolKey) {
        let heap = built(pool, ordering)
        heaps[pool] = heap.isEmpty ? nil : heap
        if heap.isEmpty { liveByPool[pool] = nil }
    }

    /// A heap of `pool`'s live entries in `ordering`.
    private func built(_ pool: PoolKey, _ ordering: Ordering) -> BinaryHeap<Item> {
        var heap = BinaryHeap<Item>()
        for entry in entries.values where entry.request.pool == pool {
            heap.push(Item(key: key(entry.request, ordering), sequence: entry.sequence, id: entry.request.id))
        }
        return heap
    }

    private mutating func push(_ item: Item, into pool: PoolKey) {
        heaps[pool, default: BinaryHeap()].push(item)
    }
}

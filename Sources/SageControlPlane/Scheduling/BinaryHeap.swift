/// An element of a ``BinaryHeap``: which of two goes first.
protocol HeapOrdered: Sendable {
    func precedes(_ other: Self) -> Bool
}

/// A binary min-heap: push and pop in O(log n), the first element in O(1). Internal to this
/// module, whose admission queue and simulation event list use it, so that the optimizer
/// specializes it for their element types (called across modules it ran generic).
struct BinaryHeap<Element: HeapOrdered>: Sendable {
    private(set) var elements: [Element] = []

    init() {}

    var first: Element? { elements.first }
    var count: Int { elements.count }
    var isEmpty: Bool { elements.isEmpty }

    // Both directions move a hole instead of swapping: each step copies one element, not two.

    mutating func push(_ element: Element) {
        var hole = elements.count
        elements.append(element)
        while hole > 0 {
            let parent = (hole - 1) / 2
            guard element.precedes(elements[parent]) else { break }
            elements[hole] = elements[parent]
            hole = parent
        }
        elements[hole] = element
    }

    @discardableResult
    mutating func pop() -> Element? {
        guard let top = elements.first else { return nil }
        let last = elements.removeLast()
        let count = elements.count
        guard count > 0 else { return top }
        var hole = 0
        while true {
            var child = 2 * hole + 1
            guard child < count else { break }
            if child + 1 < count && elements[child + 1].precedes(elements[child]) { child += 1 }
            guard elements[child].precedes(last) else { break }
            elements[hole] = elements[child]
            hole = child
        }
        elements[hole] = last
        return top
    }
}

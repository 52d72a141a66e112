/// An element of a ``BinaryHeap``: which of two goes first.
package protocol HeapOrdered: Sendable {
    func precedes(_ other: Self) -> Bool
}

/// A binary min-heap: push and pop in O(log n), the first element in O(1).
package struct BinaryHeap<Element: HeapOrdered>: Sendable {
    package private(set) var elements: [Element] = []

    package init() {}

    package var first: Element? { elements.first }
    package var count: Int { elements.count }
    package var isEmpty: Bool { elements.isEmpty }

    package mutating func push(_ element: Element) {
        elements.append(element)
        var child = elements.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard elements[child].precedes(elements[parent]) else { break }
            elements.swapAt(child, parent)
            child = parent
        }
    }

    @discardableResult
    package mutating func pop() -> Element? {
        guard !elements.isEmpty else { return nil }
        let top = elements[0]
        let last = elements.removeLast()
        guard !elements.isEmpty else { return top }
        elements[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var first = parent
            if left < elements.count && elements[left].precedes(elements[first]) { first = left }
            if right < elements.count && elements[right].precedes(elements[first]) { first = right }
            if first == parent { break }
            elements.swapAt(parent, first)
            parent = first
        }
        return top
    }
}

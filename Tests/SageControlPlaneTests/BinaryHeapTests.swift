import SageSupport
import Testing

@testable import SageControlPlane

/// The heap behind the admission queue and the simulation's event list gives its elements
/// back in order, whatever the order they came in and however pushes and pops interleave.
@Suite("Binary heap")
struct BinaryHeapTests {
    struct Number: HeapOrdered, Equatable {
        let value: UInt64
        func precedes(_ other: Number) -> Bool { value < other.value }
    }

    @Test(arguments: [1, 2, 3, 17, 1_000])
    func popsInOrderWithInterleavedPushes(count: Int) {
        var random = SeededGenerator(seed: UInt64(count))
        var heap = BinaryHeap<Number>()
        var reference: [UInt64] = []
        var popped: [UInt64] = []
        var expected: [UInt64] = []
        for _ in 0..<count {
            let value = random.next() % 100
            heap.push(Number(value: value))
            reference.append(value)
            if random.next() % 3 == 0 {
                reference.sort()
                expected.append(reference.removeFirst())
                popped.append(heap.pop()?.value ?? .max)
            }
            #expect(heap.count == reference.count)
            #expect(heap.first?.value == reference.min())
        }
        while let next = heap.pop() { popped.append(next.value) }
        #expect(popped == expected + reference.sorted())
        #expect(heap.isEmpty && heap.pop() == nil)
    }
}

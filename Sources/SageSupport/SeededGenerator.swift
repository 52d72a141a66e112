/// SplitMix64: a small, fast, seedable random number generator, so that simulator runs,
/// benchmark schedules and routing choices are reproducible for a given seed.
package struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    package init(seed: UInt64) { self.state = seed }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform Double in [0, 1).
    package mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// A uniform Double in `range`.
    package mutating func uniform(in range: ClosedRange<Double>) -> Double {
        range.lowerBound + nextUnit() * (range.upperBound - range.lowerBound)
    }

    /// A multiplier in [1 - spread, 1 + spread].
    package mutating func jitter(_ spread: Double) -> Double {
        spread <= 0 ? 1 : 1 + (nextUnit() * 2 - 1) * spread
    }

    /// Mixes several values into one seed.
    package static func mix(_ values: UInt64...) -> UInt64 {
        var generator = SeededGenerator(seed: 0x5EED)
        var result: UInt64 = 0
        for value in values {
            generator = SeededGenerator(seed: generator.next() ^ value)
            result = generator.next()
        }
        return result
    }
}

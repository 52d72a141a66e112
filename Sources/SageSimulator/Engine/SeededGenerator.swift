/// SplitMix64: a small, fast, seedable random number generator, so that a simulator run is
/// reproducible for a given seed.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { self.state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform Double in [0, 1).
    public mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// A multiplier in [1 - spread, 1 + spread].
    public mutating func jitter(_ spread: Double) -> Double {
        spread <= 0 ? 1 : 1 + (nextUnit() * 2 - 1) * spread
    }

    /// Mixes several values into one seed.
    public static func mix(_ values: UInt64...) -> UInt64 {
        var generator = SeededGenerator(seed: 0x5EED)
        var result: UInt64 = 0
        for value in values {
            generator = SeededGenerator(seed: generator.next() ^ value)
            result = generator.next()
        }
        return result
    }
}

import Foundation
import SageLLM
import SageSupport

/// When each request of an open-loop run is due, as offsets from the start: inter-arrival
/// gaps drawn from a gamma distribution with shape `burstiness` and scale
/// `1 / (rate × burstiness)` (burstiness 1 is Poisson), seeded, summed into an absolute
/// schedule so that a slow response never delays the next arrival.
public struct ArrivalSchedule: Sendable {
    public let offsets: [Duration]

    public init(count: Int, rate: Double, burstiness: Double, seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        var time = 0.0
        var offsets: [Duration] = []
        offsets.reserveCapacity(count)
        for _ in 0..<count {
            offsets.append(.nanoseconds(Int64(time * 1e9)))
            time += Self.gamma(shape: burstiness, scale: 1 / (rate * burstiness), random: &random)
        }
        self.offsets = offsets
    }

    /// Marsaglia and Tsang's method (with the boost for shape < 1).
    static func gamma(shape: Double, scale: Double, random: inout SeededGenerator) -> Double {
        if shape < 1 {
            let u = max(random.nextUnit(), .leastNonzeroMagnitude)
            return gamma(shape: shape + 1, scale: scale, random: &random) * pow(u, 1 / shape)
        }
        let d = shape - 1.0 / 3
        let c = 1 / (9 * d).squareRoot()
        while true {
            var x: Double
            var v: Double
            repeat {
                x = normal(&random)
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = random.nextUnit()
            if u < 1 - 0.0331 * x * x * x * x { return d * v * scale }
            if log(max(u, .leastNonzeroMagnitude)) < 0.5 * x * x + d * (1 - v + log(v)) { return d * v * scale }
        }
    }

    /// A standard normal number (Box-Muller).
    static func normal(_ random: inout SeededGenerator) -> Double {
        let u1 = max(random.nextUnit(), .leastNonzeroMagnitude)
        let u2 = random.nextUnit()
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
}

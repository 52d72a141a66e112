import Foundation
import SageLLM
import SageSupport

/// One request of a simulated workload.
package struct SimulatedRequest: Sendable {
    /// Seconds since the start.
    package let arrival: Double
    package let priority: RequestPriority
    /// End-to-end latency SLO in seconds, if any.
    package let slo: Double?
    /// Time-to-first-token and time-per-output-token targets in seconds, if any.
    package let ttftSLO: Double?
    package let tpotSLO: Double?
    package let promptTokens: Int
    package let outputTokens: Int
    package let longPrompt: Bool
    /// The shared prefix it starts with, if any.
    package let prefixGroup: Int?
    package let prefixBlocks: [UInt64]
    package let sessionKey: String
}

/// The requests of a scenario, the same for every policy compared (drawn from its seed).
package enum SimulationWorkload {
    package static func generate(_ scenario: ClusterScenario) -> [SimulatedRequest] {
        var random = SeededGenerator(seed: SeededGenerator.mix(scenario.seed, 0x776F_726B))
        let expected = Int(scenario.rate * scenario.duration)
        var requests: [SimulatedRequest] = []
        requests.reserveCapacity(expected + expected / 10)
        let priorityTotal = scenario.priorityMix.reduce(0, +)
        var time = 0.0
        var index = 0
        while true {
            time += gap(scenario, &random)
            guard time < scenario.duration else { break }
            var pick = random.nextUnit() * priorityTotal
            var level = 0
            while level < 4 && pick >= scenario.priorityMix[level] {
                pick -= scenario.priorityMix[level]
                level += 1
            }
            let priority = RequestPriority(rawValue: level) ?? .normal
            let slo = scenario.sloSeconds[level] > 0 ? scenario.sloSeconds[level] : nil
            let ttftSLO = scenario.ttftSLOSeconds[level] > 0 ? scenario.ttftSLOSeconds[level] : nil
            let tpotSLO = scenario.tpotSLOSeconds[level] > 0 ? scenario.tpotSLOSeconds[level] : nil
            let long = random.nextUnit() < scenario.longPromptShare
            let prompt = uniform(long ? scenario.longPromptTokens : scenario.shortPromptTokens, &random)
            let output = uniform(scenario.outputTokens, &random)
            let group: Int? = random.nextUnit() < scenario.sharedPrefixShare ? Int(random.next() % UInt64(max(1, scenario.prefixGroups))) : nil
            requests.append(
                SimulatedRequest(
                    arrival: time, priority: priority, slo: slo, ttftSLO: ttftSLO, tpotSLO: tpotSLO, promptTokens: max(prompt, group == nil ? 1 : scenario.prefixTokens + 1),
                    outputTokens: output, longPrompt: long, prefixGroup: group,
                    prefixBlocks: blocks(group: group, prefixTokens: scenario.prefixTokens, promptTokens: prompt, request: index),
                    sessionKey: "user-\(random.next() % 1_000)"))
            index += 1
        }
        return requests
    }

    /// The gap to the next arrival: exponential for Poisson arrivals, gamma for bursty ones.
    private static func gap(_ scenario: ClusterScenario, _ random: inout SeededGenerator) -> Double {
        let mean = 1 / scenario.rate
        if abs(scenario.burstiness - 1) < 1e-9 { return -log(max(random.nextUnit(), 1e-300)) * mean }
        let shape = 1 / (scenario.burstiness * scenario.burstiness)
        return gamma(shape: shape, &random) * mean / shape
    }

    /// Marsaglia and Tsang's gamma sampler (shape below 1 boosted by a uniform power).
    private static func gamma(shape: Double, _ random: inout SeededGenerator) -> Double {
        if shape < 1 { return gamma(shape: shape + 1, &random) * pow(max(random.nextUnit(), 1e-300), 1 / shape) }
        let d = shape - 1.0 / 3
        let c = 1 / (9 * d).squareRoot()
        while true {
            var x = 0.0
            var v = 0.0
            repeat {
                // Box-Muller: one standard normal.
                let u1 = max(random.nextUnit(), 1e-300)
                x = (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * random.nextUnit())
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = random.nextUnit()
            if u < 1 - 0.0331 * x * x * x * x || log(max(u, 1e-300)) < 0.5 * x * x + d * (1 - v + log(v)) { return d * v }
        }
    }

    private static func uniform(_ range: ClosedRange<Int>, _ random: inout SeededGenerator) -> Int {
        range.lowerBound + Int(random.next() % UInt64(range.upperBound - range.lowerBound + 1))
    }

    /// Prefix-block hashes as ``PrefixBlocks`` makes them (one per 16 tokens here, at most 32):
    /// the shared prefix's first, then the request's own.
    private static func blocks(group: Int?, prefixTokens: Int, promptTokens: Int, request: Int) -> [UInt64] {
        let count = min(PrefixBlocks.maximumBlocks, max(1, promptTokens / 16))
        let shared = group == nil ? 0 : min(count, prefixTokens / 16)
        return (0..<count).map { block in
            block < shared
                ? SeededGenerator.mix(0x5052_4546, UInt64(group ?? 0), UInt64(block))
                : SeededGenerator.mix(0x4F57_4E00, UInt64(request), UInt64(block))
        }
    }
}

import SageSupport

/// What the cluster simulation models: the fleet, the hardware model, and the workload.
/// Every field has a default that makes a mixed, slightly overloaded cluster; see
/// `Docs/CONTROL_PLANE.md` for the model's assumptions.
public struct ClusterScenario: Sendable, Hashable, Codable {
    // MARK: Fleet

    /// Instances in the fleet. Without PD all are GENERAL. With PD, ``generalShare`` of them
    /// stay GENERAL, ``prefillShare`` of the others are PREFILL and the rest DECODE (the same
    /// hardware either way).
    public var instances: Int
    public var prefillShare: Double
    public var generalShare: Double
    /// Requests the control plane sends one GENERAL or DECODE instance at once (its batch;
    /// vLLM's `max_num_seqs` is 256, KV memory usually binds first).
    public var maxConcurrentPerInstance: Int
    /// Requests the control plane sends one PREFILL instance at once. A prefill instance is
    /// bound by its token budget, not by its batch: a few prompts fill every step, and the
    /// rest are better off in the control plane's queue, where the policy orders them.
    public var maxConcurrentPerPrefillInstance: Int
    /// With PD: requests waiting for PREFILL instances per prefill slot beyond which a
    /// prefill-heavy request runs whole instead (``DisaggregationConfiguration/maxPrefillBacklogPerSlot``).
    public var maxPrefillBacklogPerSlot: Double?
    /// Instances per machine and machines per rack (topology for pairing and `topology_aware`).
    public var instancesPerMachine: Int
    public var machinesPerRack: Int
    /// Instances that fail at a third of the run and come back at two thirds.
    public var failures: Int

    // MARK: Workload

    /// Mean arrivals per second, over ``duration`` seconds.
    public var rate: Double
    public var duration: Double
    /// Coefficient of variation of the gaps between arrivals: 1 is Poisson, above 1 bursty
    /// (gamma distributed gaps).
    public var burstiness: Double
    /// Shares of CRITICAL, HIGH, NORMAL, LOW and BACKGROUND requests.
    public var priorityMix: [Double]
    /// End-to-end latency SLO per priority, in seconds (0: none); the deadline the scheduler sees.
    public var sloSeconds: [Double]
    /// Time-to-first-token and time-per-output-token targets per priority, in seconds (0: none):
    /// DistServe's goodput counts a request as good when it meets both (and its end-to-end SLO).
    public var ttftSLOSeconds: [Double]
    public var tpotSLOSeconds: [Double]
    /// Share of requests with a long prompt, and the prompt lengths (tokens, uniform in range).
    public var longPromptShare: Double
    public var shortPromptTokens: ClosedRange<Int>
    public var longPromptTokens: ClosedRange<Int>
    public var outputTokens: ClosedRange<Int>
    /// Share of requests that start with one of ``prefixGroups`` shared prefixes of ``prefixTokens``.
    public var sharedPrefixShare: Double
    public var prefixGroups: Int
    public var prefixTokens: Int
    public var seed: UInt64

    // MARK: Hardware model

    /// Instance classes, assigned in turn: prefill speed, step time, price.
    public var hardware: [HardwareClass]
    /// Tokens one engine step may carry (vLLM's `max_num_batched_tokens` with chunked
    /// prefill): every decoding sequence's next token first, then prompt chunks. On a GENERAL
    /// instance a long prompt's chunks stretch the steps of every decode running beside it; on
    /// a DECODE instance nothing does.
    public var maxBatchedTokens: Int
    /// KV cache bytes per prompt token, and transfer bandwidth by distance (bytes per second).
    public var kvBytesPerToken: Double
    public var bandwidthNVLink: Double
    public var bandwidthMachine: Double
    public var bandwidthRack: Double
    public var bandwidthRemote: Double
    /// Shared prefixes an instance keeps in its prefix cache (least recently used goes).
    public var prefixCacheGroups: Int

    /// One kind of instance. A step takes `secondsPerOutputToken` (its fixed part: one
    /// sequence decoding), plus `secondsPerDecodeSequence` per sequence decoding, plus its
    /// prompt tokens / `prefillTokensPerSecond`.
    public struct HardwareClass: Sendable, Hashable, Codable {
        public var name: String
        public var prefillTokensPerSecond: Double
        public var secondsPerOutputToken: Double
        public var secondsPerDecodeSequence: Double
        public var costPerGPUHour: Double

        public init(
            name: String, prefillTokensPerSecond: Double, secondsPerOutputToken: Double, secondsPerDecodeSequence: Double,
            costPerGPUHour: Double
        ) {
            self.name = name
            self.prefillTokensPerSecond = prefillTokensPerSecond
            self.secondsPerOutputToken = secondsPerOutputToken
            self.secondsPerDecodeSequence = secondsPerDecodeSequence
            self.costPerGPUHour = costPerGPUHour
        }

        func stepCost(maxBatchedTokens: Int) -> StepCost {
            StepCost(
                baseSeconds: secondsPerOutputToken, secondsPerDecodeSequence: secondsPerDecodeSequence,
                prefillTokensPerSecond: prefillTokensPerSecond, maxBatchedTokens: maxBatchedTokens)
        }
    }

    public init(instances: Int = 100, rate: Double = 150, duration: Double = 60, seed: UInt64 = 1) {
        self.instances = instances
        prefillShare = 0.3
        generalShare = 0
        maxConcurrentPerInstance = 32
        maxConcurrentPerPrefillInstance = 4
        maxPrefillBacklogPerSlot = DisaggregationConfiguration().maxPrefillBacklogPerSlot
        instancesPerMachine = 8
        machinesPerRack = 4
        failures = 0
        self.rate = rate
        self.duration = duration
        burstiness = 1
        priorityMix = [0.05, 0.15, 0.5, 0.2, 0.1]
        sloSeconds = [15, 20, 30, 60, 0]
        // DistServe's chatbot targets (TTFT 2.5 s, TPOT 0.15 s for OPT-66B) tightened by priority.
        ttftSLOSeconds = [1, 1.5, 2.5, 5, 0]
        tpotSLOSeconds = [0.05, 0.06, 0.08, 0.15, 0]
        longPromptShare = 0.3
        shortPromptTokens = 100...600
        longPromptTokens = 1_500...4_000
        outputTokens = 50...400
        sharedPrefixShare = 0.5
        prefixGroups = 20
        prefixTokens = 512
        self.seed = seed
        // Decode step times of an 8B model in fp16 on three generations of GPU (H100, A100,
        // L40S-class), from memory bandwidth: weights read once per step, KV read per sequence.
        hardware = [
            HardwareClass(name: "fast", prefillTokensPerSecond: 20_000, secondsPerOutputToken: 0.015, secondsPerDecodeSequence: 0.0003, costPerGPUHour: 4),
            HardwareClass(name: "medium", prefillTokensPerSecond: 10_000, secondsPerOutputToken: 0.025, secondsPerDecodeSequence: 0.0005, costPerGPUHour: 2),
            HardwareClass(name: "slow", prefillTokensPerSecond: 5_000, secondsPerOutputToken: 0.040, secondsPerDecodeSequence: 0.0008, costPerGPUHour: 1),
        ]
        maxBatchedTokens = 2_048
        kvBytesPerToken = 131_072
        bandwidthNVLink = 200e9
        bandwidthMachine = 50e9
        bandwidthRack = 12.5e9
        bandwidthRemote = 3e9
        prefixCacheGroups = 8
    }

    /// Checks the values, naming the one that is wrong.
    public func validate() throws(ControlPlaneError) {
        func fail(_ field: String, _ message: String) -> ControlPlaneError { ControlPlaneError(.invalidConfiguration, message, field: field) }
        if instances < 2 { throw fail("instances", "the simulated fleet needs at least 2 instances, got \(instances)") }
        if !(rate > 0) { throw fail("rate", "the arrival rate must be positive, got \(rate)") }
        if !(duration > 0) { throw fail("duration", "the duration must be positive, got \(duration)") }
        if rate * duration > 10_000_000 { throw fail("rate", "rate x duration is \(Int(rate * duration)) requests; at most 10,000,000") }
        if !(burstiness > 0) { throw fail("burstiness", "burstiness must be positive, got \(burstiness)") }
        if !(0.05...0.95).contains(prefillShare) { throw fail("prefill_share", "the prefill share must be within 0.05...0.95, got \(prefillShare)") }
        if !(0...0.9).contains(generalShare) { throw fail("general_share", "the GENERAL share must be within 0...0.9, got \(generalShare)") }
        if maxConcurrentPerInstance < 1 || maxConcurrentPerPrefillInstance < 1 { throw fail("max_concurrent", "must be at least 1") }
        if maxConcurrentPerInstance >= maxBatchedTokens {
            throw fail("max_batched_tokens", "the token budget per step (\(maxBatchedTokens)) must exceed the batch (\(maxConcurrentPerInstance)), or prompts never get a chunk")
        }
        if let backlog = maxPrefillBacklogPerSlot, !(backlog >= 0) || !backlog.isFinite {
            throw fail("max_prefill_backlog_per_slot", "must be a finite number, not negative, got \(backlog)")
        }
        for (field, share) in [("long_prompt_share", longPromptShare), ("shared_prefix_share", sharedPrefixShare)] where !(0...1).contains(share) {
            throw fail(field, "a share must be within 0...1, got \(share)")
        }
        if instancesPerMachine < 1 || machinesPerRack < 1 { throw fail("topology", "instances per machine and machines per rack must be at least 1") }
        if failures < 0 || failures >= instances { throw fail("failures", "failures must be within 0..<\(instances), got \(failures)") }
        if priorityMix.count != 5 || priorityMix.contains(where: { !($0 >= 0) }) || priorityMix.reduce(0, +) <= 0 {
            throw fail("priority_mix", "five non-negative shares (CRITICAL, HIGH, NORMAL, LOW, BACKGROUND) are needed")
        }
        for (field, values) in [("slo", sloSeconds), ("ttft_slo", ttftSLOSeconds), ("tpot_slo", tpotSLOSeconds)]
        where values.count != 5 || values.contains(where: { !($0 >= 0) || !$0.isFinite }) {
            throw fail(field, "five non-negative, finite targets in seconds are needed (CRITICAL to BACKGROUND; 0 for none)")
        }
        if hardware.isEmpty { throw fail("hardware", "at least one hardware class is needed") }
        for hardwareClass in hardware {
            if let problem = hardwareClass.stepCost(maxBatchedTokens: maxBatchedTokens).problem { throw fail("hardware.\(hardwareClass.name)", problem) }
        }
        if shortPromptTokens.lowerBound < 1 || outputTokens.lowerBound < 1 { throw fail("tokens", "prompt and output lengths must be at least 1") }
    }
}

extension ClusterScenario {
    /// One instance of the modelled fleet: what the control plane is told, and its hardware.
    package struct FleetMember: Sendable {
        package var spec: InstanceSpec
        package var hardwareIndex: Int
    }

    /// The fleet, in order: without PD every instance GENERAL; with PD the GENERAL share first,
    /// then PREFILL spread evenly among the rest (so that every machine has some where possible),
    /// the others DECODE. Hardware classes are assigned in turn.
    package func fleet(disaggregated: Bool) -> [FleetMember] {
        let generalCount = disaggregated ? Int((Double(instances) * generalShare).rounded()) : instances
        let split = instances - generalCount
        let prefillCount = split == 0 ? 0 : min(split - 1, max(1, Int((Double(split) * prefillShare).rounded())))
        return (0..<instances).map { index in
            let machine = index / instancesPerMachine
            let hardwareIndex = index % hardware.count
            let position = index - generalCount
            let isPrefill = position >= 0 && (position * prefillCount) / split != ((position + 1) * prefillCount) / split
            let type: InstanceType = index < generalCount ? .general : (isPrefill ? .prefill : .decode)
            let spec = InstanceSpec(
                id: "sim-\(index)", baseURL: "http://sim-\(index):8000/v1", model: "m", type: type,
                maxConcurrentRequests: type == .prefill ? maxConcurrentPerPrefillInstance : maxConcurrentPerInstance,
                costPerGPUHour: hardware[hardwareIndex].costPerGPUHour,
                topology: Topology(machineID: "machine-\(machine)", rackID: "rack-\(machine / machinesPerRack)"))
            return FleetMember(spec: spec, hardwareIndex: hardwareIndex)
        }
    }
}

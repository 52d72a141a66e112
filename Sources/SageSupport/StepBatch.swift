import DequeModule

/// What one engine step costs, as vLLM's scheduler builds steps: a step carries one token of
/// every sequence that is decoding, then prefill chunks (first come, first served) up to the
/// token budget (`max_num_batched_tokens`). Its time is a fixed part (reading the weights),
/// a part per decoding sequence (reading its KV cache), and the prefill tokens at the
/// instance's prefill speed. The cluster simulation and the simulated engine share it.
package struct StepCost: Sendable, Hashable {
    /// The fixed time of a step: what a step with one decoding sequence costs, near enough.
    package var baseSeconds: Double
    /// Added per sequence decoding in the step.
    package var secondsPerDecodeSequence: Double
    /// Prompt tokens computed per second of step time.
    package var prefillTokensPerSecond: Double
    /// Tokens one step may carry (decodes first, then prefill chunks).
    package var maxBatchedTokens: Int

    package init(baseSeconds: Double, secondsPerDecodeSequence: Double, prefillTokensPerSecond: Double, maxBatchedTokens: Int) {
        self.baseSeconds = baseSeconds
        self.secondsPerDecodeSequence = secondsPerDecodeSequence
        self.prefillTokensPerSecond = prefillTokensPerSecond
        self.maxBatchedTokens = maxBatchedTokens
    }

    /// Why the values cannot run, or nil: every time positive and finite, a budget of at least 2 tokens.
    package var problem: String? {
        if !(baseSeconds > 0) || !baseSeconds.isFinite { return "the step time must be positive and finite, got \(baseSeconds)" }
        if !(secondsPerDecodeSequence >= 0) || !secondsPerDecodeSequence.isFinite {
            return "the time per decoding sequence must be finite and not negative, got \(secondsPerDecodeSequence)"
        }
        if !(prefillTokensPerSecond > 0) || !prefillTokensPerSecond.isFinite {
            return "the prefill speed must be positive and finite, got \(prefillTokensPerSecond)"
        }
        if maxBatchedTokens < 2 { return "the token budget per step must be at least 2, got \(maxBatchedTokens)" }
        return nil
    }

    package func seconds(decodes: Int, prefillTokens: Int) -> Double {
        baseSeconds + secondsPerDecodeSequence * Double(decodes) + Double(prefillTokens) / prefillTokensPerSecond
    }
}

/// One engine's running batch, stepped on a clock given by the caller (seconds from any
/// origin): sequences join at the next step boundary, decodes go first, prefill chunks fill
/// the rest of the token budget in arrival order. A sequence's first token comes at the end
/// of the step that completes its prompt (or of its first decode step, when its KV cache was
/// computed elsewhere), and one more at the end of every step after.
///
/// Runs of identical steps are taken in one go, so the cost is per change of the batch, not
/// per step: the cluster simulation asks for ``nextChange`` and advances to it; the
/// simulated engine advances to the time it reads and waits for ``nextBoundary``.
package struct StepBatch: Sendable {
    package struct Event: Sendable, Equatable {
        package enum Kind: Sendable, Equatable {
            case firstToken
            case finished
        }
        package let id: Int
        package let kind: Kind
        package let time: Double
    }

    private struct Sequence: Sendable {
        let id: Int
        var prefillRemaining: Int
        let output: Int
        var outputRemaining: Int
    }

    package let cost: StepCost
    private var prefilling = Deque<Sequence>()
    private var decoding: [Sequence] = []
    private var joining: [Sequence] = []
    private var prefillQueued = 0
    /// Start of the step under way (the first of a run of identical ones); nil when idle.
    private var stepStart: Double?
    private var stepSeconds = 0.0
    private var prefillPerStep = 0
    /// The batch changed during the step under way: the next step is planned anew.
    private var replan = false

    package init(cost: StepCost) { self.cost = cost }

    /// Sequences in the batch or joining it.
    package var count: Int { prefilling.count + decoding.count + joining.count }
    package var isEmpty: Bool { count == 0 }

    /// Adds a sequence at `now`: it joins at the next step boundary, or starts a step now when
    /// the batch is idle. `prefillTokens` 0 means its KV cache arrived from elsewhere.
    package mutating func add(id: Int, prefillTokens: Int, outputTokens: Int, now: Double, events: inout [Event]) {
        advance(to: now, events: &events)
        let sequence = Sequence(id: id, prefillRemaining: max(0, prefillTokens), output: max(1, outputTokens), outputRemaining: max(1, outputTokens))
        if stepStart == nil {
            place(sequence)
            stepStart = now
            plan()
        } else {
            joining.append(sequence)
        }
    }

    /// Takes a sequence out (cancelled, its instance failed); false when it is not here.
    @discardableResult
    package mutating func remove(id: Int, now: Double, events: inout [Event]) -> Bool {
        advance(to: now, events: &events)
        if let index = decoding.firstIndex(where: { $0.id == id }) {
            decoding.remove(at: index)
        } else if let index = prefilling.firstIndex(where: { $0.id == id }) {
            prefillQueued -= prefilling[index].prefillRemaining
            prefilling.remove(at: index)
        } else if let index = joining.firstIndex(where: { $0.id == id }) {
            joining.remove(at: index)
        } else {
            return false
        }
        replan = true
        return true
    }

    /// Tokens generated so far by a sequence still in the batch, or nil.
    package func generated(id: Int) -> Int? {
        if let sequence = decoding.first(where: { $0.id == id }) { return sequence.output - sequence.outputRemaining }
        if prefilling.contains(where: { $0.id == id }) || joining.contains(where: { $0.id == id }) { return 0 }
        return nil
    }

    /// The end of the step under way, or nil when idle.
    package var nextBoundary: Double? { stepStart.map { $0 + stepSeconds } }

    /// When the steps next change (a prompt's last chunk, a finished sequence), if nothing
    /// joins before; nil when idle. First tokens within a run of identical steps are reported
    /// with their own step's end time when the run is taken.
    package var nextChange: Double? {
        guard let start = stepStart else { return nil }
        return start + Double(stepsUntilChange(limit: Int.max)) * stepSeconds
    }

    /// Completes every step that ends by `now`, reporting first tokens and finished sequences.
    package mutating func advance(to now: Double, events: inout [Event]) {
        while let start = stepStart {
            let elapsed = (now - start) / stepSeconds
            // Clamped before the conversion: a far `now` must not trap.
            guard elapsed.isFinite, elapsed + 1e-9 >= 1 else { return }
            let complete = Int(min(elapsed + 1e-9, 1e12))
            let steps = stepsUntilChange(limit: complete)
            let end = start + Double(steps) * stepSeconds
            take(steps, ending: end, events: &events)
            for sequence in joining { place(sequence) }
            joining.removeAll(keepingCapacity: true)
            replan = false
            if isEmpty {
                stepStart = nil
            } else {
                stepStart = end
                plan()
            }
        }
    }

    // MARK: Steps

    /// Identical steps from the one under way up to (and with) the next change, at most `limit`.
    private func stepsUntilChange(limit: Int) -> Int {
        if replan || !joining.isEmpty { return 1 }
        var steps = limit
        for sequence in decoding where sequence.outputRemaining < steps { steps = sequence.outputRemaining }
        if prefillPerStep > 0, let head = prefilling.first { steps = min(steps, max(1, head.prefillRemaining / prefillPerStep)) }
        return max(1, steps)
    }

    private mutating func take(_ steps: Int, ending end: Double, events: inout [Event]) {
        let firstEnd = end - Double(steps - 1) * stepSeconds
        var index = 0
        while index < decoding.count {
            if decoding[index].outputRemaining == decoding[index].output {
                events.append(Event(id: decoding[index].id, kind: .firstToken, time: firstEnd))
            }
            decoding[index].outputRemaining -= steps
            if decoding[index].outputRemaining <= 0 {
                events.append(Event(id: decoding[index].id, kind: .finished, time: end))
                decoding.swapAt(index, decoding.count - 1)
                decoding.removeLast()
            } else {
                index += 1
            }
        }
        var budget = prefillPerStep * steps
        while budget > 0, !prefilling.isEmpty {
            let taken = min(budget, prefilling[0].prefillRemaining)
            prefilling[0].prefillRemaining -= taken
            prefillQueued -= taken
            budget -= taken
            guard prefilling[0].prefillRemaining == 0 else { break }
            // The step that completes a prompt yields its first token.
            var sequence = prefilling.removeFirst()
            events.append(Event(id: sequence.id, kind: .firstToken, time: end))
            sequence.outputRemaining -= 1
            if sequence.outputRemaining == 0 {
                events.append(Event(id: sequence.id, kind: .finished, time: end))
            } else {
                decoding.append(sequence)
            }
        }
    }

    private mutating func place(_ sequence: Sequence) {
        if sequence.prefillRemaining > 0 {
            prefilling.append(sequence)
            prefillQueued += sequence.prefillRemaining
        } else {
            decoding.append(sequence)
        }
    }

    private mutating func plan() {
        prefillPerStep = max(0, min(cost.maxBatchedTokens - decoding.count, prefillQueued))
        stepSeconds = cost.seconds(decodes: decoding.count, prefillTokens: prefillPerStep)
    }
}

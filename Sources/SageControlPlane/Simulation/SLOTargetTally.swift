/// The field's view of SLOs over a simulation (DistServe's goodput): a finished request met its
/// time-to-first-token target, its time-per-output-token target (TPOT, `(latency - TTFT) /
/// (output tokens - 1)`), and its end-to-end SLO where it has one; it is good when it met every
/// target it has. A shed or failed request missed all of its targets.
struct SLOTargetTally: Sendable {
    private(set) var requests = 0
    private(set) var shed = 0
    private(set) var good = 0
    private var ttftMet = 0
    private var ttftTotal = 0
    private var tpotMet = 0
    private var tpotTotal = 0

    mutating func completed(_ request: SimulatedRequest, timeToFirstToken: Double, latency: Double) {
        requests += 1
        var allMet = true
        if let target = request.ttftSLO {
            ttftTotal += 1
            if timeToFirstToken <= target { ttftMet += 1 } else { allMet = false }
        }
        if let target = request.tpotSLO, request.outputTokens > 1 {
            tpotTotal += 1
            if (latency - timeToFirstToken) / Double(request.outputTokens - 1) <= target { tpotMet += 1 } else { allMet = false }
        }
        if let slo = request.slo, latency > slo { allMet = false }
        if allMet { good += 1 }
    }

    mutating func failed(_ request: SimulatedRequest) {
        requests += 1
        shed += 1
        if request.ttftSLO != nil { ttftTotal += 1 }
        if request.tpotSLO != nil, request.outputTokens > 1 { tpotTotal += 1 }
    }

    /// Requests that met their TTFT target, over all with one (shed ones missed it); nil when none had one.
    var ttftCompliance: Double? { ttftTotal == 0 ? nil : Double(ttftMet) / Double(ttftTotal) }
    var tpotCompliance: Double? { tpotTotal == 0 ? nil : Double(tpotMet) / Double(tpotTotal) }
    /// Shed, refused or failed after every failover, over all requests.
    var shedShare: Double { requests == 0 ? 0 : Double(shed) / Double(requests) }
}

/// The charts of a report, built from per-request results and sweep points: distributions
/// with their p50 and p99 marked, the same distributions as overlaid CDFs to compare runs,
/// figures over time, and a sweep's throughput-latency curve with its knee.
enum ReportCharts {
    /// A histogram of one run's `values` (milliseconds), p50 and p99 marked. A long tail
    /// (the maximum past twice the p99, with 100 values or more) is cut at 1.5 × p99 and the
    /// number cut is said under the chart.
    static func distribution(title: String, quantity: String, values raw: [Double], counted: String) -> SVGChart {
        let values = raw.filter(\.isFinite)
        guard let statistics = Statistics(values) else { return empty(title: title, x: "\(quantity) (ms)", y: counted) }
        var high = statistics.max
        var cut = 0
        if values.count >= 100, statistics.max > 2 * statistics.p99, statistics.p99 > 0 {
            high = statistics.p99 * 1.5
            cut = values.count { $0 > high }
        }
        let binWidth = ChartAxis.niceStep(max(high - statistics.min, 1e-6) / 24)
        let start = (statistics.min / binWidth).rounded(.down) * binWidth
        let binCount = min(max(((high - start) / binWidth).rounded(.up), 1), 60)
        var counts = [Double](repeating: 0, count: Int(binCount))  // 1...60
        for value in values {
            let bin = ((value - start) / binWidth).rounded(.down)
            guard bin >= 0 else { continue }
            counts[Int(min(bin, binCount - 1))] += 1  // 0...59 here
        }
        let bars = counts.enumerated().map { (x: start + Double($0.offset) * binWidth, y: $0.element) }
        var note = "\(values.count) \(counted), min \(ChartAxis.format(statistics.min, step: 0.01)) ms, max \(ChartAxis.format(statistics.max, step: 0.01)) ms"
        if cut > 0 { note += "; \(cut) above \(ChartAxis.format(high, step: 0.01)) ms not drawn" }
        return SVGChart(
            title: title,
            x: ChartAxis("\(quantity) (ms)", values: [start, start + binCount * binWidth], fromZero: false),
            y: ChartAxis(counted, values: counts, wholeNumbers: true),
            series: [.init(name: quantity, points: bars, style: .bars(width: binWidth))],
            marks: [
                .init(axis: .x, value: statistics.p50, label: "p50 \(ChartAxis.format(statistics.p50, step: 0.01))", color: "#1b5e20"),
                .init(axis: .x, value: statistics.p99, label: "p99 \(ChartAxis.format(statistics.p99, step: 0.01))", color: "#b71c1c"),
            ],
            note: note)
    }

    /// The cumulative distributions of several runs' `values` (milliseconds) on one chart,
    /// with the 50% and 99% lines marked; the x axis ends at the largest p99 plus a fifth.
    static func cumulative(title: String, quantity: String, runs: [(label: String, values: [Double])]) -> SVGChart {
        var series: [SVGChart.Series] = []
        var ends: [Double] = []
        var lows: [Double] = []
        for run in runs {
            let sorted = run.values.filter(\.isFinite).sorted()
            guard !sorted.isEmpty else { continue }
            let steps = min(sorted.count, 200)
            let points = (0...steps).map { step -> (x: Double, y: Double) in
                let fraction = Double(step) / Double(steps)
                return (Statistics.percentile(sorted, fraction * 100), fraction * 100)
            }
            series.append(.init(name: run.label, points: points))
            ends.append(Statistics.percentile(sorted, 99) * 1.2)
            lows.append(sorted[0])
        }
        guard !series.isEmpty else { return empty(title: title, x: "\(quantity) (ms)", y: "share of values (%)") }
        return SVGChart(
            title: title,
            x: ChartAxis("\(quantity) (ms)", values: lows + ends, fromZero: true),
            y: ChartAxis("share of values (%)", values: [0, 100]),
            series: series,
            marks: [.init(axis: .y, value: 50, label: "p50"), .init(axis: .y, value: 99, label: "p99")],
            note: "left of a line: the share of values at most that long; the x axis ends at 1.2 × the largest p99")
    }

    /// One figure of several runs over the seconds since each run began.
    static func overTime(
        title: String, quantity: String, wholeNumbers: Bool = false, runs: [(label: String, points: [(Double, Double)])]
    ) -> SVGChart {
        let series = runs.filter { !$0.points.isEmpty }.map { run in
            SVGChart.Series(name: run.label, points: thinned(run.points.map { (x: $0.0, y: $0.1) }))
        }
        guard !series.isEmpty else { return empty(title: title, x: "time since the start (s)", y: quantity) }
        let all = series.flatMap(\.points)
        let peak = all.map(\.y).filter(\.isFinite).max() ?? 0
        return SVGChart(
            title: title, x: ChartAxis("time since the start (s)", values: all.map(\.x)), y: ChartAxis(quantity, values: all.map(\.y), wholeNumbers: wholeNumbers),
            series: series, note: "peak \(ChartAxis.format(peak, step: 0.1))")
    }

    /// Latency against request throughput over a sweep's points: p50 solid, p99 dashed, each
    /// point labelled with its load; a colour per run when several are compared, the knee
    /// circled when there is one.
    static func sweep(
        title: String, quantity: String, axis: Sweep.Axis, runs: [(label: String, points: [Sweep.Point])],
        latency: (Sweep.Point) -> (p50: Double?, p99: Double?)
    ) -> SVGChart {
        var series: [SVGChart.Series] = []
        for (runIndex, run) in runs.enumerated() {
            let labels = run.points.map { (axis == .concurrency ? "c" : "r") + Sweep.text($0.load) }
            for (percentile, dashed) in [("p50", false), ("p99", true)] {
                var points: [(x: Double, y: Double)] = []
                var pointLabels: [String] = []
                for (index, point) in run.points.enumerated() {
                    let values = latency(point)
                    guard let throughput = point.requestThroughput, let value = percentile == "p50" ? values.p50 : values.p99 else { continue }
                    points.append((throughput, value))
                    pointLabels.append(dashed ? "" : labels[index])
                }
                let name = runs.count > 1 ? "\(run.label) \(percentile)" : "\(quantity) \(percentile)"
                // One colour per run when runs are compared (p99 dashed); p50 and p99 apart when alone.
                series.append(
                    .init(
                        name: name, points: points, style: .lineWithDots, dashed: dashed, pointLabels: pointLabels,
                        colorIndex: runs.count > 1 ? runIndex : nil))
            }
        }
        let all = series.flatMap(\.points)
        guard !all.isEmpty else { return empty(title: title, x: "request throughput (req/s)", y: "\(quantity) (ms)") }
        var chart = SVGChart(
            title: title, x: ChartAxis("request throughput (req/s)", values: all.map(\.x)), y: ChartAxis("\(quantity) (ms)", values: all.map(\.y)),
            series: series,
            note: "a point per load (c: concurrency, r: requests/s); right: more work, up: slower")
        if runs.count == 1, let knee = Sweep.knee(runs[0].points), let throughput = knee.requestThroughput, let value = latency(knee).p50 {
            chart.highlight = (throughput, value, "knee")
        }
        return chart
    }

    /// At most about 600 points: a long run's seconds averaged in groups, so the file stays small.
    static func thinned(_ points: [(x: Double, y: Double)]) -> [(x: Double, y: Double)] {
        let group = points.count / 600 + 1
        guard group > 1 else { return points }
        return stride(from: 0, to: points.count, by: group).map { start in
            let slice = points[start..<min(start + group, points.count)]
            return (slice.map(\.x).reduce(0, +) / Double(slice.count), slice.map(\.y).reduce(0, +) / Double(slice.count))
        }
    }

    static func empty(title: String, x: String, y: String) -> SVGChart {
        SVGChart(title: title, x: ChartAxis(x, values: []), y: ChartAxis(y, values: []), series: [], note: "no data")
    }
}

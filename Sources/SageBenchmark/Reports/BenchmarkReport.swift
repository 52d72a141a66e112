import Foundation
import SageLLM

/// A finished benchmark as it is written to and read from disk: the run's settings, each
/// workload's metrics (vLLM's keys), the contract verdicts and, when kept, every request.
public struct BenchmarkReport: Sendable {
    public var info: [String: JSONValue]
    /// One metrics object per workload, in run order.
    public var runs: [[String: JSONValue]]
    public var verdicts: [Contract.Verdict]
    /// Per-request results by workload name (empty when read from a summary alone).
    public var requests: [String: [BenchmarkResult]]

    public init(
        info: [String: JSONValue], runs: [[String: JSONValue]], verdicts: [Contract.Verdict],
        requests: [String: [BenchmarkResult]] = [:]
    ) {
        self.info = info
        self.runs = runs
        self.verdicts = verdicts
        self.requests = requests
    }

    /// The metric keys in report order.
    public static let keyOrder: [String] = RunMetrics(
        LoadRunner.Outcome(workload: .short, results: [], duration: .zero, before: nil, after: nil, backendPeakMemoryMegabytes: nil),
        backend: "", model: nil
    ).entries.map(\.key)

    /// A run's keys in report order, then any unknown ones alphabetically.
    static func orderedKeys(_ run: [String: JSONValue]) -> [String] {
        keyOrder.filter { run[$0] != nil } + run.keys.filter { !keyOrder.contains($0) }.sorted()
    }

    // MARK: Writing

    /// Writes `benchmark_summary.json`, `<workload>_metrics.json`, `requests.jsonl`,
    /// `REPORT.md` and `REPORT.html` into `directory` (made if missing). Returns the paths written.
    @discardableResult
    public func write(to directory: String) throws(BenchmarkError) -> [String] {
        var written: [String] = []
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw BenchmarkError(.file, "cannot create the output directory: \(error.localizedDescription)", file: directory)
        }
        func save(_ name: String, _ text: String) throws(BenchmarkError) {
            let path = (directory as NSString).appendingPathComponent(name)
            do {
                try text.write(toFile: path, atomically: true, encoding: .utf8)
            } catch {
                throw BenchmarkError(.file, "cannot write: \(error.localizedDescription)", file: path)
            }
            written.append(path)
        }
        try save("benchmark_summary.json", ReportFormat.json.render(self))
        for run in runs {
            guard case .string(let name)? = run["workload"] else { continue }
            try save("\(name)_metrics.json", Self.json(.object(run)))
        }
        var lines = ""
        for run in runs {
            guard case .string(let name)? = run["workload"] else { continue }
            for result in requests[name] ?? [] {
                var object = (try? Self.jsonObject(result)) ?? [:]  // a result always encodes; an empty object marks one that did not
                object["workload"] = .string(name)
                lines += Self.json(.object(object), pretty: false) + "\n"
            }
        }
        try save("requests.jsonl", lines)
        try save("REPORT.md", ReportFormat.markdown.render(self))
        try save("REPORT.html", ReportFormat.html.render(self))
        return written
    }

    static func json(_ value: JSONValue, pretty: Bool = true) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return "null" }  // JSONValue always encodes
        return String(decoding: data, as: UTF8.self)
    }

    static func jsonObject(_ value: some Encodable) throws -> [String: JSONValue] {
        let data = try JSONEncoder().encode(value)
        guard case .object(let object) = try JSONDecoder().decode(JSONValue.self, from: data) else { return [:] }
        return object
    }

    // MARK: Reading

    /// Reads a run directory (or its `benchmark_summary.json`, or one `*_metrics.json`).
    public static func read(_ path: String) throws(BenchmarkError) -> BenchmarkReport {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw BenchmarkError(.file, "no such file or directory; give a run directory or its benchmark_summary.json", file: path)
        }
        let directory = isDirectory.boolValue ? path : (path as NSString).deletingLastPathComponent
        let file = isDirectory.boolValue ? (path as NSString).appendingPathComponent("benchmark_summary.json") : path
        let root = try load(file)
        var report: BenchmarkReport
        if case .array(let runs)? = root["runs"] {
            let objects = runs.compactMap { value -> [String: JSONValue]? in
                if case .object(let object) = value { return object } else { return nil }
            }
            var verdicts: [Contract.Verdict] = []
            if let contracts = root["contracts"] {
                verdicts = (try? JSONDecoder().decode([Contract.Verdict].self, from: JSONEncoder().encode(contracts))) ?? []  // optional section
            }
            var info = root
            info["runs"] = nil
            info["contracts"] = nil
            report = BenchmarkReport(info: info, runs: objects, verdicts: verdicts)
        } else if root["completed"] != nil {
            report = BenchmarkReport(info: [:], runs: [root], verdicts: [])
        } else {
            throw BenchmarkError(.file, "this is neither a benchmark summary nor a metrics file", file: file)
        }
        let requestsPath = (directory as NSString).appendingPathComponent("requests.jsonl")
        if let text = try? String(contentsOfFile: requestsPath, encoding: .utf8) {  // optional: only charts need it
            for line in text.split(separator: "\n") {
                guard let data = line.data(using: .utf8),
                    let result = try? JSONDecoder().decode(BenchmarkResult.self, from: data),  // a foreign line is skipped
                    case .object(let object)? = try? JSONDecoder().decode(JSONValue.self, from: data),  // as above
                    case .string(let workload)? = object["workload"]
                else { continue }
                report.requests[workload, default: []].append(result)
            }
        }
        return report
    }

    static func load(_ file: String) throws(BenchmarkError) -> [String: JSONValue] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: file))
        } catch {
            throw BenchmarkError(.file, "cannot read: \(error.localizedDescription)", file: file)
        }
        do {
            guard case .object(let object) = try JSONDecoder().decode(JSONValue.self, from: data) else {
                throw BenchmarkError(.file, "the file is JSON but not an object", file: file)
            }
            return object
        } catch let error as BenchmarkError {
            throw error
        } catch {
            throw BenchmarkError(.file, "not valid JSON: \(error)", file: file)
        }
    }
}

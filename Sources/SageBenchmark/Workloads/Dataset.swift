import Foundation

/// Prompts from a file: JSONL with a `prompt` (or `text`) per line, or ShareGPT-format JSON
/// (a list of `{"conversations": [{"from": "human", "value": ...}, ...]}`, first human turn).
public enum Dataset {
    public static func load(_ path: String) throws(BenchmarkError) -> [String] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw BenchmarkError(.file, "cannot read the dataset: \(error.localizedDescription)", file: path)
        }
        var prompts: [String] = []
        if let list = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] {  // not one JSON array: try JSONL below
            for item in list {
                let turns = item["conversations"] as? [[String: Any]] ?? []
                if let first = turns.first(where: { ($0["from"] as? String) == "human" || ($0["role"] as? String) == "user" }),
                    let text = (first["value"] ?? first["content"]) as? String, !text.isEmpty
                {
                    prompts.append(text)
                }
            }
        } else {
            for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated()
            where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],  // reported below
                    let text = (object["prompt"] ?? object["text"]) as? String, !text.isEmpty
                else {
                    throw BenchmarkError(
                        .file, "line \(number + 1) is not a JSON object with a \"prompt\" string", file: path)
                }
                prompts.append(text)
            }
        }
        guard !prompts.isEmpty else {
            throw BenchmarkError(.file, "the dataset has no prompts (JSONL with \"prompt\", or ShareGPT JSON)", file: path)
        }
        return prompts
    }
}

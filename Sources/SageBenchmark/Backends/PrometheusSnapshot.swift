/// Reads the KV- and prefix-cache figures out of a vLLM-style `/metrics` page.
enum PrometheusSnapshot {
    /// Sums the samples of each metric (all label sets), by metric name without `_total`.
    static func values(_ text: String) -> [String: Double] {
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            var name = line[..<space]
            if let brace = name.firstIndex(of: "{") { name = name[..<brace] }
            var key = String(name)
            if key.hasSuffix("_total") { key.removeLast("_total".count) }
            values[key, default: 0] += value
        }
        return values
    }

    static func snapshot(_ text: String) -> ServerSnapshot {
        let values = values(text)
        return ServerSnapshot(
            kvCacheUsage: values["vllm:kv_cache_usage_perc"] ?? values["vllm:gpu_cache_usage_perc"],
            prefixCacheQueries: values["vllm:prefix_cache_queries"] ?? values["vllm:gpu_prefix_cache_queries"],
            prefixCacheHits: values["vllm:prefix_cache_hits"] ?? values["vllm:gpu_prefix_cache_hits"])
    }
}

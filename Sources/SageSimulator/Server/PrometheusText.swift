/// `/metrics` in Prometheus text format, with vLLM's metric names so that tools that read a
/// vLLM server (routers, benchmarks) read the simulator the same way.
enum PrometheusText {
    static func render(model: String, statistics: EngineStatistics, requestsByStatus: [Int: Int]) -> String {
        let label = "{model_name=\"\(model)\"}"
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(String, String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (suffix, value) in samples { out += "\(name)\(suffix) \(value)\n" }
        }
        metric("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.",
               [(label, "\(statistics.running)")])
        metric("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.",
               [(label, "\(statistics.waiting)")])
        metric("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.",
               [(label, "\(statistics.kvCacheUsage)")])
        metric("vllm:prefix_cache_queries", "counter", "Prefix cache queries, in terms of number of queried tokens.",
               [("_total" + label, "\(statistics.prefixCacheQueries)")])
        metric("vllm:prefix_cache_hits", "counter", "Prefix cache hits, in terms of number of cached tokens.",
               [("_total" + label, "\(statistics.prefixCacheHits)")])
        metric("vllm:prompt_tokens", "counter", "Number of prefill tokens processed.",
               [("_total" + label, "\(statistics.promptTokens)")])
        metric("vllm:generation_tokens", "counter", "Number of generation tokens processed.",
               [("_total" + label, "\(statistics.generationTokens)")])
        metric("vllm:request_success", "counter", "Count of successfully processed requests.",
               [("_total" + label, "\(statistics.completed)")])
        let statuses = requestsByStatus.keys.sorted().map { ("_total{status=\"\($0)\"}", "\(requestsByStatus[$0] ?? 0)") }
        metric("sagellm_simulator_requests", "counter", "Generation requests received, by HTTP status.", statuses)
        metric("sagellm_simulator_peak_running", "gauge", "Most sequences ever running at once.",
               [("", "\(statistics.peakRunning)")])
        metric("sagellm_simulator_aborted", "counter", "Generations stopped because the client went away.",
               [("_total", "\(statistics.aborted)")])
        return out
    }
}

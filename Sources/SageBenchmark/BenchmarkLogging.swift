import Logging

enum BenchmarkLogging {
    /// Library calls made by the benchmark log errors only; the benchmark reports failures itself.
    static var quiet: Logger {
        var logger = Logger(label: "sagellm.benchmark")
        logger.logLevel = .error
        return logger
    }
}

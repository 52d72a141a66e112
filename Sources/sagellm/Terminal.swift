import struct Foundation.Data
import class Foundation.FileHandle
import class Foundation.JSONEncoder
import ArgumentParser
import Logging
import SageLLM

/// Output helpers for the command line.
enum Terminal {
    /// Writes text to standard output at once (no line buffering), for streamed tokens.
    static func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    /// Writes a line to standard error.
    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// Pretty JSON of `value`, keys sorted.
    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// A logger for library calls made by commands: errors only (commands print what matters themselves).
    static var quietLogger: Logger {
        var logger = Logger(label: "sagellm")
        logger.logLevel = .error
        return logger
    }

    static func milliseconds(_ duration: Duration) -> String {
        let ms = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        return ms < 10 ? String(format1: ms, digits: 2) + " ms" : String(format1: ms, digits: 1) + " ms"
    }
}

extension String {
    /// A number with a fixed count of decimals, without Foundation's String(format:).
    init(format1 value: Double, digits: Int) {
        let scale = (0..<digits).reduce(1.0) { value, _ in value * 10 }
        let rounded = (value * scale).rounded() / scale
        var text = String(rounded)
        if let dot = text.firstIndex(of: ".") {
            let decimals = text.distance(from: dot, to: text.endIndex) - 1
            if decimals < digits { text += String(repeating: "0", count: digits - decimals) }
            if digits == 0 { text = String(text[..<dot]) }
        }
        self = text
    }
}

/// Runs a command body; a SageLLM error becomes one clear line and exit status 1.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as SageLLMError {
        if Task.isCancelled { throw CancellationError() }  // interrupted (Ctrl-C): quietly
        Terminal.error("error: \(error)")
        throw ExitCode.failure
    }
}

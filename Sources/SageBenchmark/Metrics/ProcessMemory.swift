import Foundation

/// Peak resident memory of a process, from Linux's `/proc/PID/status` (`VmHWM`).
public enum ProcessMemory {
    /// This process's peak resident memory in MB, or nil where `/proc` is not available.
    public static func peakMegabytes(pid: Int32? = nil) -> Double? {
        let path = "/proc/\(pid.map(String.init) ?? "self")/status"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }  // no /proc: not measured
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kilobytes = line.dropFirst("VmHWM:".count).split(whereSeparator: \.isWhitespace).first.flatMap { Double($0) }
            return kilobytes.map { $0 / 1024 }
        }
        return nil
    }
}

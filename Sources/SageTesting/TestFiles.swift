import Foundation

/// Files that tests write: each test gets fresh paths under one directory of this test
/// process, which is removed when the process exits, so repeated runs leave nothing behind.
public enum TestFiles {
    /// This process's directory (named by its pid, so parallel runs do not share it).
    public static let root: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("sagellm-tests-\(getpid())", isDirectory: true)
        try? FileManager.default.removeItem(at: url)  // a leftover of an earlier process with this pid
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: TestFiles.root) }
        return url
    }()

    /// A fresh, empty directory named `prefix-UUID`.
    public static func directory(_ prefix: String) throws -> URL {
        let url = root.appendingPathComponent("\(prefix)-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A fresh path `prefix-UUID` + `suffix` (nothing is created there).
    public static func path(_ prefix: String, suffix: String = "") -> String {
        root.appendingPathComponent("\(prefix)-\(UUID().uuidString)\(suffix)").path
    }

    /// Writes `text` to a fresh file named `name` in a fresh directory, and returns its path.
    public static func file(_ text: String, name: String) throws -> String {
        let path = try directory("file").appendingPathComponent(name).path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }
}

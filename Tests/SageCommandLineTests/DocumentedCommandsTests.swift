import ArgumentParser
import Foundation
import Testing

@testable import sagellm

/// Every `sagellm ...` command that README.md, the Docs and the demo print can be run as
/// printed: each one parses (options in the right places, values of the right kinds).
@Suite("Documented commands")
struct DocumentedCommandsTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test func everyCommandInTheREADMEAndTheDocsParses() throws {
        var files = [Self.packageRoot.appendingPathComponent("README.md")]
        let docs = Self.packageRoot.appendingPathComponent("Docs")
        files += try FileManager.default.contentsOfDirectory(atPath: docs.path).filter { $0.hasSuffix(".md") }.sorted()
            .map { docs.appendingPathComponent($0) }
        var checked = 0
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            for command in DocumentedCommands.extract(from: text) {
                checked += 1
                #expect(DocumentedCommands.parseProblem(command) == nil, "\(file.lastPathComponent): sagellm \(command.joined(separator: " "))")
            }
        }
        #expect(checked >= 20, "the README and the Docs show the commands")
    }

    @Test func theCommandsTheDemoSuggestsParse() throws {
        // The demo's closing line, as it prints it.
        let suggested = DocumentedCommands.extract(from: DemoCommand.nextSteps, everyInlineCommand: true)
        #expect(suggested.count >= 4)
        for command in suggested {
            #expect(DocumentedCommands.parseProblem(command) == nil, "sagellm \(command.joined(separator: " "))")
        }
        #expect(suggested.contains(["cluster", "--config", "FILE", "status"]))
    }

    @Test func theClusterFileIsAcceptedBeforeAndAfterTheSubcommand() throws {
        #expect(DocumentedCommands.parseProblem(["cluster", "--config", "c.yaml", "status"]) == nil)
        #expect(DocumentedCommands.parseProblem(["cluster", "status", "--config", "c.yaml"]) == nil)
        #expect(DocumentedCommands.parseProblem(["cluster", "--config", "c.yaml", "chat", "Hi"]) == nil)
        let missing = DocumentedCommands.parseProblem(["cluster", "status"])
        #expect(missing?.contains("--config") == true, "\(missing ?? "parsed")")
        #expect(DocumentedCommands.parseProblem(["cluster", "chat", "--config", "c.yaml", "--repeat", "N", "Hi"]) != nil, "the check can fail")
    }
}

/// Finds `sagellm` commands in text and tries to parse them.
enum DocumentedCommands {
    /// The arguments after `sagellm` of each command in `text`: lines of code blocks, and
    /// inline code with an option or a quoted argument (a bare `sagellm chat` names the
    /// command). Synopses (with `[`, `|`, `<` or `...`) are not runnable as printed and are
    /// left out.
    static func extract(from text: String, everyInlineCommand: Bool = false) -> [[String]] {
        var commands: [[String]] = []
        var candidates: [Substring] = []
        var inBlock = false
        var inDiagram = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("```") {
                inBlock.toggle()
                inDiagram = inBlock && trimmed == "```text"  // a drawing, not commands
                continue
            }
            if inBlock {
                if !inDiagram { candidates.append(line) }
            } else {
                let pieces = line.split(separator: "`", omittingEmptySubsequences: false)
                candidates += pieces.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
                    .filter { everyInlineCommand || $0.contains("--") || $0.contains("\"") }
            }
        }
        for candidate in candidates {
            var line = candidate
            if let comment = line.range(of: " #") { line = line[..<comment.lowerBound] }
            // `sagellm` as the command: first, after `swift run [-c release]`, or as a path.
            guard let start = line.range(of: #"(^ *|swift run (-c release )?|/)sagellm "#, options: .regularExpression) else { continue }
            let rest = line[start.upperBound...]
            if rest.contains("[") || rest.contains("|") || rest.contains("<") || rest.contains("...") { continue }
            if let words = shellWords(rest), !words.isEmpty { commands.append(words) }
        }
        return commands
    }

    /// Splits like a POSIX shell does for plain words and quoted strings; nil for what it cannot read.
    static func shellWords(_ text: Substring) -> [String]? {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        for character in text {
            if let open = quote {
                if character == open { quote = nil } else { current.append(character) }
            } else if character == "\"" || character == "'" {
                quote = character
                inWord = true
            } else if character == " " || character == "\t" {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else {
                current.append(character)
                inWord = true
            }
        }
        if quote != nil { return nil }
        if inWord { words.append(current) }
        return words
    }

    /// Nil when `arguments` parse as a `sagellm` command, else ArgumentParser's message.
    static func parseProblem(_ arguments: [String]) -> String? {
        do {
            _ = try SageLLMCommand.parseAsRoot(arguments)
            return nil
        } catch {
            // `--help` and friends end parsing cleanly.
            if SageLLMCommand.exitCode(for: error) == .success { return nil }
            return SageLLMCommand.message(for: error)
        }
    }
}

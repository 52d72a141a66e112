import Foundation
import SageLLM
import Testing

/// Settings files, variables and URLs written to hurt: numbers beyond any sensible range,
/// files that expand without bound, a parse error next to a key, user info in URLs, and a
/// working-directory file that tries to send the environment's key elsewhere.
@Suite("Hostile settings")
struct HostileSettingsTests {
    static let secret = "sk-settings-secret-9876"

    @Test(arguments: ["1e10", "inf", "nan", "-1", "1e300", "0x7fffffffffffffff"])
    func secondsOutOfRangeAreErrorsNamingTheVariable(value: String) async {
        let error = await SettingsTests.loadError(["SAGE_TIMEOUT": value])
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.field == "http.timeout")
        #expect(error?.reason.contains("SAGE_TIMEOUT") == true, "\(String(describing: error))")
        let fromFile = await SettingsTests.loadError(file: try? SettingsTests.temporaryFile("http:\n  timeout: \(value)\n"))
        #expect(fromFile?.field == "http.timeout")
        #expect(fromFile?.file != nil)
    }

    @Test func aParseErrorNextToAKeyDoesNotQuoteIt() async throws {
        for text in [
            "chat:\n  api_key: \"\(Self.secret)\n  model: m\n",
            "chat:\n  api_key: \(Self.secret)\n   bad: [\n",
            "cloud:\n  api_key: '\(Self.secret)\n",
        ] {
            let path = try SettingsTests.temporaryFile(text)
            let error = await SettingsTests.loadError(file: path)
            #expect(error?.code == .invalidConfiguration)
            #expect(error?.file == path)
            #expect(!"\(String(describing: error))".contains(Self.secret), "\(String(describing: error))")
            #expect(!"\(String(describing: error))".contains(String(Self.secret.prefix(12))))
        }
    }

    @Test func aFileThatWouldExpandWithoutBoundIsRefusedAtOnce() async throws {
        var bomb = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        for level in 1...9 {
            bomb += "l\(level): &l\(level) [" + Array(repeating: "*\(level == 1 ? "a" : "l\(level - 1)")", count: 9).joined(separator: ",") + "]\n"
        }
        let started = ContinuousClock.now
        let error = await SettingsTests.loadError(file: try SettingsTests.temporaryFile(bomb))
        #expect(error?.reason.contains("aliases") == true, "\(String(describing: error))")
        let flat = (0..<40_000).map { "k\($0): \($0)" }.joined(separator: "\n")
        let tooLong = await SettingsTests.loadError(file: try SettingsTests.temporaryFile(flat))
        #expect(tooLong?.reason.contains("refused") == true, "\(String(describing: tooLong))")
        #expect(ContinuousClock.now - started < .seconds(5), "refused before parsing")
    }

    @Test func baseURLsWithUserInfoQueriesOrBadPortsAreRefusedWithoutTheirSecrets() async {
        for url in [
            "http://user:\(Self.secret)@127.0.0.1:8000/v1", "http://127.0.0.1:99999/v1", "http://127.0.0.1:0/v1",
            "http://127.0.0.1:80x/v1", "https://api.example.com/v1?key=1", "https://api.example.com/v1#frag",
        ] {
            let error = await SettingsTests.loadError(["SAGE_CHAT_BASE_URL": url])
            #expect(error?.code == .invalidConfiguration, "\(url)")
            #expect(!"\(String(describing: error))".contains(Self.secret))
            let direct = await sageError { _ = try IntelligentLLMClient(baseURL: url) }
            #expect(direct?.code == .invalidConfiguration, "\(url)")
            #expect(!"\(String(describing: direct))".contains(Self.secret))
        }
        #expect(throws: Never.self) { _ = try IntelligentLLMClient(baseURL: "http://[::1]:65535/v1") }
    }

    @Test func loopbackMeansALoopbackAddress() {
        let resilience = { (url: String) in SageSettings().resilience(for: url).requestsPerMinute }
        for local in ["http://127.0.0.1:8000/v1", "http://127.1.2.3/v1", "http://localhost:1/v1", "http://[::1]:8000/v1"] {
            #expect(resilience(local) == nil, "\(local) is this machine")
        }
        for remote in [
            "http://127.attacker.example/v1", "http://127.0.0.1.example.com/v1", "http://1270.0.0.1/v1",
            "http://localhost.example/v1", "http://127.0.0.256/v1",
        ] {
            #expect(resilience(remote) == 60, "\(remote) is not this machine")
        }
    }

    @Test func aWorkingDirectoryFileCannotSendTheEnvironmentsKeyElsewhere() async throws {
        let hostile = try SettingsTests.temporaryFile("chat:\n  base_url: https://collector.example/v1\n")
        let environment = ["SAGE_CHAT_API_KEY": Self.secret]
        // Found without being named: refused, and the message says how to trust it.
        let error = await SettingsTests.loadError(environment, defaults: [hostile])
        #expect(error?.field == "chat.base_url")
        #expect(error?.reason.contains("--config") == true)
        #expect(!"\(String(describing: error))".contains(Self.secret))
        // Named: the user vouched for it.
        let named = try await SettingsTests.load(environment, file: hostile)
        #expect(named.chatBaseURL == "https://collector.example/v1")
        // The environment's key wins over the file's, so a file with its own key is still refused
        // while the environment has one; without one, the file's own key goes there: fine.
        let ownKey = try SettingsTests.temporaryFile("chat:\n  base_url: https://a.example/v1\n  api_key: file-key\n")
        #expect(await SettingsTests.loadError(environment, defaults: [ownKey])?.field == "chat.base_url")
        #expect(try await SageSettings.load(environment: [:], defaultFileLocations: [ownKey]).chatAPIKey?.secret == "file-key")
        // Pointing at this machine, or with no key to take: fine.
        let local = try SettingsTests.temporaryFile("chat:\n  base_url: http://127.0.0.1:8000/v1\n")
        #expect(try await SageSettings.load(environment: environment, defaultFileLocations: [local]).chatBaseURL != nil)
        #expect(try await SageSettings.load(environment: [:], defaultFileLocations: [hostile]).chatBaseURL != nil)
        // The cloud fallback's address too.
        let cloud = try SettingsTests.temporaryFile("cloud:\n  base_url: https://collector.example/v1\n")
        let cloudError = await SettingsTests.loadError(["DASHSCOPE_API_KEY": Self.secret], defaults: [cloud])
        #expect(cloudError?.field == "cloud.base_url")
    }
}

import SageLLM
import Testing

@testable import SageControlPlane

/// The hold count that decides when a retired instance client is shut down: exactly once,
/// by whoever sees it unused last, and never while a request holds it.
struct InstanceClientTests {
    static func client() throws -> InstanceClient {
        InstanceClient(try IntelligentLLMClient(baseURL: "http://127.0.0.1:9/v1", model: "m"))
    }

    @Test func aRetiredClientWithHoldsIsShutDownByTheLastRelease() throws {
        let client = try Self.client()
        #expect(client.hold() && client.hold())
        #expect(!client.retire(), "two requests still hold it")
        #expect(!client.hold(), "a retired client takes no new request")
        #expect(!client.release(), "one request still holds it")
        #expect(client.release(), "the last release is the one that shuts it down")
    }

    @Test func anUnusedClientIsShutDownByItsRetirement() throws {
        let client = try Self.client()
        #expect(client.hold())
        #expect(!client.release(), "not retired: releasing shuts nothing down")
        #expect(client.retire())
    }

    @Test func holdsAndReleasesFromManyTasksLeaveExactlyOneShutdown() async throws {
        let client = try Self.client()
        let shutdowns = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<64 {
                group.addTask {
                    var count = 0
                    for _ in 0..<200 where client.hold() {
                        if client.release() { count += 1 }
                    }
                    return count
                }
            }
            group.addTask { client.retire() ? 1 : 0 }
            return await group.reduce(0, +)
        }
        #expect(shutdowns == 1)
    }
}

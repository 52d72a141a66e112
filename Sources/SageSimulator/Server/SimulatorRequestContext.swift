import Hummingbird
import NIOCore

/// The request context of the simulator's routes: Hummingbird's basics plus the connection,
/// so a handler can notice a client that went away and can drop a connection on purpose.
struct SimulatorRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    /// Request bodies up to 32 MiB (long prompts).
    var maxUploadSize: Int { 32 * 1024 * 1024 }
}

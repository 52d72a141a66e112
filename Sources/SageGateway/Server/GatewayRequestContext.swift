import Hummingbird
import NIOCore

/// The request context of the gateway's routes: Hummingbird's basics plus the connection, so
/// that a handler notices a client that went away and ends the engine's work for it.
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }
}

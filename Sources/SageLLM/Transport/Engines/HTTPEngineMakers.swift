import Synchronization

/// Engines that live in other targets of the package install themselves here: the libcurl
/// engine (target `SageCurl`, package trait `Curl`) depends on this module, so this module
/// cannot name it. ``HTTPTransport`` asks here for an engine it does not make itself.
package enum HTTPEngineMakers {
    package typealias Maker = @Sendable (_ baseURL: String, _ configuration: TransportConfiguration) throws(SageLLMError) -> any HTTPEngine

    private static let makers = Mutex<[TransportConfiguration.Engine: Maker]>([:])

    package static func install(_ engine: TransportConfiguration.Engine, _ maker: @escaping Maker) {
        makers.withLock { $0[engine] = maker }
    }

    static func maker(for engine: TransportConfiguration.Engine) -> Maker? {
        makers.withLock { $0[engine] }
    }
}

/// The libcurl engine's switch for code outside this package: call ``install()`` once, before
/// making clients, and `http.transport: curl` (or `TransportConfiguration(engine: .curl)`)
/// then sends through libcurl. In a build without the package trait `Curl` this module is
/// empty of libcurl: ``isAvailable`` is false, ``install()`` does nothing, and asking for the
/// curl transport is a configuration error that says how to build with it.
public enum CurlTransport {
    /// Whether this build has the libcurl engine (the package trait `Curl`).
    public static var isAvailable: Bool {
        #if Curl
        true
        #else
        false
        #endif
    }

    /// Makes the curl transport available to every client made afterwards. Idempotent.
    public static func install() {
        #if Curl
        CurlEngine.install()
        #endif
    }
}

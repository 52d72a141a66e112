#if Curl
import CCurl
import SageLLM

/// libcurl's result codes in the engines' one vocabulary of failures (``TransportFailure``),
/// so that a refused connection, a reset or a broken chunk is the same ``SageLLMError``
/// whichever engine met it.
enum CurlFailure {
    /// The failure for a transfer that ended with `code`. `written`: the request went out on a
    /// connection; `pastDeadline`: its total deadline had passed (a timeout is then the deadline's).
    static func failure(_ code: CURLcode, message: String, written: Bool, answered: Bool, pastDeadline: Bool) -> TransportFailure {
        let error = CurlError(code: Int(code.rawValue), message: message)
        switch code {
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_UNSUPPORTED_PROTOCOL,
            CURLE_URL_MALFORMAT, CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM,
            CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_CRL_BADFILE,
            CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS:
            return TransportFailure(.connectFailed, underlying: error, requestWritten: false)
        case CURLE_OPERATION_TIMEDOUT:
            if pastDeadline { return TransportFailure(.deadline, underlying: error, requestWritten: written) }
            return written
                ? TransportFailure(.idleRead, underlying: error, requestWritten: true)
                : TransportFailure(.connectTimeout, underlying: error, requestWritten: false)
        case CURLE_GOT_NOTHING, CURLE_SEND_ERROR, CURLE_PARTIAL_FILE:
            return TransportFailure(.closed, underlying: error, requestWritten: written)
        case CURLE_RECV_ERROR:
            // libcurl reports a broken chunk of a chunked body as a receive error; its message
            // tells the two apart.
            if message.lowercased().contains("chunk") { return TransportFailure(.malformedResponse, underlying: error, requestWritten: true) }
            return TransportFailure(.closed, underlying: error, requestWritten: written)
        case CURLE_WEIRD_SERVER_REPLY, CURLE_BAD_CONTENT_ENCODING, CURLE_HTTP2, CURLE_HTTP2_STREAM:
            return TransportFailure(.malformedResponse, underlying: error, requestWritten: true)
        case CURLE_ABORTED_BY_CALLBACK:
            return TransportFailure(.cancelled, underlying: error, requestWritten: written)
        default:
            return answered
                ? TransportFailure(.malformedResponse, underlying: error, requestWritten: true)
                : TransportFailure(.connectFailed, underlying: error, requestWritten: written)
        }
    }
}

/// libcurl's own account of a failure: its code and message (from `CURLOPT_ERRORBUFFER`).
struct CurlError: Error, CustomStringConvertible {
    var code: Int
    var message: String
    var description: String { "libcurl error \(code): \(message)" }
}
#endif

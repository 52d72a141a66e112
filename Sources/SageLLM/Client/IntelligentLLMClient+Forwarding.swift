import NIOCore
import NIOHTTP1

/// Relaying a caller's own request (the gateway): the body goes to the server as it is and
/// the answer comes back as bytes, without decoding. No retries here: the relay fails over
/// itself, and only before anything reached its caller.
extension IntelligentLLMClient {
    /// Sends `body` to `path` under the API root (`chat/completions`, `completions`) and returns
    /// the whole response body. A non-2xx answer is thrown with the server's status and body
    /// (``SageLLMError/status``, ``SageLLMError/responseBody``).
    package func forward(path: String, body: ByteBuffer, requestID: String) async throws(SageLLMError) -> ByteBuffer {
        try await transport.send(method: .POST, path: path, body: body, requestID: requestID)
    }

    /// Sends `body` to `path` and returns the streamed answer as it arrives, once its head
    /// says 2xx. No total deadline: an idle read ends it (``TransportConfiguration/readTimeout``).
    package func forwardStream(path: String, body: ByteBuffer, requestID: String) async throws(SageLLMError) -> StreamingBodyReader {
        StreamingBodyReader(try await transport.openStream(path: path, body: body, requestID: requestID))
    }
}

import HTTPTypes
import Hummingbird

/// Every error the server itself produces (an unknown path, a wrong method) in the OpenAI
/// error shape, like the gateway's own refusals.
struct OpenAIErrorMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    /// What the server serves, said in the 404 for an unknown path.
    var served = "POST /v1/chat/completions, POST /v1/completions, GET /v1/models, /health, /ready and /metrics"

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as any HTTPResponseError {
            let code: GatewayError.Code = error.status == .notFound ? .notFound : .invalidRequest
            let message =
                error.status == .notFound
                ? "no route for \(request.method) \(request.uri.path); this server serves \(served)"
                : ((error as? HTTPError)?.body ?? "\(error.status.reasonPhrase) (\(request.method) \(request.uri.path))")
            return CompletionRoutes.response(for: GatewayError(code, message, status: error.status.code))
        } catch {
            return CompletionRoutes.response(for: GatewayError(.serverFailed, "the gateway failed: \(error)", status: 500))
        }
    }
}

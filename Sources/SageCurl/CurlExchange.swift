#if Curl
import CCurl
import NIOCore
import NIOHTTP1
import SageLLM

/// One HTTP exchange as a libcurl easy handle: its options, the callbacks that parse the
/// response head and hand on body pieces, and its state. Everything but `init` runs on the
/// ``CurlMultiLoop``'s thread, one call at a time.
final class CurlExchange: @unchecked Sendable {
    // Safety: after `init`, only the multi loop's thread touches the mutable state; the head
    // continuation is set before the exchange is handed to that thread and resumed on it once.
    let easy: UnsafeMutableRawPointer
    let request: EngineRequest
    let receiver: BodyReceiver?
    unowned let loop: CurlMultiLoop
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private let errorBuffer: UnsafeMutablePointer<CChar>
    var headContinuation: CheckedContinuation<Result<EngineResponse, TransportFailure>, Never>?

    // The response as it arrives.
    private var status = 0
    /// The final head's blank line has arrived.
    private var headEnded = false
    private var headers = HTTPHeaders()
    private(set) var body: ResponseBody?
    private var receiving = false
    private(set) var receivedBody = false
    private var receiverFailure: (any Error)?
    /// The request was handed to a connection (libcurl's pre-request callback).
    private(set) var written = false
    private(set) var lastActivity: ContinuousClock.Instant
    /// The consumer has this much unread: the next piece pauses the transfer instead.
    var pauseNext = false
    /// libcurl holds a piece until ``CurlMultiLoop`` unpauses the transfer.
    var paused = false
    /// The exchange has ended (completed, failed or cancelled).
    private(set) var ended = false

    init?(request: EngineRequest, receiver: BodyReceiver?, loop: CurlMultiLoop, configuration: CurlEngine.Settings) {
        guard let easy = curl_easy_init() else { return nil }
        self.easy = easy
        self.request = request
        self.receiver = receiver
        self.loop = loop
        self.lastActivity = .now
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        configure(configuration)
    }

    deinit {
        curl_easy_cleanup(easy)
        curl_slist_free_all(headerList)
        errorBuffer.deallocate()
    }

    private func configure(_ settings: CurlEngine.Settings) {
        let me = Unmanaged.passUnretained(self).toOpaque()
        sage_curl_setopt_string(easy, CURLOPT_URL, settings.curlURL(request.url))
        if let socket = settings.unixSocketPath { sage_curl_setopt_string(easy, CURLOPT_UNIX_SOCKET_PATH, socket) }
        sage_curl_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        sage_curl_setopt_pointer(easy, CURLOPT_PRIVATE, me)
        sage_curl_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        sage_curl_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(settings.connectTimeout))
        if let deadline = request.deadline { sage_curl_setopt_long(easy, CURLOPT_TIMEOUT_MS, Self.milliseconds(deadline - .now)) }
        if request.freshConnection { sage_curl_setopt_long(easy, CURLOPT_FRESH_CONNECT, 1) }
        sage_curl_setopt_long(easy, CURLOPT_HTTP_VERSION, SAGE_CURL_HTTP_VERSION_2TLS)
        if let file = settings.caBundlePath { sage_curl_setopt_string(easy, CURLOPT_CAINFO, file) }
        if let file = settings.clientCertificatePath { sage_curl_setopt_string(easy, CURLOPT_SSLCERT, file) }
        if let file = settings.clientKeyPath { sage_curl_setopt_string(easy, CURLOPT_SSLKEY, file) }
        // The method and the body (copied, so the request's buffer need not outlive this call).
        switch request.method {
        case .GET: break
        case .POST: sage_curl_setopt_long(easy, CURLOPT_POST, 1)
        default: sage_curl_setopt_string(easy, CURLOPT_CUSTOMREQUEST, request.method.rawValue)
        }
        if let body = request.body {
            sage_curl_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.readableBytes))
            _ = body.withUnsafeReadableBytes { bytes in
                sage_curl_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)))
            }
        }
        // The headers, without libcurl's own `Expect: 100-continue` (a round trip of waiting).
        for (name, value) in request.headers { headerList = curl_slist_append(headerList, "\(name): \(value)") }
        headerList = curl_slist_append(headerList, "Expect:")
        sage_curl_setopt_list(easy, CURLOPT_HTTPHEADER, headerList)
        sage_curl_setopt_write(easy, CURLOPT_HEADERFUNCTION, { buffer, size, count, context in
            guard let context, let buffer else { return 0 }
            return Unmanaged<CurlExchange>.fromOpaque(context).takeUnretainedValue().headerLine(buffer, size * count)
        })
        sage_curl_setopt_pointer(easy, CURLOPT_HEADERDATA, me)
        sage_curl_setopt_write(easy, CURLOPT_WRITEFUNCTION, { buffer, size, count, context in
            guard let context, let buffer else { return 0 }
            return Unmanaged<CurlExchange>.fromOpaque(context).takeUnretainedValue().bodyBytes(buffer, size * count)
        })
        sage_curl_setopt_pointer(easy, CURLOPT_WRITEDATA, me)
        sage_curl_setopt_prereq(easy) { context, _, _, _, _ in
            if let context { Unmanaged<CurlExchange>.fromOpaque(context).takeUnretainedValue().requestGoesOut() }
            return 0  // CURL_PREREQFUNC_OK
        }
        sage_curl_setopt_pointer(easy, CURLOPT_PREREQDATA, me)
    }

    /// A duration as libcurl's milliseconds: at least 1 (0 would mean no limit), at most a long's.
    static func milliseconds(_ duration: Duration) -> Int {
        max(1, Int(duration.nanoseconds / 1_000_000))  // `nanoseconds` saturates instead of trapping
    }

    // MARK: Callbacks (the loop's thread)

    private func requestGoesOut() {
        written = true
        lastActivity = .now
        request.onWritten?(lastActivity)
    }

    private func headerLine(_ buffer: UnsafeMutablePointer<CChar>, _ count: Int) -> Int {
        lastActivity = .now
        let line = String(decoding: UnsafeRawBufferPointer(start: buffer, count: count), as: UTF8.self)
        if line.hasPrefix("HTTP/") {
            // A status line starts a head (a 100 Continue's, or the final one).
            let parts = line.split(separator: " ", maxSplits: 2)
            status = parts.count > 1 ? Int(String(parts[1].prefix { $0.isNumber })) ?? 0 : 0
            headers = HTTPHeaders()
        } else if line == "\r\n" || line == "\n" {
            headEnded = status >= 200 || status == 101
            if headEnded { deliverHead() }
        } else if let colon = line.firstIndex(of: ":") {
            let name = line[..<colon].trimmingCharacters()
            let value = line[line.index(after: colon)...].trimmingCharacters()
            if !name.isEmpty { headers.add(name: name, value: value) }
        }
        return count
    }

    private func deliverHead() {
        guard body == nil else { return }
        receiving = receiver != nil && (200..<300).contains(status)
        let body = ResponseBody(
            resumeReading: { [loop] in loop.submit(.resume(self)) },
            cancel: { [loop] in loop.submit(.cancel(self)) })
        self.body = body
        let head = EngineResponse(status: HTTPResponseStatus(statusCode: status), headers: headers, body: body)
        headContinuation?.resume(returning: .success(head))
        headContinuation = nil
    }

    private func bodyBytes(_ buffer: UnsafeMutablePointer<CChar>, _ count: Int) -> Int {
        if pauseNext {
            // libcurl keeps this piece and gives it again once the transfer is unpaused.
            paused = true
            return SAGE_CURL_WRITEFUNC_PAUSE
        }
        let now = ContinuousClock.now
        lastActivity = now
        receivedBody = true
        if body == nil { deliverHead() }
        let piece = BodyPiece(bytes: ByteBuffer(bytes: UnsafeRawBufferPointer(start: buffer, count: count)), received: now)
        if receiving, let receiver {
            do {
                try receiver(piece)
            } catch {
                receiverFailure = error
                return 0  // libcurl ends the transfer with CURLE_WRITE_ERROR
            }
            return count
        }
        if body?.deliver(piece) == true { pauseNext = true }
        return count
    }

    // MARK: The end (the loop's thread)

    /// libcurl finished the transfer with `code`.
    func completed(_ code: CURLcode) {
        if code == CURLE_OK, body != nil || status >= 200 && headEnded {
            ended = true
            if body == nil { deliverHead() }
            body?.finish()
            return
        }
        if code == CURLE_OK {
            // libcurl saw the connection close in the middle of the head and called it a day.
            end(TransportFailure(.closed, underlying: CurlError(code: 0, message: "the connection closed inside the response head"), requestWritten: true))
            return
        }
        var failure: TransportFailure
        if let receiverFailure {
            failure = TransportFailure(.receiverFailed, underlying: receiverFailure, requestWritten: true)
        } else {
            let message = String(cString: errorBuffer)
            let pastDeadline = request.deadline.map { ContinuousClock.now >= $0 - .milliseconds(5) } ?? false
            failure = CurlFailure.failure(code, message: message, written: written, answered: body != nil, pastDeadline: pastDeadline)
        }
        end(failure)
    }

    /// The loop ended the transfer itself (cancelled, silent too long, no head in time).
    func end(_ failure: TransportFailure) {
        ended = true
        var failure = failure
        failure.receivedHead = body != nil
        failure.receivedBody = receivedBody
        var connects = 0
        _ = sage_curl_getinfo_long(easy, CURLINFO_NUM_CONNECTS, &connects)
        failure.reusedConnection = written && connects == 0
        if let body {
            body.fail(failure)
        } else {
            headContinuation?.resume(returning: .failure(failure))
            headContinuation = nil
        }
    }

    /// When the loop must look at this exchange again: its head deadline, or its read timeout.
    func nextCheck() -> ContinuousClock.Instant? {
        var next: ContinuousClock.Instant?
        if body == nil, let headDeadline = request.headDeadline { next = headDeadline }
        if written, !paused, !pauseNext { next = min(next ?? .now + .seconds(3600), lastActivity + request.readTimeout) }
        return next
    }

    /// Why the loop should end this exchange now, if it should.
    func overdue(at now: ContinuousClock.Instant) -> TransportFailure? {
        if body == nil, let headDeadline = request.headDeadline, now >= headDeadline {
            return TransportFailure(.deadline, requestWritten: written)
        }
        if written, !paused, !pauseNext, now - lastActivity >= request.readTimeout {
            return TransportFailure(.idleRead, requestWritten: true)
        }
        return nil
    }
}

extension Substring {
    fileprivate func trimmingCharacters() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }.reversed())
    }
}
#endif

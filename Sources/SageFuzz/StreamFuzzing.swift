import Foundation
import SageLLM

/// One input through the streaming decoding path, as a server's body reaches the client: the
/// SSE parser, each event through the chunk decoders (the fast reader, then Foundation's
/// decoder with the nesting limit), and the error-body reader. Any input may be rejected; none
/// may trap, overflow the stack or hang.
func decodeStream(_ bytes: UnsafeRawBufferPointer) {
    var parser = ServerSentEventParser(maximumEventSize: 1 << 20)
    func accept(_ event: ServerSentEventParser.EventView) {
        _ = try? ChatCompletionChunk.decodeEvent(event, what: "a chat completion chunk")
        _ = try? CompletionResponse.decodeEvent(event, what: "a completion chunk")
    }
    do {
        // Fed in two pieces, so events split across reads are exercised too.
        let half = bytes.count / 2
        try parser.parseViews(bytes: UnsafeRawBufferPointer(rebasing: bytes[..<half])) { accept($0) }
        try parser.parseViews(bytes: UnsafeRawBufferPointer(rebasing: bytes[half...])) { accept($0) }
        try parser.finishViews { accept($0) }
    } catch {
        // Malformed streams are errors; that is the expected outcome for most inputs.
    }
    _ = try? ChatCompletionChunk.decode(bytes)
    _ = ErrorBody.parse(bytes)
}

/// libFuzzer's entry point for one input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    decodeStream(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

#if FUZZING
/// libFuzzer's driver (`-sanitize=fuzzer` links it in). SwiftPM names an executable's entry
/// point after its module, so libFuzzer's own `main` is not used: ours hands it the arguments.
/// Every parameter is a pointer and the result an `int`, which Swift passes as C does.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt
#endif

/// With `-DFUZZING` (`Scripts/fuzz.sh`): libFuzzer, with the arguments given. Without: replays
/// every file of the corpus directories given as arguments (by default `Fuzz/Corpus/stream`),
/// so the corpus is a regression test in every build.
@main
enum StreamFuzzing {
    static func main() {
        #if FUZZING
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(runFuzzerDriver(&argc, &argv, fuzzerTestOneInput))
        #else
        let directories = CommandLine.arguments.count > 1 ? Array(CommandLine.arguments.dropFirst()) : ["Fuzz/Corpus/stream"]
        var replayed = 0
        for directory in directories {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []  // a missing folder replays nothing
            for name in names.sorted() {
                guard let data = FileManager.default.contents(atPath: directory + "/" + name) else { continue }
                data.withUnsafeBytes { decodeStream($0) }
                replayed += 1
            }
        }
        print("replayed \(replayed) inputs without a crash")
        #endif
    }
}

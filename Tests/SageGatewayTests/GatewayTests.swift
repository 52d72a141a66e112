import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SageControlPlane
import SageBenchmark
import SageGateway
import SageLLM
import SageSimulator
import SageTesting
import ServiceLifecycle
import Testing

/// The gateway over loopback, against simulated engines: the OpenAI shapes, the errors, the
/// scheduling inputs, disconnects and drain.
@Suite(.serialized) struct GatewayTests {
    static let chatBody = #"{"model":"m","messages":[{"role":"user","content":"Hello there"}],"max_tokens":5}"#

    @Test func aWholeChatComesBackAsTheEngineSentItWithWhereItRan() async throws {
        try await withGateway([engine(), engine()]) { gateway in
            let answer = try await gateway.send(.POST, "/v1/chat/completions", body: Self.chatBody, headers: [("x-request-id", "req-gw-1")])
            #expect(answer.status == 200)
            let json = RunningGateway.json(answer.body)
            #expect(json["object"] as? String == "chat.completion")
            let choice = (json["choices"] as? [[String: Any]])?.first
            let message = choice?["message"] as? [String: Any]
            #expect((message?["content"] as? String)?.isEmpty == false)
            #expect(((json["usage"] as? [String: Any])?["completion_tokens"] as? Int) == 5)
            #expect(answer.headers.first(name: "x-request-id") == "req-gw-1")
            #expect(["i0", "i1"].contains(answer.headers.first(name: "x-sagellm-instance") ?? ""))
            #expect(answer.headers.first(name: "content-type") == "application/json")
        }
    }

    @Test func vendorFieldsReachTheEngineUnchanged() async throws {
        // The engine refuses an unknown role only if it sees it: the body is not rewritten.
        try await withGateway([engine()]) { gateway in
            let body = #"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":3,"logprobs":true,"chat_template_kwargs":{"x":1}}"#
            let answer = try await gateway.send(.POST, "/v1/chat/completions", body: body)
            #expect(answer.status == 200)
            let choice = (RunningGateway.json(answer.body)["choices"] as? [[String: Any]])?.first
            #expect(choice?["logprobs"] != nil && !(choice?["logprobs"] is NSNull), "logprobs were asked for in the body and came back")
        }
    }

    @Test func aStreamArrivesEventByEventAndEndsWithDone() async throws {
        try await withGateway([engine(tbtMs: 2)]) { gateway in
            let body = #"{"model":"m","messages":[{"role":"user","content":"Stream please"}],"max_tokens":8,"stream":true,"stream_options":{"include_usage":true}}"#
            let answer = try await gateway.send(.POST, "/v1/chat/completions", body: body)
            #expect(answer.status == 200)
            #expect(answer.headers.first(name: "content-type") == "text/event-stream")
            let events = answer.body.components(separatedBy: "\n\n").filter { !$0.isEmpty }
            #expect(events.last == "data: [DONE]")
            let contents = events.dropLast().compactMap { event -> String? in
                let chunk = RunningGateway.json(String(event.dropFirst("data: ".count)))
                let delta = ((chunk["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])
                return (delta?["content"] as? String).flatMap { $0.isEmpty ? nil : $0 }
            }
            #expect(contents.count == 8, "one event per token")
            #expect(answer.body.contains(#""completion_tokens":8"#))
        }
    }

    @Test func completionsWholeAndStreamed() async throws {
        try await withGateway([engine()]) { gateway in
            let whole = try await gateway.send(.POST, "/v1/completions", body: #"{"model":"m","prompt":"Once","max_tokens":4}"#)
            #expect(whole.status == 200)
            #expect(RunningGateway.json(whole.body)["object"] as? String == "text_completion")
            let streamed = try await gateway.send(.POST, "/v1/completions", body: #"{"model":"m","prompt":"Once","max_tokens":4,"stream":true}"#)
            #expect(streamed.status == 200)
            #expect(streamed.body.hasSuffix("data: [DONE]\n\n"))
        }
    }

    @Test func modelsListsTheFleetWithHealthyInstances() async throws {
        try await withGateway([engine(model: "a"), engine(model: "a"), engine(model: "b")]) { gateway in
            let answer = try await gateway.send(.GET, "/v1/models")
            #expect(answer.status == 200)
            let data = RunningGateway.json(answer.body)["data"] as? [[String: Any]] ?? []
            #expect(data.map { $0["id"] as? String } == ["a", "b"])
            #expect(data.first?["owned_by"] as? String == "sagellm")
            #expect(data.first?["instances"] as? Int == 2 && data.first?["healthy_instances"] as? Int == 2)
        }
    }

    @Test func badRequestsGetTheOpenAIErrorShapeWithTheRightStatus() async throws {
        let configuration = GatewayConfiguration(host: "127.0.0.1", port: 0, maximumBodyBytes: 4096)
        try await withGateway([engine()], configuration: configuration) { gateway in
            let malformed = try await gateway.send(.POST, "/v1/chat/completions", body: #"{"model": "m", "messages": [}"#)
            #expect(malformed.status == 400)
            let error = RunningGateway.error(malformed.body)
            #expect(error["type"] as? String == "invalid_request_error")
            #expect((error["message"] as? String)?.contains("not valid JSON") == true)
            #expect(error.keys.sorted() == ["code", "message", "param", "type"])

            let zero = try await gateway.send(.POST, "/v1/chat/completions", body: #"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}"#)
            #expect(zero.status == 400 && RunningGateway.error(zero.body)["param"] as? String == "max_tokens")

            let wrongType = try await gateway.send(.POST, "/v1/chat/completions", body: #"{"model":"m","messages":[],"stream":"yes"}"#)
            #expect(wrongType.status == 400 && RunningGateway.error(wrongType.body)["param"] as? String == "stream")

            let unknown = try await gateway.send(.POST, "/v1/chat/completions", body: #"{"model":"nope","messages":[{"role":"user","content":"x"}]}"#)
            #expect(unknown.status == 404 && RunningGateway.error(unknown.body)["code"] as? String == "model_not_found")

            let method = try await gateway.send(.GET, "/v1/chat/completions")
            #expect((400..<500).contains(method.status) && RunningGateway.error(method.body)["message"] != nil, "a wrong method, in the OpenAI shape")

            let path = try await gateway.send(.GET, "/v1/nothing")
            #expect(path.status == 404 && (RunningGateway.error(path.body)["message"] as? String)?.contains("/v1/nothing") == true)

            let large = try await gateway.send(.POST, "/v1/chat/completions", body: String(repeating: " ", count: 5000) + Self.chatBody)
            #expect(large.status == 413 && RunningGateway.error(large.body)["code"] as? String == "request_too_large")

            let priority = try await gateway.send(.POST, "/v1/chat/completions", body: Self.chatBody, headers: [("x-sagellm-priority", "URGENT")])
            #expect(priority.status == 400 && RunningGateway.error(priority.body)["param"] as? String == "x-sagellm-priority")

            let slo = try await gateway.send(.POST, "/v1/chat/completions", body: Self.chatBody, headers: [("x-sagellm-slo-ms", "-5")])
            #expect(slo.status == 400 && RunningGateway.error(slo.body)["param"] as? String == "x-sagellm-slo-ms")
        }
    }

    @Test func theEnginesOwn4xxPassesThroughAndNeverOpensTheCircuit() async throws {
        try await withGateway([engine()]) { gateway in
            // The simulator refuses an empty message list with its own 400.
            for _ in 0..<8 {
                let refused = try await gateway.send(.POST, "/v1/chat/completions", body: #"{"model":"m","messages":[]}"#)
                #expect(refused.status == 400)
                #expect((RunningGateway.error(refused.body)["message"] as? String)?.contains("messages") == true)
            }
            let instance = try #require(gateway.controlPlane.instances().first)
            #expect(instance.isHealthy && !instance.isCircuitOpen, "4xx answers are the request's fault, not the instance's")
            #expect(try await gateway.send(.POST, "/v1/chat/completions", body: Self.chatBody).status == 200)
        }
    }

    @Test func noServingInstanceIs503NamingWhyAndReadySaysSo() async throws {
        try await withGateway([engine()]) { gateway in
            #expect(try await gateway.send(.GET, "/ready").status == 200)
            #expect(try await gateway.send(.GET, "/health").status == 200)
            gateway.controlPlane.drain("i0")
            let refused = try await gateway.send(.POST, "/v1/chat/completions", body: Self.chatBody)
            #expect(refused.status == 503)
            #expect(refused.headers.first(name: "retry-after") == "1")
            #expect((RunningGateway.error(refused.body)["message"] as? String)?.contains("i0") == true)
            let ready = try await gateway.send(.GET, "/ready")
            #expect(ready.status == 503)
        }
    }

    @Test func metricsCountRequestsByStatusAndShowEachInstance() async throws {
        try await withGateway([engine()]) { gateway in
            _ = try await gateway.send(.POST, "/v1/chat/completions", body: Self.chatBody)
            _ = try await gateway.send(.POST, "/v1/chat/completions", body: #"{"model":"nope","messages":[]}"#)
            let metrics = try await gateway.send(.GET, "/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.body.contains(#"sagellm_gateway_requests_total{model="m",status="200",key="anonymous"} 1"#))
            #expect(metrics.body.contains(#"status="404""#))
            #expect(metrics.body.contains(#"sagellm_gateway_requests_in_flight{instance="i0"} 0"#))
            #expect(metrics.body.contains(#"sagellm_gateway_instance_healthy{instance="i0"} 1"#))
            #expect(metrics.body.contains("sagellm_gateway_request_duration_seconds_bucket"))
        }
    }

    @Test func ourOwnClientWorksThroughTheGateway() async throws {
        try await withGateway([engine(tbtMs: 1)]) { gateway in
            let client = try IntelligentLLMClient(baseURL: gateway.baseURL + "/v1", model: "m")
            let answer = try await client.chat("Hello", options: ChatOptions(maxTokens: 4))
            #expect(answer.usage?.completionTokens == 4)
            var chunks = 0
            for try await chunk in client.streamChat("Hello", options: ChatOptions(maxTokens: 6)) where !chunk.contentDelta.isEmpty { chunks += 1 }
            #expect(chunks == 6)
            try await client.shutdown()
        }
    }

    @Test func aClientThatLeavesMidStreamStopsTheEngine() async throws {
        try await withGateway([engine(tbtMs: 20)]) { gateway in
            let simulator = gateway.simulators[0]
            var request = HTTPClientRequest(url: gateway.baseURL + "/v1/chat/completions")
            request.method = .POST
            request.body = .bytes(ByteBuffer(string: #"{"model":"m","messages":[{"role":"user","content":"long"}],"max_tokens":2000,"stream":true}"#))
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            let response = try await client.execute(request, timeout: .seconds(30))
            var iterator = response.body.makeAsyncIterator()
            _ = try await iterator.next()  // the stream has started
            try await client.shutdown()  // the client goes away mid-stream
            let stopped = await eventually(timeout: .seconds(5)) { simulator.engine.statistics().aborted == 1 }
            #expect(stopped, "the engine saw the request go away")
            #expect(await eventually { gateway.controlPlane.instances().first?.activeRequests == 0 }, "the instance is free again")
        }
    }

    /// Before any byte of the answer: the client closing its side is enough (the gateway does not
    /// wait to fail a write), as nginx treats a client abort.
    @Test func aClientThatLeavesBeforeTheAnswerStopsTheEngine() async throws {
        var slow = engine(tbtMs: 1)
        slow.prefillTokensPerSecond = 100  // seconds of prefill
        try await withGateway([slow]) { gateway in
            let prompt = String(repeating: "The quick brown fox jumps. ", count: 220)
            var request = HTTPClientRequest(url: gateway.baseURL + "/v1/chat/completions")
            request.method = .POST
            request.body = .bytes(ByteBuffer(string: #"{"model":"m","messages":[{"role":"user","content":"\#(prompt)"}],"max_tokens":5}"#))
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            let sent = Task { try? await client.execute(request, timeout: .seconds(30)) }
            #expect(await eventually { gateway.simulators[0].engine.statistics().running == 1 })
            try await client.shutdown()
            _ = await sent.value
            #expect(await eventually(timeout: .seconds(5)) { gateway.simulators[0].engine.statistics().aborted == 1 })
            #expect(await eventually { gateway.controlPlane.instances().first?.activeRequests == 0 })
        }
    }

    @Test func drainLetsTheStreamInFlightFinishAndRefusesNewRequests() async throws {
        try await withGateway([engine(tbtMs: 10)]) { gateway in
            let streamed = Task {
                try await gateway.send(
                    .POST, "/v1/chat/completions", body: #"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":40,"stream":true}"#)
            }
            #expect(await eventually { gateway.controlPlane.instances().first?.activeRequests == 1 })
            Task { await gateway.group.triggerGracefulShutdown() }
            #expect(await eventually { (try? await gateway.send(.GET, "/ready").status) == 503 }, "not ready while draining")
            let refused = try await gateway.send(.POST, "/v1/chat/completions", body: Self.chatBody)
            #expect(refused.status == 503 && refused.headers.first(name: "retry-after") == "1")
            let finished = try await streamed.value
            #expect(finished.status == 200 && finished.body.hasSuffix("data: [DONE]\n\n"), "the stream in flight ran to its end")
        }
    }
}

/// Every counter returns to zero after every kind of ending: success, an engine's 503, an
/// engine dropping a stream mid-way, a client leaving mid-stream or while queued (with
/// keepalives going), a deadline that cannot be met; through an API key with limits.
@Suite(.serialized) struct GatewayCounterSoakTests {
    static let requests = 2_000

    @Test func countersReturnToZeroAfterMixedOutcomes() async throws {
        var flaky = engine(tbtMs: 1)
        flaky.faults.failRate = 0.2
        flaky.faults.disconnectAfterTokens = 6
        let steady = engine(tbtMs: 1)
        let path = try keysFile("keys:\n  - name: soak\n    key: sk-soak-key-0001\n    max_concurrency: 64\n    tokens_per_minute: 100000000\n")
        var configuration = gatewayWithKeys(path)
        configuration.keepaliveInterval = .milliseconds(5)
        let started = ContinuousClock.now
        try await withGateway(
            [flaky, steady], configuration: configuration,
            controlPlane: { simulators in
                // Few slots, so that requests queue (and get keepalives).
                try ControlPlaneClient(
                    instances: simulators.enumerated().map { InstanceSpec(id: "i\($0)", baseURL: $1.baseURL, model: "m", maxConcurrentRequests: 4) },
                    schedulingPolicy: .fifo, routingStrategy: .loadBalanced)
            }
        ) { gateway in
            // Every mix, in a fixed order: whole; stream read to the end; stream left after its
            // first piece; whole with a deadline of 1 ms.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<Self.requests {
                    let (stream, leave, hurried) = (index % 4 == 1 || index % 4 == 2, index % 4 == 2, index % 4 == 3 && index % 8 == 3)
                    if index >= 24 { try await group.next() }  // 24 at a time over 8 slots
                    group.addTask {
                        let body = #"{"model":"m","messages":[{"role":"user","content":"soak"}],"max_tokens":12,"stream":\#(stream)}"#
                        var headers = bearer("sk-soak-key-0001")
                        if hurried { headers.append(("x-sagellm-slo-ms", "1")) }
                        if leave {
                            var request = HTTPClientRequest(url: gateway.baseURL + "/v1/chat/completions")
                            request.method = .POST
                            request.headers.add(name: "authorization", value: "Bearer sk-soak-key-0001")
                            request.body = .bytes(ByteBuffer(string: body))
                            let client = HTTPClient(eventLoopGroupProvider: .singleton)
                            if let response = try? await client.execute(request, timeout: .seconds(10)) {
                                var pieces = response.body.makeAsyncIterator()
                                _ = try? await pieces.next()
                            }
                            try await client.shutdown()  // leaves mid-stream, or while queued
                        } else {
                            let answer = try await gateway.send(.POST, "/v1/chat/completions", body: body, headers: headers)
                            #expect([200, 502, 503, 504].contains(answer.status), "status \(answer.status): \(answer.body.prefix(200))")
                        }
                    }
                }
                try await group.waitForAll()
            }
            let settled = await eventually(timeout: .seconds(10)) {
                guard let metrics = try? await gateway.send(.GET, "/metrics").body else { return false }
                return metrics.contains("sagellm_gateway_requests_active 0")
                    && metrics.contains(#"sagellm_gateway_key_requests_in_flight{key="soak"} 0"#)
                    && gateway.controlPlane.metrics().queuedRequests == 0
                    && gateway.controlPlane.instances().allSatisfy { $0.activeRequests == 0 }
                    && gateway.simulators.allSatisfy { $0.engine.statistics().running == 0 }
            }
            #expect(settled, "the gateway, its key, the control plane and the engines all came back to zero")
        }
        #expect(ContinuousClock.now - started < .seconds(60), "bounded in time")
    }
}

/// The benchmark pointed at the gateway, as `sagellm-benchmark --backend openai` does.
struct GatewayBenchmarkTests {
    @Test func theBenchmarksOpenAIBackendMeasuresThroughTheGateway() async throws {
        try await withGateway([engine(tbtMs: 2, ttftMs: 5), engine(tbtMs: 2, ttftMs: 5)]) { gateway in
            let backend = try OpenAIBackend(baseURL: gateway.baseURL + "/v1", apiKey: nil, model: "m")
            let workload = Workload(name: "through-gateway", inputTokens: 64, outputTokens: 10, numPrompts: 12, arrival: .concurrency(4))
            let outcome = try await LoadRunner(client: backend, seed: 3).run(workload)
            await backend.shutdown()
            #expect(outcome.results.count == 12)
            let failures = outcome.results.compactMap(\.error)
            #expect(failures.isEmpty, "\(failures.prefix(2))")
            let metrics = RunMetrics(outcome, backend: "openai", model: "m")
            #expect(metrics.ttft.map { $0.min >= 5 } == true, "no first token before the engine's TTFT")
            #expect(!metrics.tokensApproximate, "output tokens come from the usage the gateway passed through")
        }
    }
}

/// Prefill/decode disaggregation through the gateway, as through the library.
struct GatewayDisaggregationTests {
    @Test func aLongPromptIsSplitAndTheBodiesKeepTheCallersFields() async throws {
        var prefill = engine(tbtMs: 1)
        prefill.role = .prefill
        prefill.kvSideChannelPort = 5612
        var decode = engine(tbtMs: 1)
        decode.role = .decode
        try await withGateway([prefill, decode], types: [.prefill, .decode]) { gateway in
            for simulator in gateway.simulators {
                simulator.ledger.recordBodies()
                simulator.ledger.recordTimings()  // keyed by x-request-id
            }
            let prompt = String(repeating: "The quick brown fox jumps. ", count: 220)  // prefill-heavy
            let body = #"{"model":"m","messages":[{"role":"user","content":"\#(prompt)"}],"max_tokens":6,"temperature":0.2,"stream":true,"chat_template_kwargs":{"enable_thinking":false}}"#
            let answer = try await gateway.send(.POST, "/v1/chat/completions", body: body, headers: [("x-request-id", "gw-split-1")])
            #expect(answer.status == 200)
            #expect(answer.headers.first(name: "x-sagellm-instance") == "i1", "the decode instance answered")
            #expect(answer.body.hasSuffix("data: [DONE]\n\n"))

            let prefillBody = try #require(gateway.simulators[0].ledger.requestBodies.first)
            #expect(prefillBody["max_tokens"] == 1 && prefillBody["stream"] == nil)
            #expect(prefillBody["kv_transfer_params"]?["do_remote_decode"] == true)
            #expect(prefillBody["temperature"] == 0.2 && prefillBody["chat_template_kwargs"]?["enable_thinking"] == false)
            let decodeBody = try #require(gateway.simulators[1].ledger.requestBodies.first)
            #expect(decodeBody["max_tokens"] == 6 && decodeBody["stream"] == true)
            #expect(decodeBody["chat_template_kwargs"]?["enable_thinking"] == false)
            #expect(decodeBody["kv_transfer_params"]?["remote_port"] == 5612, "the prefill's answer, handed over")
            #expect(decodeBody["messages"] == prefillBody["messages"])
            #expect(gateway.simulators.map { Array($0.ledger.requestTimings.keys) } == [["gw-split-1"], ["gw-split-1"]], "the caller's id on both halves")
            #expect(gateway.controlPlane.metrics().paths == ["disaggregated": 1])
        }
    }

    /// A client that leaves a split request ends the half that is running: the prefill while
    /// the prefill instance computes, the decode while it streams. Each engine's own counters
    /// show it; the time from the client closing to the engine's abort is reported.
    @Test(arguments: ["prefill", "decode"]) func aClientLeavingEndsTheHalfThatRuns(during half: String) async throws {
        var prefill = engine(tbtMs: 1)
        prefill.role = .prefill
        prefill.prefillTokensPerSecond = half == "prefill" ? 100 : 0  // a prefill of seconds
        var decode = engine(tbtMs: 20)
        decode.role = .decode
        try await withGateway([prefill, decode], types: [.prefill, .decode]) { gateway in
            let prompt = String(repeating: "The quick brown fox jumps. ", count: 220)
            var request = HTTPClientRequest(url: gateway.baseURL + "/v1/chat/completions")
            request.method = .POST
            request.body = .bytes(
                ByteBuffer(string: #"{"model":"m","messages":[{"role":"user","content":"\#(prompt)"}],"max_tokens":2000,"stream":true}"#))
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            let running = half == "prefill" ? gateway.simulators[0] : gateway.simulators[1]
            if half == "prefill" {
                let sent = Task { try? await client.execute(request, timeout: .seconds(30)) }
                #expect(await eventually { running.engine.statistics().running == 1 }, "the prefill is computing")
                try await client.shutdown()
                _ = await sent.value
            } else {
                let response = try await client.execute(request, timeout: .seconds(30))
                var pieces = response.body.makeAsyncIterator()
                _ = try await pieces.next()  // the decode is streaming
                try await client.shutdown()
            }
            let left = ContinuousClock.now
            #expect(await eventually(timeout: .seconds(5)) { running.engine.statistics().aborted == 1 }, "the \(half) engine saw it go")
            print("client left during the \(half): the engine's abort seen after \(ContinuousClock.now - left)")
            if half == "prefill" {
                #expect(gateway.simulators[1].engine.statistics().completed + gateway.simulators[1].engine.statistics().running == 0, "no decode was started")
            }
            #expect(await eventually { gateway.controlPlane.instances().allSatisfy { $0.activeRequests == 0 } })
        }
    }
}

/// A model alias: the one field of the caller's body the gateway changes.
struct GatewayModelAliasTests {
    @Test func anAliasReachesTheEngineAsItsModelAndIsListed() async throws {
        var configuration = GatewayConfiguration(host: "127.0.0.1", port: 0)
        configuration.modelAliases = ["gpt-4o-mini": "m"]
        try await withGateway([engine()], configuration: configuration) { gateway in
            gateway.simulators[0].ledger.recordBodies()
            let answer = try await gateway.send(
                .POST, "/v1/chat/completions", body: #"{"messages":[{"role":"user","content":"hi"}],"model":"gpt-4o-mini","max_tokens":2,"seed":7}"#)
            #expect(answer.status == 200)
            let seen = try #require(gateway.simulators[0].ledger.requestBodies.first)
            #expect(seen["model"] == "m" && seen["seed"] == 7)
            let models = RunningGateway.json(try await gateway.send(.GET, "/v1/models").body)["data"] as? [[String: Any]] ?? []
            #expect(models.map { $0["id"] as? String } == ["m", "gpt-4o-mini"])
            #expect(models.last?["root"] as? String == "m")
        }
    }
}

#!/usr/bin/env bash
# The command line as users run it: the release build against a simulated engine on
# 127.0.0.1, and hostile flags that must give a clear error, never a crash.
# Usage: Scripts/smoke.sh [BIN_DIR]   (default: builds and uses .build/release)
set -uo pipefail
cd "$(dirname "$0")/.."
. Scripts/wait_for.sh
if [ $# -ge 1 ]; then
    BIN="$1"
else
    swift build -c release --product sagellm >/dev/null && swift build -c release --product sagellm-benchmark >/dev/null || exit 1
    BIN=".build/release"
fi
WORK="$(mktemp -d)"
SIM_PID=""
cleanup() { [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; [ -f "$WORK/out" ] && sed 's/^/     | /' "$WORK/out" | tail -15; }

# expect_status WANT NAME COMMAND...: the command exits with WANT (or, for "error", 1-127:
# a clear failure, not a signal such as 132 for a trap or 139 for a segmentation fault).
expect_status() {
    local want="$1" name="$2"
    shift 2
    timeout 120 "$@" >"$WORK/out" 2>&1
    local status=$?
    if [ "$want" = "error" ]; then
        if [ "$status" -ge 1 ] && [ "$status" -lt 128 ] && [ "$status" -ne 124 ]; then pass "$name (exit $status)"; else fail "$name: exit $status, wanted a clear error"; fi
    elif [ "$status" -eq "$want" ]; then pass "$name"; else fail "$name: exit $status, wanted $want"; fi
}

# A simulated engine on a free port.
"$BIN/sagellm" simulate --port 0 --model smoke --ttft-ms 5 --tbt-ms 1 2>"$WORK/sim.log" &
SIM_PID=$!
URL="$(wait_for "$WORK/sim.log" 'http://127.0.0.1:[0-9]*/v1')"
if [ -z "$URL" ]; then echo "the simulator did not start:"; cat "$WORK/sim.log"; exit 1; fi
echo "simulator at $URL"

expect_status 0 "chat" "$BIN/sagellm" chat --base-url "$URL" --max-tokens 8 "Hello"
expect_status 0 "chat --repeat 20 --concurrency 4" "$BIN/sagellm" chat --base-url "$URL" --repeat 20 --concurrency 4 --max-tokens 4 "Hello"
expect_status 0 "chat --json" "$BIN/sagellm" chat --base-url "$URL" --json --max-tokens 4 "Hello"
expect_status 0 "models" "$BIN/sagellm" models --base-url "$URL"

cat >"$WORK/cluster.yaml" <<YAML
scheduling_policy: priority
routing_strategy: load_balanced
instances:
  - {instance_id: a, base_url: "$URL", model_name: smoke}
YAML
expect_status 0 "cluster chat" "$BIN/sagellm" cluster chat --config "$WORK/cluster.yaml" --repeat 6 --concurrency 3 --max-tokens 4 "Hi"
expect_status 0 "benchmark run" "$BIN/sagellm-benchmark" run --backend openai --base-url "$URL" --workload short --num-prompts 4 --contract none --output "$WORK/bench"
# Piped, the run says what it runs, draws no progress bar, and reports its prompts' length.
if grep -q "^Running --workload short: 1 workload" "$WORK/out" && ! grep -q $'\r' "$WORK/out" \
    && grep -q '"prompt_length_error_mean"' "$WORK/bench/short_input_metrics.json"; then
    pass "benchmark output: the plan first, no progress bar when piped, the prompt-length report"
else
    fail "benchmark output: the plan first, no progress bar when piped, the prompt-length report"
fi
# The release binary renders the HTML report of a sweep and the comparison of two runs.
expect_status 0 "benchmark sweep" "$BIN/sagellm-benchmark" run --backend openai --base-url "$URL" --input-len 16 --output-len 4 --num-prompts 4 --sweep concurrency=1,2 --contract none --output "$WORK/sweep"
expect_status 0 "compare --format html" "$BIN/sagellm-benchmark" compare "$WORK/sweep" "$WORK/sweep" --format html
if grep -q "Sweep of custom over concurrency" "$WORK/sweep/REPORT.html" && grep -q '<svg class="chart"' "$WORK/out"; then
    pass "HTML: the sweep's curve in REPORT.html, the comparison's charts"
else
    fail "HTML: the sweep's curve in REPORT.html, the comparison's charts"
fi
expect_status 0 "demo" "$BIN/sagellm" demo

# Numbers and URLs that once crashed the binaries: each must be a clear error.
expect_status error "chat --timeout 1e10" "$BIN/sagellm" chat --base-url "$URL" --timeout 1e10 "Hi"
expect_status error "chat --probe-timeout 1e10" "$BIN/sagellm" chat --probe-timeout 1e10 "Hi"
expect_status error "SAGE_TIMEOUT=1e10" env SAGE_TIMEOUT=1e10 "$BIN/sagellm" chat --base-url "$URL" "Hi"
expect_status error "chat --base-url with port 99999" "$BIN/sagellm" chat --base-url "http://127.0.0.1:99999/v1" "Hi"
expect_status error "chat --base-url with user info" "$BIN/sagellm" chat --base-url "http://user:pw@127.0.0.1:1/v1" "Hi"
expect_status error "simulate --ttft-ms nan" "$BIN/sagellm" simulate --port 0 --ttft-ms nan
expect_status error "benchmark --timeout inf" "$BIN/sagellm-benchmark" run --backend mock --timeout inf --output "$WORK/b2"
expect_status error "benchmark --duration 1e300" "$BIN/sagellm-benchmark" run --backend mock --duration 1e300 --output "$WORK/b3"
expect_status error "benchmark --request-rate 1e-300" "$BIN/sagellm-benchmark" run --backend mock --request-rate 1e-300 --output "$WORK/b4"
printf 'instances:\n  - {instance_id: x, base_url: "http://127.0.0.1:99999/v1", model_name: m}\n' >"$WORK/bad.yaml"
expect_status error "cluster file with port 99999" "$BIN/sagellm" cluster chat --config "$WORK/bad.yaml" "Hi"
printf 'chat:\n  api_key: "sk-smoke-secret\n' >"$WORK/broken.yaml"
expect_status error "a broken settings file" "$BIN/sagellm" detect --config "$WORK/broken.yaml"
if grep -q "sk-smoke-secret" "$WORK/out"; then fail "the broken file's key was printed"; else pass "the broken file's key is not printed"; fi
# A request with max_tokens = Int.max: a clear 400 from the simulator, which stays up.
if command -v curl >/dev/null; then
curl -s -o "$WORK/out" -w '%{http_code}' -H 'content-type: application/json' \
    -d '{"model":"smoke","messages":[{"role":"user","content":"hi"}],"max_tokens":9223372036854775807}' "$URL/chat/completions" >"$WORK/code" 2>/dev/null
if [ "$(cat "$WORK/code")" = "400" ] && kill -0 "$SIM_PID" 2>/dev/null; then pass "max_tokens Int.max is a 400"; else fail "max_tokens Int.max: $(cat "$WORK/code")"; fi

# Ctrl-C during a long streamed cluster chat: the engine sees the abort (measured here, from the
# signal to the engine's aborted counter moving), and the command ends quietly with 130.
METRICS="${URL%/v1}/metrics"
figure() { curl -s "$METRICS" | awk -v name="$1" 'index($0, name) == 1 { print $2 }'; }
before="$(figure sagellm_simulator_aborted_total)"
"$BIN/sagellm" cluster chat --config "$WORK/cluster.yaml" --max-tokens 6000 "Tell a long story." >"$WORK/out" 2>&1 &
CHAT_PID=$!
for _ in $(seq 1 250); do [ "$(figure vllm:num_requests_running)" = "1" ] && break; sleep 0.02; done
sent=$(date +%s%N)
kill -INT "$CHAT_PID"
while [ "$(figure sagellm_simulator_aborted_total)" = "$before" ] && [ $(( ($(date +%s%N) - sent) / 1000000 )) -lt 5000 ]; do :; done
seen=$(( ($(date +%s%N) - sent) / 1000000 ))
wait "$CHAT_PID"
status=$?
if [ "$status" -eq 130 ] && [ ! -s "$WORK/out" ] && [ "$seen" -lt 100 ]; then
    pass "Ctrl-C on cluster chat: exit 130, quiet, engine saw the abort after $seen ms"
else
    fail "Ctrl-C on cluster chat: exit $status, engine saw the abort after $seen ms (wanted 130, no output, under 100 ms)"
fi

# The gateway: `serve --simulate 2` on a free port, our own client through it, then SIGTERM
# during a stream: the stream ends with [DONE], the process drains and exits 0.
"$BIN/sagellm" serve --simulate 2 --port 0 >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
GATEWAY="$(wait_for "$WORK/serve.log" 'OpenAI API at http://127.0.0.1:[0-9]*/v1')"
GATEWAY="${GATEWAY#OpenAI API at }"
if [ -n "$GATEWAY" ] && "$BIN/sagellm" chat --base-url "$GATEWAY" --max-tokens 8 "Hello gateway" >"$WORK/out" 2>&1; then
    pass "serve --simulate 2, chat through it"
else
    fail "serve --simulate 2, chat through it"
fi
curl -sN -H 'content-type: application/json' \
    -d '{"model":"sagellm-sim","messages":[{"role":"user","content":"hi"}],"max_tokens":200,"stream":true}' "$GATEWAY/chat/completions" >"$WORK/stream" 2>/dev/null &
STREAM_PID=$!
sleep 0.3
kill -TERM "$SERVE_PID"
wait "$STREAM_PID"
wait "$SERVE_PID"
status=$?
if [ "$status" -eq 0 ] && tail -c 20 "$WORK/stream" | grep -q 'data: \[DONE\]'; then
    pass "serve drains on SIGTERM: the stream in flight ends with [DONE], exit 0"
else
    cp "$WORK/serve.log" "$WORK/out"
    fail "serve on SIGTERM: exit $status, stream ending: $(tail -c 40 "$WORK/stream" | tr '\n' ' ')"
fi

# The gateway with API keys from the environment and the admin API on a free port: no key is
# 401, the key serves, the admin key lists the instances, and no key reaches the log.
SAGE_GATEWAY_API_KEYS="smoke=sk-smoke-key-0001" SAGE_GATEWAY_ADMIN_KEY="sk-smoke-admin-01" \
    "$BIN/sagellm" serve --simulate 1 --port 0 --admin-port 0 >"$WORK/keys.log" 2>&1 &
KEYS_PID=$!
GATEWAY="$(wait_for "$WORK/keys.log" 'OpenAI API at http://127.0.0.1:[0-9]*/v1')"
GATEWAY="${GATEWAY#OpenAI API at }"
ADMIN="$(wait_for "$WORK/keys.log" 'http://127.0.0.1:[0-9]*/admin')"
no_key="$(curl -s -o /dev/null -w '%{http_code}' "$GATEWAY/models")"
with_key="$(curl -s -o /dev/null -w '%{http_code}' -H 'authorization: Bearer sk-smoke-key-0001' "$GATEWAY/models")"
listed="$(curl -s -H 'authorization: Bearer sk-smoke-admin-01' "$ADMIN/instances")"
if [ "$no_key" = 401 ] && [ "$with_key" = 200 ] && echo "$listed" | grep -q '"instance_id":"engine-0"' \
    && "$BIN/sagellm" chat --base-url "$GATEWAY" --api-key sk-smoke-key-0001 --max-tokens 4 "Hi" >"$WORK/out" 2>&1; then
    pass "serve with keys: 401 without one, served with one, admin API lists the instances"
else
    fail "serve with keys: no key $no_key, key $with_key, admin: $(echo "$listed" | head -c 120)"
fi
# The OpenAI Python SDK through the same gateway, when it is installed (optional).
if python3 -c "import openai" 2>/dev/null; then
    if python3 "$(dirname "$0")/openai_sdk_check.py" "$GATEWAY" sk-smoke-key-0001 sagellm-sim >"$WORK/out" 2>&1; then
        pass "$(tail -1 "$WORK/out")"
    else
        fail "the OpenAI Python SDK through the gateway"
    fi
else
    echo "skip the OpenAI Python SDK check (pip install openai to run it)"
fi
kill -TERM "$KEYS_PID"
wait "$KEYS_PID"
if grep -q "sk-smoke" "$WORK/keys.log"; then fail "a key reached the gateway's log"; else pass "no key in the gateway's log"; fi
fi

# Hostile flags of the etcd sidecar: clear errors, before anything is contacted.
expect_status error "register --ttl 1" "$BIN/sagellm" register --etcd http://127.0.0.1:1 --instance-id a --base-url "$URL" --model smoke --ttl 1
expect_status error "register --etcd without a scheme" "$BIN/sagellm" register --etcd 127.0.0.1:2379 --instance-id a --base-url "$URL" --model smoke
# etcd discovery end to end, when etcd is installed (CI installs it): one member on free
# loopback ports, the sidecar registers the simulator, the gateway finds it and serves it,
# and the sidecar's SIGTERM takes it away again.
if command -v etcd >/dev/null && command -v python3 >/dev/null && command -v curl >/dev/null; then
    read -r CLIENT PEER <<<"$(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')"
    etcd --data-dir "$WORK/etcd" --listen-client-urls "http://127.0.0.1:$CLIENT" --advertise-client-urls "http://127.0.0.1:$CLIENT" \
        --listen-peer-urls "http://127.0.0.1:$PEER" --initial-advertise-peer-urls "http://127.0.0.1:$PEER" \
        --initial-cluster "default=http://127.0.0.1:$PEER" >"$WORK/etcd.log" 2>&1 &
    ETCD_PID=$!
    for _ in $(seq 1 100); do curl -s "http://127.0.0.1:$CLIENT/health" | grep -q '"true"' && break; sleep 0.1; done
    "$BIN/sagellm" register --etcd "http://127.0.0.1:$CLIENT" --prefix /smoke/ --instance-id sim-1 --base-url "$URL" --model smoke --ttl 3 >"$WORK/register.log" 2>&1 &
    REGISTER_PID=$!
    printf 'discovery:\n  - etcd: http://127.0.0.1:%s\n    prefix: /smoke/\n' "$CLIENT" >"$WORK/etcd-cluster.yaml"
    "$BIN/sagellm" serve --config "$WORK/etcd-cluster.yaml" --port 0 --replica-id smoke-1 >"$WORK/etcd-serve.log" 2>&1 &
    ETCD_SERVE_PID=$!
    GATEWAY="$(wait_for "$WORK/etcd-serve.log" 'OpenAI API at http://127.0.0.1:[0-9]*/v1')"
    GATEWAY="${GATEWAY#OpenAI API at }"
    for _ in $(seq 1 100); do curl -s "${GATEWAY%/v1}/ready" | grep -q '"status":"ready"' && break; sleep 0.1; done
    if "$BIN/sagellm" chat --base-url "$GATEWAY" --max-tokens 4 "Hi" >"$WORK/out" 2>&1; then
        pass "register + serve over etcd discovery: the registered engine serves through the gateway"
    else
        fail "register + serve over etcd discovery: $(curl -s "${GATEWAY%/v1}/ready")"
    fi
    kill -TERM "$REGISTER_PID"
    wait "$REGISTER_PID"
    register_status=$?
    for _ in $(seq 1 50); do curl -s "${GATEWAY%/v1}/ready" | grep -q '"status":"not ready"' && break; sleep 0.1; done
    if [ "$register_status" = 0 ] && curl -s "${GATEWAY%/v1}/ready" | grep -q '"status":"not ready"' && grep -q "deregistered /smoke/sim-1" "$WORK/register.log"; then
        pass "register on SIGTERM: deregistered, exit 0, and the gateway drops the engine"
    else
        cp "$WORK/register.log" "$WORK/out"
        fail "register on SIGTERM: exit $register_status, ready: $(curl -s "${GATEWAY%/v1}/ready" | head -c 200)"
    fi
    kill -TERM "$ETCD_SERVE_PID" "$ETCD_PID"
    wait "$ETCD_SERVE_PID" "$ETCD_PID" 2>/dev/null
else
    echo "skip the etcd discovery check (etcd, python3 or curl is not installed)"
fi

echo "smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

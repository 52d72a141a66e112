#!/usr/bin/env bash
# Three gateway replicas (`sagellm serve`, separate processes) over one fleet in etcd: four
# simulated engines, each kept in etcd by its `sagellm register` sidecar. Measures routing
# agreement (the share of requests that land where the first replica, as a single gateway,
# sends the same session), one request at a time and under concurrent load, and how long the
# others take to count a replica killed with SIGKILL out of the key limits' split.
# Needs etcd, python3 and curl; loopback only. Usage: Scripts/replicas.sh [BIN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
. Scripts/wait_for.sh
BIN="${1:-.build/release}"
[ -x "$BIN/sagellm" ] || swift build -c release --product sagellm >/dev/null
command -v etcd >/dev/null || { echo "etcd is not installed (apt-get install etcd-server)"; exit 1; }
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
free_ports() { python3 -c "import socket
s=[socket.socket() for _ in range($1)]
[x.bind(('127.0.0.1',0)) for x in s]
print(*[x.getsockname()[1] for x in s])"; }
read -r CLIENT PEER <<<"$(free_ports 2)"
ETCD="http://127.0.0.1:$CLIENT"
etcd --data-dir "$WORK/etcd" --listen-client-urls "$ETCD" --advertise-client-urls "$ETCD" \
    --listen-peer-urls "http://127.0.0.1:$PEER" --initial-advertise-peer-urls "http://127.0.0.1:$PEER" \
    --initial-cluster "default=http://127.0.0.1:$PEER" >"$WORK/etcd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do curl -s "$ETCD/health" | grep -q '"true"' && break; sleep 0.1; done
for n in 0 1 2 3; do
    "$BIN/sagellm" simulate --port 0 --model m --ttft-ms 20 --tbt-ms 5 --max-batch 16 --seed "$n" 2>"$WORK/sim$n.log" &
    PIDS+=($!)
    url="$(wait_for "$WORK/sim$n.log" 'http://127.0.0.1:[0-9]*/v1')"
    "$BIN/sagellm" register --etcd "$ETCD" --prefix /bench/engines/ --instance-id "engine-$n" --base-url "$url" --model m \
        --max-concurrent-requests 16 --ttl 10 >"$WORK/reg$n.log" 2>&1 &
    PIDS+=($!)
done
cat >"$WORK/cluster.yaml" <<YAML
scheduling_policy: fifo
routing_strategy: affinity
discovery:
  - etcd: $ETCD
    prefix: /bench/engines/
gateway:
  replicas:
    etcd: $ETCD
    prefix: /bench/gateways/
    ttl_seconds: 5
YAML
GATEWAYS=()
SERVE_PIDS=()
for n in 1 2 3; do
    "$BIN/sagellm" serve --config "$WORK/cluster.yaml" --port 0 --replica-id "g$n" >"$WORK/serve$n.log" 2>&1 &
    SERVE_PIDS+=($!)
    PIDS+=($!)
    gateway="$(wait_for "$WORK/serve$n.log" 'OpenAI API at http://127.0.0.1:[0-9]*/v1')"
    GATEWAYS+=("${gateway#OpenAI API at }")
done
for gateway in "${GATEWAYS[@]}"; do
    for _ in $(seq 1 100); do curl -s "${gateway%/v1}/ready" | grep -q '"replicas":3' && curl -s "${gateway%/v1}/ready" | grep -q '"healthy":4' && break; sleep 0.1; done
done
echo "3 replicas (${GATEWAYS[*]}), 4 engines in etcd at $ETCD"
python3 - "${GATEWAYS[@]}" <<'PY'
import json, sys, urllib.request, random
from concurrent.futures import ThreadPoolExecutor
gateways = sys.argv[1:]
def chat(gateway, session, tokens):
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hello " + session}], "max_tokens": tokens}).encode()
    request = urllib.request.Request(gateway + "/chat/completions", body, {"content-type": "application/json", "x-session-id": session})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.headers.get("x-sagellm-instance")
# One request at a time: each session through each replica.
sessions = ["user-%d" % n for n in range(200)]
agreed = sum(1 for s in sessions if len({chat(g, s, 2) for g in gateways}) == 1)
print("one at a time: %d of %d sessions on the same engine through all 3 replicas (%.1f%%)" % (agreed, len(sessions), 100.0 * agreed / len(sessions)))
# Under load: 3 clients, one per replica, each 16 requests at once over the same 300 sessions in its own order.
sessions = ["load-%d" % n for n in range(300)]
def run(gateway, seed):
    order = sessions[:]
    random.Random(seed).shuffle(order)
    with ThreadPoolExecutor(16) as pool:
        return dict(zip(order, pool.map(lambda s: chat(gateway, s, 64), order)))
with ThreadPoolExecutor(3) as pool:
    results = list(pool.map(run, gateways, [1, 2, 3]))
single = results[0]
same = sum(1 for r in results[1:] for s in sessions if r[s] == single[s])
print("under load (3 x 16 in flight, 64 tokens): %d of %d requests of replicas 2 and 3 on replica 1's engine (%.1f%%)" % (same, 2 * len(sessions), 100.0 * same / (2 * len(sessions))))
PY
# A replica killed: the others count it out when its lease (5 s) expires.
kill -KILL "${SERVE_PIDS[2]}"
killed=$(date +%s%N)
ready="${GATEWAYS[0]%/v1}/ready"
until curl -s "$ready" | grep -q '"replicas":2'; do sleep 0.05; done
echo "replica g3 killed (SIGKILL): g1 counts 2 replicas after $(( ($(date +%s%N) - killed) / 1000000 )) ms (lease TTL 5000 ms)"

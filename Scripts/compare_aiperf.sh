#!/usr/bin/env bash
# The same run measured by sagellm-benchmark and by NVIDIA AIPerf against one simulated engine
# with the same prompts (Docs/BENCHMARK.md, "Agreement with aiperf"). Optional: needs
# `pip install aiperf` (and its `tokenizers`/`transformers`); the build and tests do not.
#
# usage: Scripts/compare_aiperf.sh [BIN_DIR] [BASE_URL MODEL]   (default .build/release, and a
#        simulated engine started here; give BASE_URL, e.g. http://127.0.0.1:18080/v1, and the
#        served MODEL to measure a server already running, such as llama-server)
set -euo pipefail
cd "$(dirname "$0")/.."
. Scripts/wait_for.sh
BIN="${1:-.build/release}"
SERVER_URL="${2:-}"
MODEL="${3:-sagellm-sim}"
SIM_PID=""
command -v aiperf >/dev/null || { echo "aiperf is not installed (pip install aiperf)"; exit 2; }
WORK="$(mktemp -d)"
trap '[ -z "$SIM_PID" ] || kill "$SIM_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

python3 - "$WORK" <<'PY'
import json, random, sys
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast
work = sys.argv[1]
words = "the cat sat on mat and dog ran to park red sun set over hill with blue sky far away old tree grew tall by lake fish swam in deep cold wind".split()
random.seed(7)
prompts = [" ".join(random.choice(words) for _ in range(200)) for _ in range(40)]
with open(f"{work}/prompts.jsonl", "w") as aiperf, open(f"{work}/prompts-bench.jsonl", "w") as ours:
    for prompt in prompts:
        aiperf.write(json.dumps({"text": prompt}) + "\n")
        ours.write(json.dumps({"prompt": prompt}) + "\n")
# A word-level tokenizer, made here: this machine cannot download one.
vocab = {"[UNK]": 0}
for word in words: vocab.setdefault(word, len(vocab))
tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]").save_pretrained(f"{work}/wordtok")
PY

if [ -n "$SERVER_URL" ]; then
    URL="$SERVER_URL"
else
    "$BIN/sagellm" simulate --port 0 --model sagellm-sim --ttft-ms 20 --tbt-ms 10 --jitter 0 --prefill-tps 0 --max-batch 64 2>"$WORK/sim.log" &
    SIM_PID=$!
    URL="$(wait_for "$WORK/sim.log" 'http://127.0.0.1:[0-9]*/v1')"
    [ -n "$URL" ] || { echo "the simulator did not start"; cat "$WORK/sim.log"; exit 1; }
fi

"$BIN/sagellm-benchmark" run --backend openai --base-url "$URL" --dataset "$WORK/prompts-bench.jsonl" --output-len 32 \
    --concurrency 4 --num-prompts 40 --contract none --output "$WORK/ours" >/dev/null
aiperf profile --model "$MODEL" --url "${URL%/v1}" --endpoint-type chat --streaming --concurrency 4 --request-count 40 \
    --input-file "$WORK/prompts.jsonl" --custom-dataset-type single_turn --tokenizer "$WORK/wordtok" --use-server-token-count \
    --extra-inputs max_tokens:32 --extra-inputs ignore_eos:true --artifact-dir "$WORK/aiperf" >"$WORK/aiperf.log" 2>&1

python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
ours = json.load(open(f"{work}/ours/custom_metrics.json"))
theirs = json.load(open(f"{work}/aiperf/profile_export_aiperf.json"))
def a(key, stat): return (theirs.get(key) or {}).get(stat)
rows = [
    ("TTFT mean ms", ours["mean_ttft_ms"], a("time_to_first_token", "avg")),
    ("TTFT p50 ms", ours["median_ttft_ms"], a("time_to_first_token", "p50")),
    ("ITL p50 ms (vLLM's gaps / aiperf's)", ours["median_itl_ms"], a("inter_token_latency", "p50")),
    ("TPOT mean ms / aiperf ITL mean", ours["mean_tpot_ms"], a("inter_token_latency", "avg")),
    ("E2EL mean ms", ours["mean_e2el_ms"], a("request_latency", "avg")),
    ("request throughput req/s", ours["request_throughput"], a("request_throughput", "avg")),
    ("output throughput tok/s", ours["output_throughput"], a("output_token_throughput", "avg")),
]
print(f"{'figure':42} {'ours':>10} {'aiperf':>10} {'diff':>8}")
for name, mine, other in rows:
    diff = f"{(mine - other) / other * 100:+.1f}%" if mine is not None and other else "n/a"
    print(f"{name:42} {mine:>10.2f} {other if other is not None else float('nan'):>10.2f} {diff:>8}")
PY

#!/usr/bin/env bash
# Looks at the HTML reports as a person would: one run on a simulated engine that fails 5% of
# its requests, a sweep on an engine that saturates at 8 requests and one on an engine with
# room for 16, and the comparison of the two sweeps, each rendered by headless Chromium to a PNG. The PNGs go to OUT (default: a new
# directory under /tmp), never into the repository. Optional: needs Debian's `chromium`.
#
# usage: Scripts/report_screenshots.sh [BIN_DIR] [OUT]   (default .build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
. Scripts/wait_for.sh
BIN="${1:-.build/release}"
OUT="${2:-$(mktemp -d /tmp/sagellm-report-shots.XXXX)}"
command -v chromium >/dev/null || { echo "chromium is not installed (apt-get install chromium)"; exit 2; }
mkdir -p "$OUT"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT

simulator() {  # simulator NAME MAX_BATCH [FLAGS...]: starts one, sets URL
    local name="$1" batch="$2"
    shift 2
    "$BIN/sagellm" simulate --port 0 --model sim --ttft-ms 20 --tbt-ms 10 --jitter 0.2 --max-batch "$batch" "$@" 2>"$OUT/$name-sim.log" &
    PIDS+=($!)
    URL="$(wait_for "$OUT/$name-sim.log" 'http://127.0.0.1:[0-9]*/v1')"
    [ -n "$URL" ] || { echo "the simulator did not start"; cat "$OUT/$name-sim.log"; exit 1; }
}
# A failed contract or failed requests are part of what the pictures show: the exit status is ignored.
simulator batch8 8
"$BIN/sagellm-benchmark" run --backend openai --base-url "$URL" --input-len 64 --output-len 24 --num-prompts 48 \
    --sweep concurrency=1,2,4,8,16,32 --contract year1 --output "$OUT/batch8" >/dev/null 2>&1 || true
simulator batch16 16
"$BIN/sagellm-benchmark" run --backend openai --base-url "$URL" --input-len 64 --output-len 24 --num-prompts 48 \
    --sweep concurrency=1,2,4,8,16,32 --contract year1 --output "$OUT/batch16" >/dev/null 2>&1 || true
simulator faulty 8 --fail-rate 0.05
"$BIN/sagellm-benchmark" run --backend openai --base-url "$URL" --input-len 64 --output-len 32 --num-prompts 200 \
    --concurrency 12 --contract year1 --output "$OUT/single" >/dev/null 2>&1 || true
"$BIN/sagellm-benchmark" compare "$OUT/batch8" "$OUT/batch16" --format html >"$OUT/compare.html"

shoot() {  # shoot HTML PNG
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,4200 \
        --screenshot="$2" "file://$(realpath "$1")" >/dev/null 2>&1
}
shoot "$OUT/single/REPORT.html" "$OUT/report.png"
shoot "$OUT/batch8/REPORT.html" "$OUT/sweep.png"
shoot "$OUT/compare.html" "$OUT/compare.png"
echo "screenshots: $OUT/report.png $OUT/sweep.png $OUT/compare.png"

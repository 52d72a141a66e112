#!/usr/bin/env bash
# The seeds' one-click benchmark: the year-1 workloads (short, long, stress) on the mock backend,
# then the results as a table (the run itself writes REPORT.md and REPORT.html). Usage: Scripts/run_benchmark.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-./benchmark_results}"
swift build --product sagellm-benchmark
BIN="$(swift build --show-bin-path)/sagellm-benchmark"
"$BIN" run --workload year1 --backend mock --output "$OUT"
echo
"$BIN" report --input "$OUT" --format table
echo
echo "the run wrote $OUT/REPORT.md and $OUT/REPORT.html"

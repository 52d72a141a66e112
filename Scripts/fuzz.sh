#!/usr/bin/env bash
# Fuzzes the streaming decoders (SSE parser, chunk readers, error bodies) with libFuzzer for a
# bounded time, starting from the corpus in Fuzz/Corpus/stream; new inputs that reach new code
# are added there, and a crash leaves its input in Fuzz/crashes/.
# Usage: Scripts/fuzz.sh [SECONDS]   (default 60). Needs only the Swift toolchain (it ships libFuzzer).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN="${1:-60}"
SCRATCH=.build-fuzz
swift build --scratch-path "$SCRATCH" --product SageFuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
mkdir -p Fuzz/crashes
"$SCRATCH/debug/SageFuzz" Fuzz/Corpus/stream -max_total_time="$SECONDS_TO_RUN" -max_len=65536 \
    -rss_limit_mb=4096 -artifact_prefix=Fuzz/crashes/ -print_final_stats=1

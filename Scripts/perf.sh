#!/usr/bin/env bash
# Runs the client benchmarks (Sources/SagePerformance) in release mode against the in-process
# simulated engine on loopback. Usage: Scripts/perf.sh [--seconds S] [--only parser|chat|stream|detect|resilience|bench|control-plane|cluster-sim|gateway]
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product sagellm-perf
swift build -c release --product sagellm  # the separate-process simulator of `--only bench`, the gateway of `--only gateway`
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -srm); $(date -u +%Y-%m-%d)"
.build/release/sagellm-perf "$@"

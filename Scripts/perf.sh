#!/usr/bin/env bash
# Runs the client benchmarks (Sources/SagePerformance) in release mode against the in-process
# simulated engine on loopback. Usage: Scripts/perf.sh [--seconds S] [--only parser|chat|stream|detect|resilience|bench|control-plane|cluster-sim|gateway|gateway-idle-streams|engines|sim-to-real]
# Where libcurl's headers are installed (libcurl4-openssl-dev), it builds with the trait Curl,
# so that `--only engines` puts libcurl beside the other two engines.
set -euo pipefail
cd "$(dirname "$0")/.."
TRAITS=()
if pkg-config --exists libcurl 2>/dev/null; then TRAITS=(--traits Curl); fi
swift build -c release "${TRAITS[@]}" --product sagellm-perf
swift build -c release "${TRAITS[@]}" --product sagellm  # the separate-process simulator of `--only bench` and `--only engines`, the gateway of `--only gateway`
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -srm); $(date -u +%Y-%m-%d)"
.build/release/sagellm-perf "$@"

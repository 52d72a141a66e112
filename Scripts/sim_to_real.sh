#!/usr/bin/env bash
# The sim-to-real check of the cluster simulation (Docs/CONTROL_PLANE.md, "Sim-to-real check"):
# one scenario through the ClusterSimulation and through a real ControlPlaneClient over 16
# stepped simulated engines on 127.0.0.1, for fifo, priority and slo_aware with PD off and on,
# their p50/p99 TTFT and TPOT, SLO compliance and goodput side by side. About 10 minutes per
# load; run nothing else meanwhile (the real side keeps real time on two cores).
# Usage: Scripts/sim_to_real.sh [RATE [DURATION]]   (defaults: 24 req/s for 90 s; 40 for 60 overloads it)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product sagellm-perf
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -srm); $(date -u +%Y-%m-%d)"
SIM_TO_REAL_RATE="${1:-24}" SIM_TO_REAL_DURATION="${2:-90}" .build/release/sagellm-perf --only sim-to-real

#!/usr/bin/env bash
# Side-by-side benchmark of coord and the reference etcd (DESIGN.md §4-5): same `coord bench`
# commands against a fresh etcd and a fresh coord, restart time with 100k keys, watch fan-out
# (10,000 watchers) and lease keepalives (10,000 leases) on a fresh server; results as a
# markdown table on stdout and in docs/BENCHMARKS.md. Bounded (< 6 min), cleans up after
# itself. Details and flags: scripts/bench-compare.js.
#   npm run build && scripts/bench-compare.sh [--only etcd|coord] [--no-write] [--check-perf]
set -euo pipefail
cd "$(dirname "$0")/.."
exec node scripts/bench-compare.js "$@"

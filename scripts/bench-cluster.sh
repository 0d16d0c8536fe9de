#!/usr/bin/env bash
# 3-member clusters side by side (DESIGN.md §5): etcd then coord, each alone: put latency and throughput against the leader and all endpoints, reads on a follower, leader failover time; markdown table on stdout and in docs/BENCHMARKS.md. Bounded (< 8 min), cleans up after itself. Details and flags: scripts/bench-cluster.js.
#   npm run build && scripts/bench-cluster.sh [--only etcd|coord] [--no-write] [--no-failover] [--rounds N]
set -euo pipefail
cd "$(dirname "$0")/.."
exec node scripts/bench-cluster.js "$@"

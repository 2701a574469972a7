#!/usr/bin/env bash
# Churn without leaks: tests/churn.rs with many cycles (default 2,000) on a release build. Each
# cycle runs a container with a health check on a user network, execs in it, connects it to a
# second network, reads its logs, stops and removes it (and every fifth a `run --rm`). Prints the
# first/last/max and the least-squares slope per 1,000 cycles of the daemon's RSS, open files and
# threads, the zygote's RSS and the monitors' RSS; fails if anything of a removed container
# (mount, cgroup, veth, netns pin, monitor, file) remains or the daemon's open files grow.
# Then the same cycle side by side with Docker Engine 20.10 through the docker CLI
# (benches/churn_vs_dockerd.sh, SIDE_CYCLES cycles, default 500).
#
#   benches/churn.sh [CYCLES]      (root; what scripts/setup.sh --test installs)
set -euo pipefail
cycles=${1:-2000}
repo=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "churn.sh: run as root" >&2; exit 1; }
cd "$repo"
cargo build --release --quiet -p berth
CHURN_CYCLES=$cycles cargo nextest run --release --no-capture -p berth-tests --test churn 2>&1 |
    grep -E '^churn:|PASS|FAIL|panicked|left behind|grew'
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BERTH_BIN=$target_dir/release/berth "$repo/benches/churn_vs_dockerd.sh" "${SIDE_CYCLES:-500}"

#!/usr/bin/env bash
# TCP throughput benchmark of berth's networks, in one run, alternating, N rounds, medians:
#
#   loopback    host loopback (127.0.0.1 to 127.0.0.1 in the daemon's namespace): the ceiling
#   bridge      container to container on one user bridge network (veth, bridge, veth)
#   published   host 127.0.0.1 to a container's published port (berth's userland proxy,
#               splice(2), then veth and bridge)
#
# Each stream sends MIB MiB of zeros with benches/tcpblast.c (built static here: busybox nc moves
# ~170 MB/s on this machine's loopback and would measure itself), which reports MB/s from the
# connect to the server's close. The daemon runs in a network namespace of its own (only lo, no
# route out), as the tests do, so nothing touches the host's network.
#
#   benches/network.sh [ROUNDS] [MIB]      (default 7 rounds of 2000 MiB; root; gcc with a static libc)
#
# NO_BUILD=1 uses the release binary already built. Work files live in $BENCH_DIR (default
# /var/tmp/berth-net-bench), deleted at the end.
set -euo pipefail

rounds=${1:-7}
mib=${2:-2000}
bench_dir=${BENCH_DIR:-/var/tmp/berth-net-bench}
repo=$(cd "$(dirname "$0")/.." && pwd)

[ "$(id -u)" = 0 ] || { echo "network.sh: run as root (namespaces, bridges)" >&2; exit 1; }
command -v gcc >/dev/null || { echo "network.sh: gcc is not installed" >&2; exit 1; }
command -v python3 >/dev/null || { echo "network.sh: python3 is not installed" >&2; exit 1; }

target_dir=$(cd "$repo" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
if [ -z "${NO_BUILD:-}" ]; then
    echo "building berth (release)..." >&2
    (cd "$repo" && cargo build --release --quiet -p berth)
fi
berth=$target_dir/release/berth

work=$bench_dir/net-$$
mkdir -p "$work"
run_dir=/run/berth-netbench-$$
daemon_pid=""
export BERTH_HOST=unix://$run_dir/berth.sock
cleanup() {
    set +e
    echo "cleaning up..." >&2
    if [ -n "$daemon_pid" ]; then
        "$berth" ps -aq --no-trunc 2>/dev/null | xargs -r "$berth" rm -f >/dev/null 2>&1
        "$berth" network rm benchnet >/dev/null 2>&1
        kill "$daemon_pid" 2>/dev/null
        wait "$daemon_pid" 2>/dev/null
    fi
    # Whatever the daemon left mounted (layers, namespace pins), deepest first.
    for dir in "$work" "$run_dir"; do
        grep -o " $dir[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
    done
    rm -rf "$work" "$run_dir"
}
trap cleanup EXIT

gcc -O2 -static -o "$work/tcpblast" "$repo/benches/tcpblast.c"
"$repo/scripts/busybox-rootfs.sh" "$work/busybox.tar" >/dev/null

# The daemon in a new network namespace: tcpblast sets its lo up, then berth serve execs.
unshare --net -- sh -c "'$work/tcpblast' lo-up && exec '$berth' serve --root '$work/root' --run-dir '$run_dir' \
    --listen 127.0.0.1:7381" >"$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do
    [ -S "$run_dir/berth.sock" ] && "$berth" version >/dev/null 2>&1 && break
    sleep 0.1
done
"$berth" import -c 'CMD ["sh"]' "$work/busybox.tar" busybox:latest >/dev/null
"$berth" network create benchnet >/dev/null
in_netns() { nsenter --net=/proc/$daemon_pid/ns/net -- "$@"; }
tool=(-v "$work/tcpblast:/tcpblast:ro")

rate() { sed -n 's/^MB\/s //p' | tail -1; }

loopback() {
    in_netns "$work/tcpblast" server 5001 &
    local server=$!
    in_netns "$work/tcpblast" client 127.0.0.1 5001 "$mib" | rate
    wait "$server"
}

bridge() {
    local id ip
    id=$("$berth" run -d --network benchnet "${tool[@]}" busybox /tcpblast server 5000)
    ip=$("$berth" inspect -f '{{json .network_settings.networks.benchnet.ipv4_address}}' "$id" | tr -d '"' | cut -d/ -f1)
    "$berth" run --rm --network benchnet "${tool[@]}" busybox /tcpblast client "$ip" 5000 "$mib" | rate
    "$berth" rm -f "$id" >/dev/null
}

published() {
    local id port
    id=$("$berth" run -d --network benchnet -p 127.0.0.1::5000 "${tool[@]}" busybox /tcpblast server 5000)
    port=$("$berth" port "$id" 5000 | cut -d: -f2)
    in_netns "$work/tcpblast" client 127.0.0.1 "$port" "$mib" | rate
    "$berth" rm -f "$id" >/dev/null
}

results=$work/results
: >"$results"
echo "warm-up..." >&2
loopback >/dev/null
bridge >/dev/null
published >/dev/null
for round in $(seq "$rounds"); do
    for case in loopback bridge published; do
        r=$($case)
        echo "$case $r" >>"$results"
        echo "round $round: $case $r MB/s" >&2
    done
done

python3 - "$results" "$mib" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if len(l.split()) == 2]
by = {}
for case, rate in rows:
    by.setdefault(case, []).append(float(rate))
ceiling = statistics.median(by["loopback"])
print(f"TCP throughput, {sys.argv[2]} MiB per stream, {len(by['loopback'])} rounds, medians (MB/s)")
for case in ("loopback", "bridge", "published"):
    m = statistics.median(by[case])
    print(f"  {case:10} {m:9.1f}   {m / ceiling:5.2f} of loopback   (min {min(by[case]):.1f}, max {max(by[case]):.1f})")
EOF

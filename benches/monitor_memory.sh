#!/usr/bin/env bash
# The memory a running container costs in berth's monitor, for one or more berth binaries side by
# side (e.g. a PIE build and a non-PIE build of the same commit): K containers running `sleep`
# under each binary's own daemon, then from /proc/PID/smaps_rollup
#
#   monitor      RSS and PSS medians of the K monitor processes, and their PSS summed
#   zygote       PSS of the monitor zygote the K monitors were forked from (once, not per container)
#   per container  (sum of the monitors' PSS + the zygote's PSS) / K
#   daemon       PSS of `berth serve`
#   CLI call     minor page faults of one `berth version` (an exec: the loader's relocations)
#
#   benches/monitor_memory.sh [K] [BERTH_BINARY...]     (default 10 containers; root; busybox-static)
#
# Without a binary, the release build of this checkout is built and measured. Each binary runs
# its own daemon on its own root and run directory (its own zygote), one binary after the other.
# Work files live in $BENCH_DIR (default /var/tmp/berth-monitor-memory), deleted at the end.
set -euo pipefail

k=${1:-10}
shift || true
bench_dir=${BENCH_DIR:-/var/tmp/berth-monitor-memory}
repo=$(cd "$(dirname "$0")/.." && pwd)

[ "$(id -u)" = 0 ] || { echo "monitor_memory.sh: run as root (namespaces, cgroups, mounts)" >&2; exit 1; }
binaries=("$@")
if [ ${#binaries[@]} = 0 ]; then
    target_dir=$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    echo "building berth (release)..." >&2
    (cd "$repo" && cargo build --release --quiet -p berth)
    binaries=("$target_dir/release/berth")
fi

work=$bench_dir/run-$$
mkdir -p "$work"
run_dir=""
daemon_pid=""
berth=""
stop_daemon() {
    set +e
    if [ -n "$daemon_pid" ]; then
        BERTH_HOST=unix://$run_dir/berth.sock "$berth" ps -aq --no-trunc 2>/dev/null |
            xargs -r env BERTH_HOST=unix://$run_dir/berth.sock "$berth" rm -f >/dev/null 2>&1
        kill "$daemon_pid" 2>/dev/null
        wait "$daemon_pid" 2>/dev/null
        daemon_pid=""
    fi
    if [ -n "$run_dir" ]; then
        # The zygote exits when its socket is gone; do not wait for its idle timeout.
        for pid in $(pgrep -x berth-zygote); do
            tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$run_dir/" && kill "$pid" 2>/dev/null
        done
        grep -o " $work[^ ]*\| $run_dir[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
        rm -rf "$run_dir"
    fi
    set -e
}
cleanup() {
    stop_daemon
    rm -rf "$work"
}
trap cleanup EXIT

"$repo/scripts/busybox-rootfs.sh" "$work/busybox.tar" >/dev/null

pss() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup"; }
rss() { awk '/^Rss:/ { print $2 }' "/proc/$1/smaps_rollup"; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

printf '%-44s %-5s %9s %9s %9s %9s %12s %9s %9s\n' binary type "mon RSS" "mon PSS" "mon sum" "zygote" "per contain." daemon "CLI flt" \
    | tee "$work/results"
n=0
for berth in "${binaries[@]}"; do
    n=$((n + 1))
    type=$(readelf -h "$berth" | awk '/Type:/ { print $2 }')
    run_dir=/run/berth-mem-$$-$n
    root=$work/root-$n
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$berth" serve --root "$root" --run-dir "$run_dir" --listen "127.0.0.1:$port" >"$work/daemon-$n.log" 2>&1 &
    daemon_pid=$!
    export BERTH_HOST=unix://$run_dir/berth.sock
    for _ in $(seq 1 100); do "$berth" version >/dev/null 2>&1 && break; sleep 0.1; done
    "$berth" import -c 'CMD ["sh"]' "$work/busybox.tar" busybox:latest >/dev/null
    for i in $(seq 1 "$k"); do "$berth" run -d --network none --name "mem-$i" busybox sleep 100000 >/dev/null; done
    # The monitors drop their start-up pages 200 ms after a start.
    sleep 2
    monitors=()
    for i in $(seq 1 "$k"); do
        cpid=$("$berth" inspect -f '{{.State.Pid}}' "mem-$i")
        # The monitor is the container process's parent (or, with runc/crun, its subreaper).
        monitors+=("$(awk '{ print $4 }' "/proc/$cpid/stat")")
    done
    mon_rss=$(for p in "${monitors[@]}"; do rss "$p"; done | median)
    mon_pss=$(for p in "${monitors[@]}"; do pss "$p"; done | median)
    mon_sum=$(for p in "${monitors[@]}"; do pss "$p"; done | awk '{ s += $1 } END { print s }')
    zygote=0
    for pid in $(pgrep -x berth-zygote); do
        if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$run_dir/"; then zygote=$(pss "$pid"); fi
    done
    daemon=$(pss "$daemon_pid")
    faults=$(for _ in 1 2 3 4 5; do
        /usr/bin/time -f '%R' "$berth" version 2>&1 >/dev/null | tail -1
    done | median)
    printf '%-44s %-5s %6s kB %6s kB %6s kB %6s kB %9s kB %6s kB %9s\n' "$berth" "$type" "$mon_rss" "$mon_pss" \
        "$mon_sum" "$zygote" "$(((mon_sum + zygote) / k))" "$daemon" "$faults" | tee -a "$work/results"
    stop_daemon
done
echo
echo "$k containers per binary; mon = the containers' monitors (RSS/PSS: medians; sum: all K);"
echo "per container = (monitors' PSS sum + zygote PSS) / K; CLI flt = minor faults of \`berth version\` (median of 5)"

#!/usr/bin/env bash
# Container start benchmark, side by side in one run, alternating, N rounds, medians:
#
#   berth-e2e   `berth run --rm busybox true`: CLI → daemon → monitor → built-in runtime, and back,
#               on the default network (a bridge: veth pair, address, route, as Docker's default)
#   berth-noseccomp  `berth run --rm --security-opt seccomp=unconfined busybox true`: the cost of
#               the default seccomp filter (compiled by the daemon, loaded by the runtime) is
#               the ratio berth-e2e/berth-noseccomp
#   berth-none  the same with `--network none`: the container's network as in the bundle runs below
#               (a namespace with only loopback) and as podman's run here
#   berth-rt    the built-in runtime alone on a prepared bundle (engine/examples/run_bundle.rs,
#               when the runtime's example exists)
#   runc        `runc run` on the same bundle
#   crun        `crun run` on the same bundle (inside `unshare -m` with the hybrid cgroup2 mount
#               unmounted: crun 1.8 refuses hybrid cgroups, see shared/setup-notes/PEERS.md)
#   podman      `podman run --rm` of the same rootfs (imported), runc runtime, no network
#
# then the memory of the per-container supervisor: berth's monitor next to podman's conmon,
# RSS and PSS (from /proc/PID/smaps_rollup) with K containers of each running `sleep` at the same
# time: per-process medians, and the PSS of all K together divided by K.
#
#   benches/run.sh [ROUNDS] [K]        (default 20 rounds, 10 containers; root; python3)
#
# `scripts/setup.sh --bench` installs crun and podman; a peer that is missing is skipped.
# Work files live in $BENCH_DIR (default /var/tmp/berth-run-bench), deleted at the end.
set -euo pipefail

rounds=${1:-20}
k=${2:-10}
bench_dir=${BENCH_DIR:-/var/tmp/berth-run-bench}
repo=$(cd "$(dirname "$0")/.." && pwd)

[ "$(id -u)" = 0 ] || { echo "run.sh: run as root (namespaces, cgroups, mounts)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "run.sh: python3 is not installed" >&2; exit 1; }

# NO_BUILD=1 uses the release binaries already built (cargo build --release -p berth, and
# -p berth-engine --example run_bundle).
# BERTH_BIN=PATH runs another berth binary (with NO_BUILD=1: e.g. a copy of the previous build, to
# compare before and after a change on the same machine).
target_dir=$(cd "$repo" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
if [ -z "${NO_BUILD:-}" ]; then
    echo "building berth (release)..." >&2
    (cd "$repo" && cargo build --release --quiet -p berth)
fi
berth=${BERTH_BIN:-$target_dir/release/berth}
run_bundle=""
if [ -f "$repo/engine/examples/run_bundle.rs" ]; then
    [ -n "${NO_BUILD:-}" ] || (cd "$repo" && cargo build --release --quiet -p berth-engine --example run_bundle)
    run_bundle=$target_dir/release/examples/run_bundle
    # NO_BUILD with no example built (e.g. BERTH_BIN of another build): the others still run.
    [ -x "$run_bundle" ] || run_bundle=""
fi

work=$bench_dir/run-$$
mkdir -p "$work"
# Short: the unix socket path and podman's runroot must stay under ~100 / 50 characters.
run_dir=/run/berth-bench-$$
podman_run=/run/pm-bench-$$
daemon_pid=""
cleanup() {
    set +e
    echo "cleaning up..." >&2
    if [ -n "$daemon_pid" ]; then
        BERTH_HOST=unix://$run_dir/berth.sock "$berth" ps -aq --no-trunc 2>/dev/null |
            xargs -r env BERTH_HOST=unix://$run_dir/berth.sock "$berth" rm -f >/dev/null 2>&1
        kill "$daemon_pid" 2>/dev/null
        wait "$daemon_pid" 2>/dev/null
    fi
    if command -v podman >/dev/null; then
        podman --root "$work/podman" --runroot "$podman_run" rm -af -t 0 >/dev/null 2>&1
        podman --root "$work/podman" --runroot "$podman_run" system reset -f >/dev/null 2>&1
    fi
    grep -o " $work[^ ]*\| $run_dir[^ ]*\| $podman_run[^ ]*" /proc/self/mounts | sort -r |
        xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work" "$run_dir" "$podman_run"
}
trap cleanup EXIT

# ---- the image and the bundle ------------------------------------------------------------------
"$repo/scripts/busybox-rootfs.sh" "$work/busybox.tar" >/dev/null
bundle=$work/bundle
mkdir -p "$bundle/rootfs"
tar -xf "$work/busybox.tar" -C "$bundle/rootfs"
(cd "$bundle" && runc spec)
# `true`, no terminal, rlimits within this machine's hard limits (no CAP_SYS_RESOURCE here).
python3 - "$bundle/config.json" <<'EOF'
import json, resource, sys
path = sys.argv[1]
spec = json.load(open(path))
spec["process"]["args"] = ["true"]
spec["process"]["terminal"] = False
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
spec["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": hard, "soft": min(1024, hard)}]
# Masked paths this kernel lacks (/proc/keys without CONFIG_KEYS, ...) are dropped: runc and
# crun skip them anyway, and the bundle stays the same for every runtime.
import os
spec["linux"]["maskedPaths"] = [p for p in spec["linux"].get("maskedPaths", []) if os.path.exists(p)]
json.dump(spec, open(path, "w"), indent=2)
EOF

# ---- the daemon --------------------------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$berth" serve --root "$work/root" --run-dir "$run_dir" --listen "127.0.0.1:$port" >"$work/daemon.log" 2>&1 &
daemon_pid=$!
export BERTH_HOST=unix://$run_dir/berth.sock
for _ in $(seq 1 100); do "$berth" version >/dev/null 2>&1 && break; sleep 0.1; done
"$berth" import -c 'CMD ["sh"]' "$work/busybox.tar" busybox:latest >/dev/null

# ---- the peers ---------------------------------------------------------------------------------
tools=(berth-e2e berth-noseccomp berth-none)
[ -n "$run_bundle" ] && tools+=(berth-rt)
tools+=(runc)
command -v crun >/dev/null && tools+=(crun)
podman_args=()
if command -v podman >/dev/null; then
    podman_args=(--root "$work/podman" --runroot "$podman_run" --cgroup-manager cgroupfs --events-backend none)
    podman "${podman_args[@]}" import "$work/busybox.tar" localhost/busybox-bench >/dev/null
    tools+=(podman)
fi
[ -z "$run_bundle" ] && echo "note: engine/examples/run_bundle.rs is missing: the built-in runtime alone is not measured" >&2

# ---- start → exit, alternating -----------------------------------------------------------------
BERTH=$berth BUNDLE=$bundle WORK=$work RUN_BUNDLE=$run_bundle python3 - "$rounds" "${tools[@]}" -- "${podman_args[@]}" <<'EOF' | tee "$work/results"
import os, statistics, subprocess, sys, time

args = sys.argv[1:]
rounds = int(args[0])
sep = args.index("--")
tools, podman_args = args[1:sep], args[sep + 1:]
berth, bundle, work, run_bundle = (os.environ[k] for k in ("BERTH", "BUNDLE", "WORK", "RUN_BUNDLE"))
podman_flags = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768", "--runtime", "runc",
                "--network", "none"]

def command(tool, i):
    name = f"bench-{os.getpid()}-{i}"
    if tool == "berth-e2e":
        return [berth, "run", "--rm", "busybox", "true"]
    if tool == "berth-noseccomp":
        return [berth, "run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "true"]
    if tool == "berth-none":
        return [berth, "run", "--rm", "--network", "none", "busybox", "true"]
    if tool == "berth-rt":
        return [run_bundle, bundle, name]
    if tool == "runc":
        return ["runc", "--root", f"{work}/runc-state", "run", "--bundle", bundle, name]
    if tool == "crun":
        return ["unshare", "-m", "--", "sh", "-c",
                f"umount /sys/fs/cgroup/unified && exec crun --root {work}/crun-state run --bundle {bundle} {name}"]
    if tool == "podman":
        return ["podman", *podman_args, "run", "--rm", *podman_flags, "localhost/busybox-bench", "true"]
    raise ValueError(tool)

def timed(cmd):
    before = os.times()
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    after = os.times()
    if done.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)

def daemon_cpu():
    """utime+stime of the daemon (berth's work happens there, not in the CLI), seconds."""
    pid = subprocess.run(["pgrep", "-f", f"serve --root {work}/root"], capture_output=True, text=True).stdout.split()[0]
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

# One warm-up run each (page cache, first cgroup creation), not counted. A tool that fails
# here is reported and left out, so that the others are still measured.
for tool in list(tools):
    done = subprocess.run(command(tool, "warm"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if done.returncode != 0:
        print(f"SKIPPED {tool}: it failed ({done.returncode}): {done.stderr.decode(errors='replace').strip()}")
        tools.remove(tool)
walls = {t: [] for t in tools}
cpus = {t: [] for t in tools}
daemon_total = 0.0
for r in range(rounds):
    order = tools if r % 2 == 0 else list(reversed(tools))
    for tool in order:
        d0 = daemon_cpu() if tool == "berth-none" else 0
        wall, cpu = timed(command(tool, r))
        if tool == "berth-none":
            daemon_total += daemon_cpu() - d0
        walls[tool].append(wall)
        cpus[tool].append(cpu)
    print(f"round {r + 1}: " + " ".join(f"{t}={walls[t][-1] * 1000:.1f}ms" for t in tools), file=sys.stderr)

med = {t: statistics.median(walls[t]) * 1000 for t in tools}
print(f"\nstart → exit of `true`, {rounds} rounds, alternating; medians")
print(f"{'tool':15} {'wall ms':>9} {'min ms':>8} {'cpu ms (children)':>18}")
for t in tools:
    print(f"{t:15} {med[t]:9.1f} {min(walls[t]) * 1000:8.1f} {statistics.median(cpus[t]) * 1000:18.1f}")
print(f"berth daemon cpu per `berth run --rm --network none`: {daemon_total / rounds * 1000:.1f} ms (not in the children column)")
print("ratios of medians (wall):")
for a, b in [("berth-e2e", "berth-noseccomp"), ("berth-rt", "crun"), ("berth-rt", "runc"), ("berth-none", "runc"), ("berth-none", "crun"),
             ("berth-none", "podman"), ("berth-e2e", "runc"), ("berth-e2e", "podman")]:
    if a in med and b in med:
        print(f"  {a}/{b}: {med[a] / med[b]:.2f}")
EOF

# ---- the runtimes alone, in one mount namespace -------------------------------------------------
# Above, crun pays for an `unshare` + `sh` wrapper on every run (crun 1.8 refuses hybrid cgroups).
# Here the built-in runtime, runc and crun run the same bundle directly, alternating, inside one
# private mount namespace where (on a hybrid host) the cgroup2 mount is detached for all three
# alike. Wall time, and CPU time (user+sys of the runtime and of the container, which it reaps).
bench_runtimes() {
    local rt_tools=(berth-rt runc)
    command -v crun >/dev/null && rt_tools+=(crun)
    echo >&2
    echo "the runtimes alone: ${rt_tools[*]}, $rounds rounds..." >&2
    BUNDLE=$bundle WORK=$work RUN_BUNDLE=$run_bundle unshare -m -- python3 - "$rounds" "${rt_tools[@]}" <<'EOF' | tee -a "$work/results"
import os, resource, statistics, subprocess, sys, time

rounds, tools = int(sys.argv[1]), sys.argv[2:]
bundle, work, run_bundle = (os.environ[k] for k in ("BUNDLE", "WORK", "RUN_BUNDLE"))
subprocess.run(["mount", "--make-rprivate", "/"], check=True)
hybrid = subprocess.run(["mountpoint", "-q", "/sys/fs/cgroup/unified"]).returncode == 0
if hybrid:
    subprocess.run(["umount", "/sys/fs/cgroup/unified"], check=True)

def command(tool, i):
    name = f"rt-{os.getpid()}-{i}"
    return {
        "berth-rt": [run_bundle, "--state", f"{work}/berth-rt-state", bundle, name],
        "runc": ["runc", "--root", f"{work}/runc-rt-state", "run", "--bundle", bundle, name],
        "crun": ["crun", "--root", f"{work}/crun-rt-state", "run", "--bundle", bundle, name],
    }[tool]

def timed(cmd):
    # getrusage, not os.times: microseconds rather than clock ticks.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

for tool in tools:
    timed(command(tool, "warm"))
walls = {t: [] for t in tools}
cpus = {t: [] for t in tools}
for r in range(rounds):
    for tool in (tools if r % 2 == 0 else list(reversed(tools))):
        wall, cpu = timed(command(tool, r))
        walls[tool].append(wall)
        cpus[tool].append(cpu)
med = {t: statistics.median(walls[t]) * 1000 for t in tools}
cpu_med = {t: statistics.median(cpus[t]) * 1000 for t in tools}
print(f"\nthe runtimes alone on one bundle (`true`), {rounds} rounds, alternating, one mount namespace"
      f"{' (cgroup2 detached: hybrid host)' if hybrid else ''}; medians")
print(f"{'runtime':10} {'wall ms':>9} {'min ms':>8} {'cpu ms':>8}")
for t in tools:
    print(f"{t:10} {med[t]:9.1f} {min(walls[t]) * 1000:8.1f} {cpu_med[t]:8.1f}")
for other in ("crun", "runc"):
    if other in med:
        print(f"  berth-rt/{other}: wall {med['berth-rt'] / med[other]:.2f}, "
              f"cpu {cpu_med['berth-rt'] / max(cpu_med[other], 1e-9):.2f}")
EOF
}
[ -n "$run_bundle" ] && bench_runtimes

# ---- supervisor memory -------------------------------------------------------------------------
pss_rss() { # PID → "rss_kb pss_kb"
    awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } END { print r, p }' "/proc/$1/smaps_rollup"
}
report_memory() { # NAME PID...
    local name=$1
    shift
    for pid in "$@"; do pss_rss "$pid"; done | python3 -c "
import statistics, sys
rows = [list(map(int, l.split())) for l in sys.stdin if l.strip()]
rss = statistics.median(r[0] for r in rows); pss = statistics.median(r[1] for r in rows)
total = sum(r[1] for r in rows)
print(f'{\"$name\":14} {len(rows):3} processes   RSS median {rss:6.0f} kB   PSS median {pss:6.0f} kB   '
      f'PSS sum/K {total / len(rows):6.0f} kB')
" | tee -a "$work/results"
}

echo >&2
echo "starting $k sleeping containers with each tool..." >&2
for i in $(seq 1 "$k"); do "$berth" run -d --network none --name "mem-$i" busybox sleep 100000 >/dev/null; done
if command -v podman >/dev/null; then
    for i in $(seq 1 "$k"); do
        podman "${podman_args[@]}" run -d --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 --runtime runc \
            --network none --name "mem-$i" localhost/busybox-bench sleep 100000 >/dev/null
    done
fi
# Both sets run at once; the monitors drop their start-up pages 200 ms after a start.
sleep 2
monitors=()
for i in $(seq 1 "$k"); do
    cpid=$("$berth" inspect -f '{{.State.Pid}}' "mem-$i")
    # The monitor is the container process's parent (or, with runc/crun, its subreaper).
    monitors+=("$(awk '{ print $4 }' "/proc/$cpid/stat")")
done
echo >>"$work/results"
echo "per-container supervisor memory, $k containers of each running at once (smaps_rollup):" | tee -a "$work/results"
report_memory "berth monitor" "${monitors[@]}"
# The monitors are forked from one zygote (engine/src/monitor/zygote.rs); it is not per
# container, but its memory is part of the price: shown once.
for pid in $(pgrep -x berth-zygote); do
    if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$run_dir/"; then
        report_memory "berth zygote" "$pid"
    fi
done
if command -v podman >/dev/null; then
    conmons=()
    for i in $(seq 1 "$k"); do
        cpid=$(podman "${podman_args[@]}" inspect -f '{{.State.Pid}}' "mem-$i")
        conmons+=("$(awk '{ print $4 }' "/proc/$cpid/stat")")
    done
    report_memory "podman conmon" "${conmons[@]}"
fi
echo
echo "results:"
cat "$work/results"

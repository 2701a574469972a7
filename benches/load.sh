#!/usr/bin/env bash
# berth under load, side by side with a private Docker Engine 20.10 in the same run, through the
# same client (the docker CLI against berth's Docker API face, and wrk for raw HTTP):
#
#   run -d      50 concurrent `docker run -d --network none busybox sleep 600`
#   run --rm    50 concurrent `docker run --rm --network none busybox true`
#   API         100 concurrent HTTP clients (wrk -c100) for DURATION seconds each on the container
#               list, one container's inspect and its logs, with the 50 containers running
#
# Each side reports wall time and failures (concurrent runs), requests/s, p50 and p99 and non-2xx
# answers (API); then the ratios dockerd/berth (above 1: berth is faster).
#
#   benches/load.sh [DURATION]     (default 10 s; root; docker.io's dockerd and docker CLI, python3;
#                                   installs Debian's wrk if missing)
#
# BERTH_BIN=PATH uses that berth binary instead of building a release one. Everything runs in a
# network namespace of its own; the daemons are stopped by PID and the work directory
# ($BENCH_DIR, default under /var/tmp) is removed at the end.
set -euo pipefail

duration=${1:-10}
repo=$(cd "$(dirname "$0")/.." && pwd)

[ "$(id -u)" = 0 ] || { echo "load.sh: run as root" >&2; exit 1; }
for tool in dockerd docker python3; do
    command -v "$tool" >/dev/null || { echo "load.sh: $tool is not installed" >&2; exit 1; }
done
if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian)..." >&2
    apt-get install -y -qq wrk >/dev/null
fi

# Into a network namespace of our own (the script runs again there).
if [ -z "${BERTH_BENCH_IN_NETNS:-}" ]; then
    exec env BERTH_BENCH_IN_NETNS=1 unshare --net -- "$0" "$@"
fi
ip link set lo up

berth=${BERTH_BIN:-}
if [ -z "$berth" ]; then
    echo "building berth (release)..." >&2
    (cd "$repo" && cargo build --release --quiet -p berth)
    target_dir=$(cd "$repo" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    berth=$target_dir/release/berth
fi

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/berth-bench-load.XXXXXX")
berth_pid=""
dockerd_pid=""
token="berth_$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
export DOCKER_CONFIG=$work/docker-config
export DOCKER_CLI_HINTS=false
unset DOCKER_API_VERSION DOCKER_CONTEXT
B=unix://$work/berth/run/docker.sock
D=unix://$work/dockerd/docker.sock

cleanup() {
    set +e
    echo "cleaning up..." >&2
    for host in "$B" "$D"; do
        DOCKER_HOST=$host docker ps -aq 2>/dev/null | xargs -r -n 100 env DOCKER_HOST="$host" docker rm -f >/dev/null 2>&1
    done
    for pid in $berth_pid $dockerd_pid; do kill "$pid" 2>/dev/null; done
    for pid in $berth_pid $dockerd_pid; do
        for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    done
    # A containerd or shim that outlived its dockerd names the work directory in its arguments.
    for pid in $(grep -l "$work" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
        [ "$pid" = $$ ] || kill -9 "$pid" 2>/dev/null
    done
    awk -v d="$work" '$5 ~ "^"d {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # HOST: until the daemon answers
    for _ in $(seq 300); do DOCKER_HOST=$1 docker version >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "load.sh: the daemon at $1 did not answer" >&2
    exit 1
}

berth_port=$(free_port)
berth_docker_port=$(free_port)
mkdir -p "$work/berth" "$work/dockerd/data" "$work/dockerd/exec" "$DOCKER_CONFIG"
BERTH_ADMIN_TOKEN=$token "$berth" serve --root "$work/berth/root" --run-dir "$work/berth/run" \
    --listen "127.0.0.1:$berth_port" --docker-listen "127.0.0.1:$berth_docker_port" --bridge none \
    >"$work/berth/daemon.log" 2>&1 &
berth_pid=$!
dockerd_port=$(free_port)
dockerd --data-root "$work/dockerd/data" --exec-root "$work/dockerd/exec" -H "$D" -H "tcp://127.0.0.1:$dockerd_port" \
    --pidfile "$work/dockerd/pid" --iptables=false --ip-masq=false --bridge=none >"$work/dockerd/daemon.log" 2>&1 &
dockerd_pid=$!
wait_for "$B"
wait_for "$D"
echo "== berth: $berth"
echo "== dockerd: $(dockerd --version)"
echo "== client: $(docker --version), wrk $(wrk -v 2>&1 | head -1 | cut -d' ' -f2)"
echo "== machine: $(nproc) CPUs, $(free -g | awk '/Mem:/ {print $2}') GB"

"$repo/scripts/busybox-rootfs.sh" "$work/busybox.tar"
for host in "$B" "$D"; do
    DOCKER_HOST=$host docker import -c 'CMD ["sh"]' "$work/busybox.tar" busybox:latest >/dev/null
done

B=$B D=$D TOKEN=$token DURATION=$duration \
    BERTH_URL=http://127.0.0.1:$berth_docker_port DOCKERD_URL=http://127.0.0.1:$dockerd_port \
    python3 - <<'EOF'
import os, re, subprocess, time
from concurrent.futures import ThreadPoolExecutor

sides = {"berth": os.environ["B"], "dockerd": os.environ["D"]}
urls = {"berth": os.environ["BERTH_URL"], "dockerd": os.environ["DOCKERD_URL"]}
token, duration = os.environ["TOKEN"], os.environ["DURATION"]
results = {}

def docker(side, *args):
    return subprocess.run(["docker", *args], env={**os.environ, "DOCKER_HOST": sides[side]},
                          capture_output=True, text=True)

def concurrent(side, n, args):
    start = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        done = list(pool.map(lambda _: docker(side, *args), range(n)))
    wall = time.perf_counter() - start
    failed = [d.stderr.strip() for d in done if d.returncode != 0]
    return wall, failed, [d.stdout.strip() for d in done if d.returncode == 0]

print(f"\n{'what':<34} {'berth':>12} {'dockerd':>12} {'dockerd/berth':>14}")
def row(what, b, d, unit="s", higher_is_better=False):
    ratio = (b / d if higher_is_better else d / b) if b and d else float("nan")
    print(f"{what:<34} {b:>11.3f}{unit} {d:>11.3f}{unit} {ratio:>14.2f}")

ids = {}
for what, n, args in [("50 x run -d", 50, ["run", "-d", "--network", "none", "busybox", "sleep", "600"]),
                      ("50 x run --rm", 50, ["run", "--rm", "--network", "none", "busybox", "true"])]:
    walls = {}
    for side in sides:
        wall, failed, out = concurrent(side, n, args)
        walls[side] = wall
        results[(what, side)] = failed
        if what.startswith("50 x run -d"):
            ids[side] = out
        for f in failed[:3]:
            print(f"  {side} failure: {f}")
    row(f"{what} (wall)", walls["berth"], walls["dockerd"])
    print(f"{'  failures':<34} {len(results[(what, 'berth')]):>12} {len(results[(what, 'dockerd')]):>12}")

def wrk(side, path):
    out = subprocess.run(["wrk", "-t4", "-c100", f"-d{duration}s", "--latency", "--timeout", "10s",
                          "-H", f"Authorization: Bearer {token}", urls[side] + path],
                         capture_output=True, text=True).stdout
    def ms(label):
        m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {"p50": ms("50%"), "p99": ms("99%"), "rps": float(rps.group(1)) if rps else float("nan"),
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "errors": errors.group(0) if errors else ""}

for what, path in [("list", "/containers/json"),
                   ("inspect", "/containers/{id}/json"),
                   ("logs", "/containers/{id}/logs?stdout=1&stderr=1&tail=10")]:
    got = {side: wrk(side, path.replace("{id}", ids[side][0] if ids.get(side) else "none")) for side in sides}
    row(f"API {what}: p50", got["berth"]["p50"], got["dockerd"]["p50"], "ms")
    row(f"API {what}: p99", got["berth"]["p99"], got["dockerd"]["p99"], "ms")
    row(f"API {what}: requests/s", got["berth"]["rps"], got["dockerd"]["rps"], " ", higher_is_better=True)
    print(f"{'  non-2xx answers':<34} {got['berth']['non2xx']:>12} {got['dockerd']['non2xx']:>12}")
    for side in sides:
        if got[side]["errors"]:
            print(f"  {side}: {got[side]['errors']}")
EOF

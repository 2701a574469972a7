#!/usr/bin/env bash
# HTTP API benchmark, berth next to `podman system service` in one run, alternating, medians:
#
#   list     GET of the container list with N containers (default 500), sequential requests on
#            one keep-alive connection over each daemon's unix socket (berth also over TCP with
#            a Bearer token, which adds the token check): requests/s.
#            berth: GET /api/v1/containers?all=1   podman: GET /v4.0.0/containers/json?all=true
#   logs     a container writing MB megabytes of 100-byte lines as fast as it can, a client
#            following its log from the start until the end: MB/s of log text received.
#            berth: the WebSocket /api/v1/ws/containers/{id}/logs?follow=1
#            podman: GET /containers/{id}/logs?follow=true&stdout=true (its streaming HTTP answer)
#
#   benches/api.sh [ROUNDS] [N] [MB]      (default 5 rounds, 500 containers, 50 MB; root; python3)
#
# `scripts/setup.sh --bench` installs podman and the Python `websockets` client used here.
# Work files live in $BENCH_DIR (default /var/tmp/berth-api-bench), deleted at the end.
set -euo pipefail

rounds=${1:-5}
n=${2:-500}
mb=${3:-50}
bench_dir=${BENCH_DIR:-/var/tmp/berth-api-bench}
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=/opt/berth-test-venv

[ "$(id -u)" = 0 ] || { echo "api.sh: run as root" >&2; exit 1; }
[ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import websockets' 2>/dev/null ||
    { echo "api.sh: run scripts/setup.sh --bench first (Python websockets in $venv)" >&2; exit 1; }

echo "building berth (release)..." >&2
(cd "$repo" && cargo build --release --quiet -p berth)
target_dir=$(cd "$repo" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
berth=$target_dir/release/berth

work=$bench_dir/api-$$
mkdir -p "$work"
run_dir=/run/berth-abench-$$
podman_run=/run/pm-abench-$$
podman_sock=$work/podman.sock
token=berth_bench$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
daemon_pid=""
podman_pid=""
have_podman=0
command -v podman >/dev/null && have_podman=1
# runc and clamped ulimits: see shared/setup-notes/PEERS.md (crun refuses hybrid cgroups; no CAP_SYS_RESOURCE).
pm() { podman --root "$work/podman" --runroot "$podman_run" --runtime runc --cgroup-manager cgroupfs "$@"; }
limits=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768 --network none)
cleanup() {
    set +e
    echo "cleaning up..." >&2
    if [ -n "$daemon_pid" ]; then
        BERTH_HOST=unix://$run_dir/berth.sock "$berth" ps -aq --no-trunc 2>/dev/null |
            xargs -r -n 100 env BERTH_HOST=unix://$run_dir/berth.sock "$berth" rm -f >/dev/null 2>&1
        kill "$daemon_pid" 2>/dev/null
        wait "$daemon_pid" 2>/dev/null
    fi
    [ -n "$podman_pid" ] && { kill "$podman_pid" 2>/dev/null; wait "$podman_pid" 2>/dev/null; }
    if [ "$have_podman" = 1 ]; then
        pm rm -af -t 0 >/dev/null 2>&1
        pm system reset -f >/dev/null 2>&1
    fi
    grep -o " $work[^ ]*\| $run_dir[^ ]*\| $podman_run[^ ]*" /proc/self/mounts | sort -r |
        xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work" "$run_dir" "$podman_run"
}
trap cleanup EXIT

echo "starting berth serve and $n containers..." >&2
BERTH_ADMIN_TOKEN=$token BERTH_ADMIN_PASSWORD=bench-password RUST_LOG=warn \
    "$berth" serve --root "$work/root" --run-dir "$run_dir" --listen "127.0.0.1:$port" >"$work/daemon.log" 2>&1 &
daemon_pid=$!
export BERTH_HOST=unix://$run_dir/berth.sock
for _ in $(seq 100); do [ -S "$run_dir/berth.sock" ] && "$berth" version >/dev/null 2>&1 && break; sleep 0.1; done
"$repo/scripts/busybox-rootfs.sh" "$work/busybox.tar" >/dev/null
"$berth" import -c 'CMD ["sh"]' "$work/busybox.tar" busybox:latest >/dev/null
for i in $(seq "$n"); do "$berth" create --name "c$i" busybox true >/dev/null; done
# The writer: MB megabytes of 100-byte lines (99 characters and a newline).
writer="yes $(printf 'x%.0s' $(seq 99)) | head -c $((mb * 1000000))"

if [ "$have_podman" = 1 ]; then
    echo "starting podman system service and $n containers..." >&2
    pm import --change 'CMD ["sh"]' "$work/busybox.tar" localhost/busybox:latest >/dev/null
    # Not through pm(): $! must be podman itself, not a subshell, for the cleanup's kill.
    podman --root "$work/podman" --runroot "$podman_run" --runtime runc --cgroup-manager cgroupfs \
        system service --time 0 "unix://$podman_sock" >"$work/podman.log" 2>&1 &
    podman_pid=$!
    for _ in $(seq 100); do [ -S "$podman_sock" ] && break; sleep 0.1; done
    for i in $(seq "$n"); do pm create --name "c$i" "${limits[@]}" localhost/busybox:latest true >/dev/null; done
else
    echo "podman is not installed: berth only (scripts/setup.sh --bench installs it)" >&2
fi

export BENCH_ROUNDS=$rounds BENCH_MB=$mb BENCH_PORT=$port BENCH_TOKEN=$token BENCH_BERTH="$berth"
export BENCH_BERTH_SOCK=$run_dir/berth.sock BENCH_PODMAN_SOCK=$podman_sock BENCH_HAVE_PODMAN=$have_podman
export BENCH_WRITER=$writer BENCH_PODMAN_ROOT=$work/podman BENCH_PODMAN_RUN=$podman_run
"$venv/bin/python" - <<'PY'
import asyncio, http.client, json, os, socket, statistics, subprocess, time
import websockets

rounds = int(os.environ["BENCH_ROUNDS"]); mb = int(os.environ["BENCH_MB"])
port = os.environ["BENCH_PORT"]; token = os.environ["BENCH_TOKEN"]
have_podman = os.environ["BENCH_HAVE_PODMAN"] == "1"
berth = os.environ["BENCH_BERTH"]; writer = os.environ["BENCH_WRITER"]

class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)

def list_rate(conn, path, headers, seconds=3.0):
    """Requests per second of sequential GETs on one keep-alive connection."""
    count, start = 0, time.perf_counter()
    size = 0
    while time.perf_counter() - start < seconds:
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, (r.status, body[:200])
        size = len(json.loads(body))
        count += 1
    return count / (time.perf_counter() - start), size

def berth_cli(*args):
    env = dict(os.environ, BERTH_HOST="unix://" + os.environ["BENCH_BERTH_SOCK"])
    return subprocess.run([berth, *args], env=env, check=True, capture_output=True, text=True).stdout.strip()

def pm(*args):
    return subprocess.run(["podman", "--root", os.environ["BENCH_PODMAN_ROOT"], "--runroot",
                           os.environ["BENCH_PODMAN_RUN"], "--runtime", "runc", "--cgroup-manager", "cgroupfs", *args],
                          check=True, capture_output=True, text=True).stdout.strip()

async def berth_logs():
    cid = berth_cli("create", "busybox", "sh", "-c", writer)
    url = f"ws://127.0.0.1:{port}/api/v1/ws/containers/{cid}/logs?follow=1"
    received = 0
    start = time.perf_counter()
    berth_cli("start", cid)
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                                  max_size=None, ping_interval=None) as ws:
        async for message in ws:
            m = json.loads(message)
            if m["type"] == "logs":
                received += sum(len(e["line"]) for e in m["entries"])
            elif m["type"] in ("end", "error"):
                break
    elapsed = time.perf_counter() - start
    berth_cli("rm", "-f", cid)
    assert received == mb * 1000000, (received, mb)
    return received / elapsed / 1e6

def podman_logs():
    cid = pm("create", "--network", "none", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768",
             "--log-driver", "k8s-file", "localhost/busybox:latest", "sh", "-c", writer)
    start = time.perf_counter()
    pm("start", cid)
    conn = UnixConnection(os.environ["BENCH_PODMAN_SOCK"])
    conn.request("GET", f"/v4.0.0/containers/{cid}/logs?follow=true&stdout=true")
    r = conn.getresponse()
    received = 0
    while True:
        chunk = r.read(1 << 16)
        if not chunk:
            break
        received += len(chunk)
    elapsed = time.perf_counter() - start
    pm("rm", "-f", cid)
    # Podman frames each line with an 8-byte header (stdout multiplexing): count the text only.
    lines = mb * 1000000 // 100
    text = received - 8 * lines
    return text / elapsed / 1e6

results = {k: [] for k in ["berth-unix", "berth-tcp", "podman", "berth-ws-logs", "podman-logs"]}
berth_unix = UnixConnection(os.environ["BENCH_BERTH_SOCK"])
berth_tcp = http.client.HTTPConnection("127.0.0.1", int(port))
podman = UnixConnection(os.environ["BENCH_PODMAN_SOCK"]) if have_podman else None
auth = {"Authorization": f"Bearer {token}"}
for i in range(rounds):
    rate, size = list_rate(berth_unix, "/api/v1/containers?all=1", {})
    results["berth-unix"].append(rate)
    rate, _ = list_rate(berth_tcp, "/api/v1/containers?all=1", auth)
    results["berth-tcp"].append(rate)
    if podman:
        rate, psize = list_rate(podman, "/v4.0.0/containers/json?all=true", {})
        results["podman"].append(rate)
    results["berth-ws-logs"].append(asyncio.run(berth_logs()))
    if podman:
        results["podman-logs"].append(podman_logs())
    print(f"round {i + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in results.items() if v), flush=True)

print()
print(f"container list ({size} containers), requests/s, median of {rounds}:")
for k in ["berth-unix", "berth-tcp", "podman"]:
    if results[k]:
        print(f"  {k:14} {statistics.median(results[k]):10.1f}")
if results["podman"]:
    print(f"  berth-unix / podman = {statistics.median(results['berth-unix']) / statistics.median(results['podman']):.2f}")
print(f"log follow of {mb} MB, MB/s, median of {rounds}:")
for k in ["berth-ws-logs", "podman-logs"]:
    if results[k]:
        print(f"  {k:14} {statistics.median(results[k]):10.1f}")
if results["podman-logs"]:
    print(f"  berth / podman = {statistics.median(results['berth-ws-logs']) / statistics.median(results['podman-logs']):.2f}")
PY

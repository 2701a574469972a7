#!/usr/bin/env bash
# berth under load, side by side with a private Docker Engine 20.10 in the same run, through the
# same client (the docker CLI against berth's Docker API face, and wrk for raw HTTP):
#
#   run -d      50 concurrent `docker run -d --network none busybox sleep 600`
#   run --rm    50 concurrent `docker run --rm --network none busybox true`
#   API         100 concurrent HTTP clients (wrk -c100) for DURATION seconds each on the container
#               list, one container's inspect and its logs, with the 50 containers running
#   many        MANY (default 1,000) more running containers (`run -d`, 20 at a time): the time
#               to start them, `docker ps` and `ps -a`, the list under 10 clients, the dashboard's
#               own list (berth's /api/v1/containers), and the daemons' memory with their
#               monitors or shims
#
# Each side reports wall time and failures (concurrent runs), requests/s, p50 and p99 and non-2xx
# answers (API); then the ratios dockerd/berth (above 1: berth is faster).
#
#   benches/load.sh [DURATION]     (default 10 s; root; docker.io's dockerd and docker CLI, python3;
#                                   installs Debian's wrk if missing)
#
# BERTH_BIN=PATH uses that berth binary instead of building a release one; MANY=N sets the
# number of the many. The daemons' setup and cleanup: benches/lib/two_daemons.sh.
set -euo pipefail

duration=${1:-10}
bench=load
repo=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian)..." >&2
    apt-get install -y -qq wrk >/dev/null
fi
# shellcheck source=benches/lib/two_daemons.sh
. "$repo/benches/lib/two_daemons.sh"
start_two_daemons
echo "== wrk $(wrk -v 2>&1 | head -1 | cut -d' ' -f2)"

B=$B D=$D TOKEN=$token DURATION=$duration \
    BERTH_URL=http://127.0.0.1:$berth_docker_port DOCKERD_URL=http://127.0.0.1:$dockerd_port \
    BERTH_NATIVE_URL=http://127.0.0.1:$berth_port MANY=${MANY:-1000} BERTH_PID=$berth_pid DOCKERD_PID=$dockerd_pid \
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

many = int(os.environ["MANY"])
print(f"\n== {many} more running containers on each side")
walls = {}
for side in sides:
    start = time.perf_counter()
    with ThreadPoolExecutor(20) as pool:
        done = list(pool.map(lambda _: docker(side, "run", "-d", "--network", "none", "busybox", "sleep", "3600"),
                             range(many)))
    walls[side] = time.perf_counter() - start
    failed = [d.stderr.strip() for d in done if d.returncode != 0]
    results[(f"{many} x run -d", side)] = failed
    for f in failed[:3]:
        print(f"  {side} failure: {f}")
row(f"{many} x run -d, 20 at a time", walls["berth"], walls["dockerd"])
print(f"{'  failures':<34} {len(results[(f'{many} x run -d', 'berth')]):>12} {len(results[(f'{many} x run -d', 'dockerd')]):>12}")

def median_wall(side, args, times=5):
    runs = []
    for _ in range(times):
        start = time.perf_counter()
        out = docker(side, *args)
        runs.append(time.perf_counter() - start)
        assert out.returncode == 0, out.stderr
    return sorted(runs)[times // 2]

for args in (["ps", "-q"], ["ps"], ["ps", "-a"]):
    row(f"docker {' '.join(args)} (median of 5)", median_wall("berth", args), median_wall("dockerd", args))
# Ten clients: each answer is ~1 MB.
def wrk10(url, path):
    out = subprocess.run(["wrk", "-t2", "-c10", f"-d{duration}s", "--latency", "--timeout", "30s",
                          "-H", f"Authorization: Bearer {token}", url + path], capture_output=True, text=True).stdout
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    conv = lambda g: float(g.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[g.group(2)] if g else float("nan")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return conv(p50), conv(m), int(non2xx.group(1)) if non2xx else 0
lists = {side: wrk10(urls[side], "/containers/json?all=1") for side in sides}
row("list all, 10 clients: p50", lists["berth"][0], lists["dockerd"][0], "ms")
row("list all, 10 clients: p99", lists["berth"][1], lists["dockerd"][1], "ms")
print(f"{'  non-2xx answers':<34} {lists['berth'][2]:>12} {lists['dockerd'][2]:>12}")
dash = wrk10(os.environ["BERTH_NATIVE_URL"], "/api/v1/containers?all=1")
print(f"{'dashboard list (berth API): p50':<34} {dash[0]:>11.3f}ms   p99 {dash[1]:.3f}ms, non-2xx {dash[2]}")

def tree_rss_mb(root_pids, names):
    """RSS of the daemon and of every process whose command name is in `names`."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            comm = open(f"/proc/{pid}/comm").read().strip()
            status = open(f"/proc/{pid}/status").read()
        except OSError:
            continue
        if pid in root_pids or comm in names:
            m = re.search(r"VmRSS:\s+(\d+) kB", status)
            total += int(m.group(1)) if m else 0
    return total / 1024
# Only this benchmark runs in this network namespace's daemons, but shims and monitors are
# found by name: run it on a machine without other containers for exact figures.
b_mem = tree_rss_mb({os.environ["BERTH_PID"]}, {"berth-monitor", "berth-zygote"})
d_mem = tree_rss_mb({os.environ["DOCKERD_PID"]}, {"containerd", "containerd-shim", "containerd-shim-runc-v2"})
row("memory: daemon + monitors/shims", b_mem, d_mem, " MB")
EOF

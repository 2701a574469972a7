#!/usr/bin/env bash
# Churn side by side: the same cycle through the docker CLI against berth's Docker API face and
# a private Docker Engine 20.10, alternating, in one run. A cycle runs a container with a health
# check on a user network, execs in it, connects it to a second network, reads its logs, stops
# and removes it (and every fifth cycle a `run --rm`). Sampled every CYCLES/20 cycles: each
# daemon's RSS, open files and threads, and the RSS of its helpers (berth's zygote and
# monitors; dockerd's containerd and shims). Prints first/last/max and the least-squares slope
# per 1,000 cycles of each, the wall time per cycle, and what is left after the last cycle
# (containers, mounts under the daemon's root, helper processes).
#
#   benches/churn_vs_dockerd.sh [CYCLES]     (default 500; root; docker.io's dockerd and CLI)
#
# benches/churn.sh runs berth's own churn test (with its leak checks of cgroups, veths, netns
# pins and files) first, then this. Daemons' setup and cleanup: benches/lib/two_daemons.sh.
set -euo pipefail

cycles=${1:-500}
bench=churn
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/lib/two_daemons.sh
. "$repo/benches/lib/two_daemons.sh"
start_two_daemons

B=$B D=$D CYCLES=$cycles WORK=$work BERTH_PID=$berth_pid DOCKERD_PID=$dockerd_pid python3 - <<'EOF'
import os, re, subprocess, time

sides = {"berth": os.environ["B"], "dockerd": os.environ["D"]}
daemon_pid = {"berth": os.environ["BERTH_PID"], "dockerd": os.environ["DOCKERD_PID"]}
roots = {"berth": os.environ["WORK"] + "/berth", "dockerd": os.environ["WORK"] + "/dockerd"}
helper_names = {"berth": {"berth-zygote", "berth-monitor"},
                "dockerd": {"containerd", "containerd-shim", "containerd-shim-runc-v2"}}
cycles = int(os.environ["CYCLES"])

def docker(side, *args):
    out = subprocess.run(["docker", *args], env={**os.environ, "DOCKER_HOST": sides[side]},
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{side}: docker {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout

def status(pid):
    try:
        text = open(f"/proc/{pid}/status").read()
    except OSError:
        return None
    def field(name):  # zombies have no VmRSS
        m = re.search(rf"^{name}:\s+(\d+)", text, re.M)
        return int(m.group(1)) if m else 0
    try:
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        fds = 0
    return {"rss": field("VmRSS"), "threads": field("Threads"), "fds": fds}

def helpers(side):
    """PIDs of the side's helper processes whose command line names its work directory."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            comm = open(f"/proc/{pid}/comm").read().strip()
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
        except OSError:
            continue
        if comm in helper_names[side] and (roots[side] in cmdline or comm.startswith("containerd-shim")):
            found.append(pid)
    return found

def slope(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    return 0.0 if var == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var * 1000

for side in sides:
    docker(side, "network", "create", "churn-a")
    docker(side, "network", "create", "churn-b")
every = max(cycles // 20, 1)
samples = {side: [] for side in sides}
walls = {side: 0.0 for side in sides}
for i in range(cycles):
    for side in sides:
        start = time.perf_counter()
        name = f"churn-{i}"
        docker(side, "run", "-d", "--name", name, "--network", "churn-a", "--health-cmd", "true",
               "--health-interval", "1s", "busybox", "sh", "-c", "echo started; sleep 60")
        assert docker(side, "exec", name, "echo", "hi").strip() == "hi"
        docker(side, "network", "connect", "churn-b", name)
        assert "started" in docker(side, "logs", name)
        if i % every == 0:
            d = status(daemon_pid[side])
            h = sum((status(p) or {"rss": 0})["rss"] for p in helpers(side))
            samples[side].append((i, d["rss"], d["fds"], d["threads"], h))
        docker(side, "stop", "-t", "1", name)
        docker(side, "rm", name)
        if i % 5 == 0:
            docker(side, "run", "--rm", "--network", "none", "busybox", "true")
        walls[side] += time.perf_counter() - start
    if (i + 1) % max(cycles // 10, 1) == 0:
        print(f"  {i + 1}/{cycles} cycles", flush=True)

print(f"\n{cycles} cycles each, {len(samples['berth'])} samples")
print(f"{'':<28} {'first':>9} {'last':>9} {'max':>9} {'slope/1000':>11}")
for side in sides:
    xs = [s[0] for s in samples[side]]
    for k, what in [(1, "daemon RSS kB"), (2, "daemon fds"), (3, "daemon threads"), (4, "helpers RSS kB")]:
        ys = [s[k] for s in samples[side]]
        print(f"{side + ' ' + what:<28} {ys[0]:>9} {ys[-1]:>9} {max(ys):>9} {slope(xs, ys):>+11.1f}")
print(f"\nwall per cycle: berth {walls['berth'] / cycles * 1000:.0f} ms, dockerd {walls['dockerd'] / cycles * 1000:.0f} ms,"
      f" dockerd/berth {walls['dockerd'] / walls['berth']:.2f}")
time.sleep(2)
def overlay_mounts(root):
    found = 0
    for line in open("/proc/self/mountinfo"):
        point, fstype = line.split(" ")[4], line.split(" - ")[1].split(" ")[0]
        found += point.startswith(root) and fstype == "overlay"
    return found
for side in sides:
    left = docker(side, "ps", "-aq").split()
    alive = [p for p in helpers(side) if open(f"/proc/{p}/comm").read().strip() != "containerd"
             and open(f"/proc/{p}/comm").read().strip() != "berth-zygote"]
    print(f"left after the last cycle, {side}: {len(left)} containers, {overlay_mounts(roots[side])} overlay"
          f" mounts, {len(alive)} monitors/shims")
EOF

#!/usr/bin/env bash
# The Docker Engine API benchmark: the same client against two daemons, berth's Docker socket and
# Docker Engine 20.10 (Debian's dockerd with its containerd), in one run, alternating, medians:
#
#   run          `docker run --rm busybox true` (neither daemon has a default bridge, as in the
#                tests: `serve --bridge none`, `dockerd --bridge=none`; so no network is set up)
#   run floor    the same command against a stand-in daemon that answers at once with no
#                container (benches/lib/instant_docker.py): the docker CLI's own time, under any
#                daemon's; dockerd's run over it is the most any daemon's ratio can be
#   build cold   `DOCKER_BUILDKIT=0 docker build --no-cache` of benches/build.sh's Dockerfile and
#                ~50 MB context (benches/build_context.sh)
#   build cached the same build again, every step from the cache
#   pull         `docker pull` of a ~100 MB image (one gzip layer of random bytes) from a local
#                docker-registry; the image is removed again after each pull, outside the timing
#   list         `GET /containers/json?all=1` with 500 created containers: requests per second
#                with ApacheBench (`ab`, Debian's apache2-utils: the load tool already installed
#                for htpasswd), over TCP on 127.0.0.1 to both (berth's `--docker-listen`, with a
#                Bearer API token as the docker CLI sends one; dockerd's plain `-H tcp://`)
#
# Prints the medians and the ratios dockerd / berth (above 1: berth is faster).
#
#   benches/docker_api.sh [ROUNDS]   (default 10 for run, ROUNDS/2 (at least 3) for build and
#                                     pull; root; dockerd, docker, docker-registry, ab, python3)
#   BERTH_BIN=path/to/berth benches/docker_api.sh   measures that binary instead of building one
#
# Everything runs in a network namespace of its own with only `lo`: both daemons, their
# containers and the registry reach each other on 127.0.0.1 and nothing else (a pull of an
# unknown name fails at once). Work files live in a fresh /var/tmp/berth-bench-docker.* directory,
# deleted at the end; nothing big is deleted inside a timed loop (shared/setup-notes/PEERS.md's
# ext4 note). Wall time only: dockerd's work is spread over dockerd, containerd and one shim per
# container, which no single process's CPU counters show.
set -euo pipefail

rounds=${1:-10}
slow_rounds=$(( rounds / 2 > 3 ? rounds / 2 : 3 ))
bench=docker-api
repo=$(cd "$(dirname "$0")/.." && pwd)
for tool in docker-registry ab; do
    command -v "$tool" >/dev/null || { echo "docker_api.sh: $tool is not installed (scripts/setup.sh --test)" >&2; exit 1; }
done
# shellcheck source=benches/lib/two_daemons.sh
. "$repo/benches/lib/two_daemons.sh"
start_two_daemons

# ---- the registry and the ~100 MB image ----------------------------------------------------------
# shellcheck source=benches/lib/docker_registry.sh
. "$repo/benches/lib/docker_registry.sh"
start_docker_registry "$work/registry"
registry_port=${registry_host##*:}
extra_pids=$registry_pid
big=127.0.0.1:$registry_port/bench/big:v1
mkdir -p "$work/big/data"
head -c 100000000 /dev/urandom >"$work/big/data/random.bin"
tar -C "$work/big" -cf "$work/big.tar" data
DOCKER_HOST=$D docker import "$work/big.tar" "$big" >/dev/null
DOCKER_HOST=$D docker push -q "$big" >/dev/null
DOCKER_HOST=$D docker rmi "$big" >/dev/null
echo "== pull image: $big, $(du -sh "$work/registry/data" | cut -f1) in the registry"

# ---- the build context -----------------------------------------------------------------------------
"$repo/benches/build_context.sh" "$work/context"

# ---- the stand-in daemon of the run floor --------------------------------------------------------
python3 "$repo/benches/lib/instant_docker.py" "$work/instant.sock" &
extra_pids="$extra_pids $!"
for _ in $(seq 100); do [ -S "$work/instant.sock" ] && break; sleep 0.05; done

# ---- run, build, pull: alternating, medians -----------------------------------------------------
B=$B D=$D I=unix://$work/instant.sock CTX=$work/context BIG=$big python3 - "$rounds" "$slow_rounds" <<'EOF' | tee "$work/results"
import os, statistics, subprocess, sys, time

rounds, slow_rounds = int(sys.argv[1]), int(sys.argv[2])
sides = {"berth": os.environ["B"], "dockerd": os.environ["D"]}
ctx, big = os.environ["CTX"], os.environ["BIG"]

def docker(side, *args, env=None):
    return subprocess.run(["docker", *args], env={**os.environ, "DOCKER_HOST": sides[side], **(env or {})},
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

def timed(side, *args, env=None):
    start = time.perf_counter()
    done = docker(side, *args, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{side}: docker {' '.join(args)} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    return wall

def measure(name, n, args, env=None, after=None):
    """args(i) -> docker's arguments; after(side, i): untimed clean-up."""
    walls = {s: [] for s in sides}
    for i in range(n):
        for side in (list(sides) if i % 2 == 0 else list(reversed(sides))):
            walls[side].append(timed(side, *args(i), env=env))
            if after:
                after(side, i)
        print(f"{name} round {i + 1}/{n}: " + " ".join(f"{s}={walls[s][-1] * 1000:.0f}ms" for s in sides), file=sys.stderr)
    med = {s: statistics.median(walls[s]) for s in sides}
    print(f"{name:13} berth {med['berth'] * 1000:9.1f} ms   dockerd {med['dockerd'] * 1000:9.1f} ms   "
          f"dockerd/berth {med['dockerd'] / med['berth']:6.2f}x   ({n} rounds)", flush=True)
    return med

classic = {"DOCKER_BUILDKIT": "0"}
def remove_pulled(side, i):
    docker(side, "rmi", big)

# Warm-up, not counted: page cache, first use of each path; the cached build's cache.
for side in sides:
    docker(side, "run", "--rm", "busybox", "true")
    if docker(side, "build", "-q", "-t", "bench:cached", ctx, env=classic).returncode != 0:
        sys.exit(f"{side}: the warm-up build failed")

print(f"\nmedians of wall time, alternating; ratios above 1: berth is faster")
run = measure("run", rounds, lambda i: ["run", "--rm", "busybox", "true"])
sides["instant"] = os.environ["I"]
floor = statistics.median(timed("instant", "run", "--rm", "busybox", "true") for _ in range(rounds))
del sides["instant"]
print(f"{'run floor':13} docker CLI alone {floor * 1000:5.1f} ms (stand-in daemon): dockerd/floor "
      f"{run['dockerd'] / floor:5.2f}x at most for any daemon; berth's own share {(run['berth'] - floor) * 1000:5.1f} ms", flush=True)
measure("build cold", slow_rounds, lambda i: ["build", "-q", "--no-cache", "-t", f"bench:cold-{i}", ctx], env=classic)
measure("build cached", slow_rounds, lambda i: ["build", "-q", "-t", "bench:cached", ctx], env=classic)
measure("pull 100 MB", slow_rounds, lambda i: ["pull", "-q", big], after=remove_pulled)
EOF

# ---- GET /containers/json with 500 containers ------------------------------------------------------
echo "creating 500 containers in each daemon..." >&2
for host in "$B" "$D"; do
    seq 1 500 | xargs -P 4 -I{} env DOCKER_HOST="$host" docker create -l bench=list busybox true >/dev/null
done
for host in "$B" "$D"; do
    n=$(DOCKER_HOST=$host docker ps -aq | wc -l)
    [ "$n" -ge 500 ] || { echo "docker_api.sh: $host has $n containers, not 500" >&2; exit 1; }
done
list_rate() { # URL [HEADER]: requests per second over 10 s, 4 connections
    local url=$1
    shift
    ab -q -l -t 10 -n 1000000 -c 4 "$@" "$url" 2>&1 | awk '/^Requests per second/ {print $4}'
}
path="/v1.41/containers/json?all=1"
list_rate "http://127.0.0.1:$berth_docker_port$path" -H "Authorization: Bearer $token" >/dev/null # warm-up
list_rate "http://127.0.0.1:$dockerd_port$path" >/dev/null
berth_rate=$(list_rate "http://127.0.0.1:$berth_docker_port$path" -H "Authorization: Bearer $token")
dockerd_rate=$(list_rate "http://127.0.0.1:$dockerd_port$path")
printf '%-13s berth %9.1f req/s dockerd %9.1f req/s berth/dockerd %6.2fx   (ab -c 4, 10 s each)\n' \
    "list 500" "$berth_rate" "$dockerd_rate" "$(echo "$berth_rate / $dockerd_rate" | bc -l)" | tee -a "$work/results"

echo
echo "results:"
cat "$work/results"

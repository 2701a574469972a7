#!/usr/bin/env bash
# Registry transfer benchmark against a local docker-registry (distribution 2.8) on 127.0.0.1,
# one run, alternating, N rounds:
#
#   pull     berth pull (download, verify, unpack)     vs  skopeo copy docker:// oci:DIR + umoci unpack
#                                                       vs  podman pull      vs  tar -xzf of the same blob
#   push     berth push                                vs  skopeo copy oci:DIR docker://
#   re-push  berth push of the unchanged image         vs  skopeo copy of the unchanged image
#
#   benches/pull_push.sh [ROUNDS]     (default 5; root; docker-registry, skopeo, umoci, podman, python3)
#   BERTH_BIN=path/to/berth benches/pull_push.sh   measures that binary instead of building one
#
# The image is one ~200 MB-of-/usr gzip layer (the layer benches/unpack.sh builds, shared through
# $BENCH_DIR). Every round pulls into fresh directories (a fresh berth root, OCI dir, podman root)
# and pushes into fresh registries; all of it is deleted only after the last timing, because on
# this kind of machine (ext4 without a journal) creating files soon after deleting many is 2-7x
# slower. berth's CPU time is the daemon's (from /proc) plus the CLI's. Reports medians of wall
# and CPU time and ratios.
set -euo pipefail

rounds=${1:-5}
bench_dir=${BENCH_DIR:-/var/tmp/berth-unpack-bench}
repo=$(cd "$(dirname "$0")/.." && pwd)

for tool in docker-registry skopeo umoci podman python3 tar gzip; do
    command -v "$tool" >/dev/null || { echo "pull_push.sh: $tool is not installed (scripts/setup.sh --bench)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "pull_push.sh: run as root" >&2; exit 1; }

# The layer and its OCI layout: benches/unpack.sh makes them (with 0 rounds, nothing is timed).
if [ ! -s "$bench_dir/oci/index.json" ]; then
    BENCH_DIR=$bench_dir "$repo/benches/unpack.sh" 0 >/dev/null 2>&1 || true
    [ -s "$bench_dir/oci/index.json" ] || { echo "pull_push.sh: benches/unpack.sh did not build the layer" >&2; exit 1; }
fi
layer=$bench_dir/layer.tar.gz

# BERTH_BIN: a berth binary to measure instead of building one (release) here.
# shellcheck source=benches/lib/release_berth.sh
. "$repo/benches/lib/release_berth.sh"
berth=$(release_berth)

run=$(mktemp -d /var/tmp/berth-pull-push.XXXXXX)
pids=()
cleanup() {
    # Registries are started in command substitutions (subshells): their pids are in files.
    for f in "$run"/*/registry.pid; do [ -e "$f" ] && pids+=("$(cat "$f")"); done
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    # Bounded: a registry reparented to a PID 1 that does not reap stays a zombie.
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    echo "deleting the bench trees..." >&2
    for m in $(awk -v d="$run" '$5 ~ "^"d {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m" || true; done
    rm -rf "$run" /run/bpb-*
}
trap cleanup EXIT
times=$run/times
: >"$times"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# shellcheck source=benches/lib/docker_registry.sh
. "$repo/benches/lib/docker_registry.sh"

# start_registry NAME → prints the port; the registry's storage is $run/NAME. (Run in a
# subshell by its callers: the PID goes through a file for the cleanup.)
start_registry() {
    start_docker_registry "$run/$1" >&2
    echo "$registry_pid" >"$run/$1/registry.pid"
    echo "${registry_host##*:}"
}

# start_berth NAME → sets berth_pid and BERTH_HOST for a daemon rooted in $run/NAME.
start_berth() {
    local name=$1 port
    port=$(free_port)
    "$berth" serve --root "$run/$name/root" --run-dir "/run/bpb-$name" --listen "127.0.0.1:$port" \
        >"$run/$name.log" 2>&1 &
    berth_pid=$!
    pids+=($berth_pid)
    export BERTH_HOST=unix:///run/bpb-$name/berth.sock
    for _ in $(seq 200); do
        "$berth" version >/dev/null 2>&1 && return
        sleep 0.05
    done
    echo "pull_push.sh: berth serve did not start; its log:" >&2
    cat "$run/$name.log" >&2
    exit 1
}

stop_berth() {
    kill "$berth_pid" 2>/dev/null || true
    wait "$berth_pid" 2>/dev/null || true
}

# CPU seconds (user+sys) a process has used so far.
proc_cpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }

# timed TOOL [--daemon PID] CMD...: appends "tool wall cpu" (the daemon's CPU added when given).
timed() {
    local tool=$1 daemon="" before=0 after=0 TIMEFORMAT='%R %U %S'
    shift
    if [ "$1" = --daemon ]; then daemon=$2; shift 2; before=$(proc_cpu "$daemon"); fi
    if ! { time "$@" >"$run/out" 2>"$run/err"; } 2>"$run/time"; then
        echo "pull_push.sh: $tool failed:" >&2
        cat "$run/out" "$run/err" >&2
        exit 1
    fi
    [ -n "$daemon" ] && after=$(proc_cpu "$daemon")
    awk -v tool="$tool" -v a="$after" -v b="$before" '{ printf "%s %s %.2f\n", tool, $1, $2 + $3 + a - b }' \
        "$run/time" >>"$times"
}

source_port=$(start_registry source)
image=127.0.0.1:$source_port/bench/img:1
echo "seeding $image with skopeo from $bench_dir/oci..." >&2
skopeo copy --dest-tls-verify=false "oci:$bench_dir/oci:bench" "docker://$image" >/dev/null
ls -l "$layer" >&2
sync

for round in $(seq 1 "$rounds"); do
    r=$run/r$round
    mkdir -p "$r/tar" "$r/oci"

    # ---- pull ----
    start_berth "b$round"
    timed berth-pull --daemon "$berth_pid" "$berth" pull -q "$image"
    timed skopeo+umoci sh -c "skopeo copy --src-tls-verify=false docker://$image oci:$r/oci:bench && umoci unpack --image $r/oci:bench $r/bundle"
    timed podman-pull podman --root "$r/podman" --runroot "/run/bpb-p$round" --storage-driver overlay \
        pull -q --tls-verify=false "$image"
    timed tar-xzf tar -xzf "$layer" -C "$r/tar"

    # ---- push into fresh registries, then the same push again (nothing to move) ----
    berth_port=$(start_registry "push-berth-$round")
    skopeo_port=$(start_registry "push-skopeo-$round")
    berth_target=127.0.0.1:$berth_port/bench/img:1
    "$berth" tag "$image" "$berth_target"
    timed berth-push --daemon "$berth_pid" "$berth" push -q "$berth_target"
    timed skopeo-push skopeo copy --dest-tls-verify=false "oci:$r/oci:bench" "docker://127.0.0.1:$skopeo_port/bench/img:1"
    timed berth-repush --daemon "$berth_pid" "$berth" push -q "$berth_target"
    timed skopeo-repush skopeo copy --dest-tls-verify=false "oci:$r/oci:bench" "docker://127.0.0.1:$skopeo_port/bench/img:1"
    stop_berth
    echo "round $round: $(tail -n8 "$times" | awk '{printf "%s %ss  ", $1, $2}')" >&2
done

python3 - "$times" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
tools = []
for r in rows:
    if r[0] not in tools:
        tools.append(r[0])
med = {t: (statistics.median(float(r[1]) for r in rows if r[0] == t),
           statistics.median(float(r[2]) for r in rows if r[0] == t)) for t in tools}
print(f"{'':14} {'wall s (median)':>16} {'cpu s (median)':>15}")
for t in tools:
    print(f"{t:14} {med[t][0]:16.2f} {med[t][1]:15.2f}")
def ratio(a, b):
    print(f"{a}/{b}: wall {med[a][0] / med[b][0]:.2f}, cpu {med[a][1] / med[b][1]:.2f}")
for other in ("tar-xzf", "skopeo+umoci", "podman-pull"):
    ratio("berth-pull", other)
ratio("berth-push", "skopeo-push")
ratio("berth-repush", "skopeo-repush")
EOF

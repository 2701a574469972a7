#!/usr/bin/env bash
# CRI benchmark, berth and containerd's CRI plugin (Debian's containerd 1.6) in one run, driven
# by the same client (tests/cri_bench.rs, k8s-cri's gRPC client, as kubelet speaks CRI):
#
#   pod-start   RunPodSandbox + CreateContainer + StartContainer of a `sleep` container (median)
#   exec        ExecSync of `true` in a running container (median)
#   N pods      N pods started at once: wall time and failures
#
# Both runtimes run in one network namespace made for the run (`unshare -n`), each with a CNI
# bridge on its own private subnet, so nothing leaves the machine; containerd with its own root,
# state and socket, its images (busybox and a pause image made of it) imported from
# `berth save`. Ratios are berth / containerd (below 1: berth is faster).
#
#   benches/cri.sh [ROUNDS] [PODS]      (default 10 rounds, 50 pods; root)
#
# BERTH_BIN and CRI_BENCH_BIN name prebuilt binaries (default: built here, debug).
set -euo pipefail

rounds=${1:-10}
pods=${2:-50}
repo="$(cd "$(dirname "$0")/.." && pwd)"

if [ -z "${CRI_BENCH_INSIDE:-}" ]; then
  target="${CARGO_TARGET_DIR:-$repo/target}"
  if [ -z "${BERTH_BIN:-}" ] || [ -z "${CRI_BENCH_BIN:-}" ]; then
    (cd "$repo" && cargo build -q -p berth -p berth-tests --bin berth --bin cri-bench)
  fi
  export BERTH_BIN="${BERTH_BIN:-$target/debug/berth}"
  export CRI_BENCH_BIN="${CRI_BENCH_BIN:-$target/debug/cri-bench}"
  for tool in containerd ctr /usr/lib/cni/bridge; do
    command -v "$tool" >/dev/null || { echo "cri.sh: $tool is missing (scripts/setup.sh --test)" >&2; exit 1; }
  done
  CRI_BENCH_INSIDE=1 exec unshare -n "$0" "$@"
fi

work="$(mktemp -d /var/tmp/berth-cri-bench.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p"; wait "$p"; done
  # Pause processes, containerd's shims and the containers they ran: all name or live in $work.
  for d in /proc/[0-9]*; do
    if tr '\0' ' ' < "$d/cmdline" 2>/dev/null | grep -q -- "$work" \
      || readlink "$d/root" 2>/dev/null | grep -q "^$work"; then
      kill -9 "${d#/proc/}" 2>/dev/null || true
    fi
  done
  for f in "$work"/berth-root/pods/*/pod.json; do
    [ -f "$f" ] || continue
    pid=$(grep -o '"pause_pid": *[0-9]*' "$f" | grep -o '[0-9]*$' || true)
    [ -n "$pid" ] && grep -q pod-pause "/proc/$pid/cmdline" 2>/dev/null && kill -9 "$pid" || true
  done
  sleep 1
  grep " $work" /proc/self/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" || true; done
  for h in /sys/fs/cgroup /sys/fs/cgroup/*; do
    for c in "$h"/k8s.io/* "$h"/k8s.io; do [ -d "$c" ] && rmdir "$c" 2>/dev/null || true; done
  done
  rm -rf "$work"
}
trap 'status=$?; set +e; cleanup 2>/dev/null; exit $status' EXIT

ip link set lo up
conflist() { # DIR BRIDGE SUBNET
  mkdir -p "$1"
  cat > "$1/10-bench.conflist" <<J
{"cniVersion":"0.4.0","name":"bench-$2","plugins":[
 {"type":"bridge","bridge":"$2","isGateway":true,"ipMasq":false,
  "ipam":{"type":"host-local","ranges":[[{"subnet":"$3"}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":"$work/ipam-$2"}}]}
J
}
conflist "$work/net-berth" bbench0 10.201.0.0/16
conflist "$work/net-containerd" cbench0 10.202.0.0/16

"$BERTH_BIN" serve --root "$work/berth-root" --run-dir "$work/berth-run" --listen 127.0.0.1:7777 \
  --cni-conf-dir "$work/net-berth" --cni-bin-dir /usr/lib/cni > "$work/berth.log" 2>&1 &
pids+=($!)
for _ in $(seq 150); do [ -S "$work/berth-run/cri.sock" ] && break; sleep 0.2; done
export BERTH_HOST="unix://$work/berth-run/berth.sock"
"$repo/scripts/busybox-rootfs.sh" "$work/busybox.tar"
path='ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin'
"$BERTH_BIN" import -c "$path" -c 'CMD ["sh"]' "$work/busybox.tar" busybox:latest >/dev/null
"$BERTH_BIN" import -c "$path" -c 'CMD ["sleep", "2147483647"]' "$work/busybox.tar" pause:berth >/dev/null
"$BERTH_BIN" save -o "$work/busybox-image.tar" busybox:latest
"$BERTH_BIN" save -o "$work/pause-image.tar" pause:berth

c="$work/containerd"
mkdir -p "$c"
cat > "$c/config.toml" <<T
version = 2
root = "$c/root"
state = "$c/state"
[grpc]
  address = "$c/containerd.sock"
[ttrpc]
  address = "$c/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/library/pause:berth"
  netns_mounts_under_state_dir = true
  # root here lacks CAP_SYS_RESOURCE: no negative oom_score_adj for the pause
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$work/net-containerd"
T
containerd --config "$c/config.toml" > "$c/containerd.log" 2>&1 &
pids+=($!)
for _ in $(seq 150); do [ -S "$c/containerd.sock" ] && break; sleep 0.2; done
for image in busybox pause; do
  ctr --address "$c/containerd.sock" -n k8s.io images import "$work/$image-image.tar" >/dev/null
done

echo "rounds=$rounds pods=$pods"
berth=$("$CRI_BENCH_BIN" "$work/berth-run/cri.sock" busybox:latest "$rounds" "$pods")
echo "berth:      $berth"
containerd=$("$CRI_BENCH_BIN" "$c/containerd.sock" busybox:latest "$rounds" "$pods")
echo "containerd: $containerd"
python3 - "$berth" "$containerd" <<'P'
import json, sys
b, c = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{'':14}{'berth':>12}{'containerd':>12}{'ratio':>8}")
for key, name in [("pod_start_ms", "pod start ms"), ("exec_ms", "ExecSync ms"), ("pods_wall_ms", f"{b['pods']} pods ms")]:
    print(f"{name:14}{b[key]:12.1f}{c[key]:12.1f}{b[key] / c[key]:8.2f}")
print(f"{'failed pods':14}{b['pods_failed']:12}{c['pods_failed']:12}")
P

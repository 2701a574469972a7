#!/usr/bin/env bash
# Build benchmark: `berth build` against `buildah bud --layers` (chroot isolation, overlay
# storage) on the same Dockerfile and ~50 MB context, in one run, alternating:
#   cold    --no-cache: every step runs (the base image is local to both)
#   cached  the same build again: every step from the cache
# Prints the medians of wall time and of CPU time (berth: the daemon's and its children's
# user+system time; buildah: the process tree's), and the ratios buildah / berth.
#
# Usage: benches/build.sh [RUNS]   (default 5; needs root, busybox-static, buildah, a built
# target/release/berth or target/debug/berth)
#
# The ext4 note in shared/setup-notes/PEERS.md: nothing big is deleted inside the timed loop;
# each tool's storage is removed at the end.
set -euo pipefail
RUNS="${1:-5}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BERTH="${BERTH:-}"
if [ -z "$BERTH" ]; then
  for b in "$ROOT/target/release/berth" "$ROOT/target/debug/berth"; do
    [ -x "$b" ] && { BERTH="$b"; break; }
  done
fi
[ -x "${BERTH:-}" ] || { echo "build.sh: build berth first (cargo build --release -p berth)" >&2; exit 1; }
command -v buildah >/dev/null || { echo "build.sh: buildah is missing (scripts/setup.sh --test)" >&2; exit 1; }

WORK="$(mktemp -d /var/tmp/berth-bench-build.XXXXXX)"
DAEMON_PID=""
cleanup() {
  local status=$?
  set +e
  if [ -n "$DAEMON_PID" ]; then
    kill "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID" 2>/dev/null
  fi
  buildah --root "$WORK/buildah/root" --runroot "$WORK/buildah/run" --storage-driver overlay rm --all >/dev/null 2>&1
  grep -o " $WORK[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  rm -rf "$WORK" || echo "build.sh: could not remove $WORK" >&2
  exit "$status"
}
trap cleanup EXIT

echo "== berth: $BERTH"
echo "== buildah: $(buildah --version)"

# ---- the context: ~50 MB in 200 files, a few RUN steps ------------------------------------------
CTX="$WORK/context"
"$ROOT/benches/build_context.sh" "$CTX"
echo "== context: $(du -sh "$CTX" | cut -f1), $(find "$CTX" -type f | wc -l) files"

# ---- berth daemon and the busybox image ---------------------------------------------------------
"$ROOT/scripts/busybox-rootfs.sh" "$WORK/busybox.tar"
mkdir -p "$WORK/berth"
"$BERTH" serve --root "$WORK/berth/root" --run-dir "$WORK/berth/run" --listen 127.0.0.1:0 \
  >"$WORK/berth/daemon.log" 2>&1 &
DAEMON_PID=$!
export BERTH_HOST="unix://$WORK/berth/run/berth.sock"
for _ in $(seq 100); do [ -S "$WORK/berth/run/berth.sock" ] && break; sleep 0.1; done
"$BERTH" import -c 'CMD ["sh"]' "$WORK/busybox.tar" busybox:latest >/dev/null
"$BERTH" save -o "$WORK/busybox-oci.tar" busybox:latest
B=(buildah --root "$WORK/buildah/root" --runroot "$WORK/buildah/run" --storage-driver overlay)
"${B[@]}" pull -q "oci-archive:$WORK/busybox-oci.tar:latest" >/dev/null

# CPU seconds (user+system, children included) of the daemon so far.
daemon_cpu() {
  awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15+$16+$17)/hz}' "/proc/$DAEMON_PID/stat"
}
now() { date +%s.%N; }

# One timed run; appends "wall cpu" to $1.
time_berth() {
  local out="$1"; shift
  local c0 t0 t1 c1
  c0=$(daemon_cpu); t0=$(now)
  "$BERTH" build -q "$@" "$CTX" >/dev/null 2>"$WORK/berth.err" || { cat "$WORK/berth.err" >&2; exit 1; }
  t1=$(now); c1=$(daemon_cpu)
  echo "$(echo "$t1 - $t0" | bc -l) $(echo "$c1 - $c0" | bc -l)" >> "$out"
}
time_buildah() {
  local out="$1"; shift
  local t0 t1
  t0=$(now)
  /usr/bin/time -f "%U %S" -o "$WORK/time.txt" "${B[@]}" bud --layers --isolation chroot --pull-never -q "$@" "$CTX" \
    >/dev/null 2>"$WORK/buildah.err" || { cat "$WORK/buildah.err" >&2; exit 1; }
  t1=$(now)
  echo "$(echo "$t1 - $t0" | bc -l) $(awk '{print $1+$2}' "$WORK/time.txt")" >> "$out"
}

# Warm-up: page cache, first-use costs of both.
time_berth /dev/null -t bench:warm
time_buildah /dev/null -t bench-warm

for i in $(seq "$RUNS"); do
  time_berth "$WORK/berth-cold" --no-cache -t "bench:$i"
  time_buildah "$WORK/buildah-cold" --no-cache -t "bench-$i"
  time_berth "$WORK/berth-cached" -t "bench:$i"
  time_buildah "$WORK/buildah-cached" -t "bench-$i"
  echo "   run $i/$RUNS done"
done

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
col() { awk -v c="$2" '{print $c}' "$1" | median; }
report() {
  local what="$1"
  local bw bc pw pc
  bw=$(col "$WORK/berth-$what" 1); bc=$(col "$WORK/berth-$what" 2)
  pw=$(col "$WORK/buildah-$what" 1); pc=$(col "$WORK/buildah-$what" 2)
  printf '%-7s berth   wall %7.3fs  cpu %7.3fs\n' "$what" "$bw" "$bc"
  printf '%-7s buildah wall %7.3fs  cpu %7.3fs\n' "$what" "$pw" "$pc"
  printf '%-7s buildah/berth: wall %.2fx  cpu %.2fx\n' "$what" "$(echo "$pw / $bw" | bc -l)" "$(echo "$pc / $bc" | bc -l)"
}
echo "== medians of $RUNS runs each"
report cold
report cached

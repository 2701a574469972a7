#!/usr/bin/env bash
# How an unpacked layer is put on disk: berth's per-file flush (`UnpackOptions::durable`: each
# file's writeback started as it is written, then fsynced in batches, then its directories)
# against `syncfs` of the whole file system (what the snapshot store did before), and against no
# flush at all, on a ~100 MB layer of this machine's /usr (gzip -6). Each mode is timed alone and
# with a neighbour: a `dd` writing 2 GB of dirty page cache on the same file system, which a
# syncfs must flush too.
#
#   benches/unpack_flush.sh [ROUNDS]      (default 3; needs root, gzip, tar, python3)
#   UNPACK_BIN=PATH benches/unpack_flush.sh   (a built unpack_layer, e.g. a debug one)
#
# Reports the median wall time per mode. Work files live in $BENCH_DIR (default
# /var/tmp/berth-unpack-flush); the layer is built once and reused.
set -euo pipefail

rounds=${1:-3}
bench_dir=${BENCH_DIR:-/var/tmp/berth-unpack-flush}
size_mb=${LAYER_MB:-100}
neighbour_mb=${NEIGHBOUR_MB:-2000}
repo=$(cd "$(dirname "$0")/.." && pwd)

[ "$(id -u)" = 0 ] || { echo "unpack_flush.sh: run as root" >&2; exit 1; }
# UNPACK_BIN=PATH runs that unpack_layer instead of building a release one.
unpack=${UNPACK_BIN:-}
if [ -z "$unpack" ]; then
    echo "building berth's unpack_layer (release)..." >&2
    (cd "$repo" && cargo build --release --quiet -p berth-engine --example unpack_layer)
    target_dir=$(cd "$repo" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    unpack=$target_dir/release/examples/unpack_layer
fi

mkdir -p "$bench_dir"
layer=$bench_dir/layer.tar.gz
if [ ! -s "$layer" ]; then
    echo "building a ${size_mb} MB layer from /usr..." >&2
    find /usr -mindepth 1 \( -type d -o -type f -o -type l \) -printf '%y %s %P\n' |
        awk -v limit=$((size_mb * 1024 * 1024)) '
            $1 == "f" { total += $2; if (total > limit) done = 1 }
            !done { sub(/^[^ ]+ [^ ]+ /, ""); print "usr/" $0 }' >"$bench_dir/files"
    tar --format=pax --numeric-owner --no-recursion -C / -cf - -T "$bench_dir/files" 2>/dev/null |
        gzip -6 >"$layer.tmp"
    mv "$layer.tmp" "$layer"
fi

now() { date +%s.%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# One unpack in MODE ("", --durable, --syncfs); prints its wall time in seconds.
one() {
    local mode=$1 target=$bench_dir/out-$RANDOM$RANDOM start end
    sync
    start=$(now)
    "$unpack" "$layer" "$target" $mode >/dev/null
    end=$(now)
    awk -v a="$start" -v b="$end" 'BEGIN { print b - a }'
    rm -rf "$target"
}

# The same while a neighbour has written NEIGHBOUR_MB of dirty page cache on the same file
# system (and goes on writing).
with_neighbour() {
    local mode=$1 t pid
    sync
    dd if=/dev/zero of="$bench_dir/neighbour" bs=1M count="$neighbour_mb" status=none &
    pid=$!
    sleep 2 # let it build up dirty pages
    t=$(one "$mode")
    wait "$pid"
    rm -f "$bench_dir/neighbour"
    echo "$t"
}

printf '%-10s %10s %18s\n' mode alone_s with_neighbour_s
for mode in none durable syncfs; do
    flag=""
    [ "$mode" = none ] || flag="--$mode"
    alone=$(for _ in $(seq "$rounds"); do one "$flag"; done | median)
    loaded=$(for _ in $(seq "$rounds"); do with_neighbour "$flag"; done | median)
    printf '%-10s %10.3f %18.3f\n' "$mode" "$alone" "$loaded"
done

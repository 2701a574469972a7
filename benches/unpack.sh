#!/usr/bin/env bash
# Layer unpack benchmark: berth's layer::unpack against `tar -xzf` and `umoci unpack`, on the
# same gzip blob (~200 MB of this machine's /usr, gzip -6), in one run, alternating, N rounds.
#
#   benches/unpack.sh [ROUNDS]        (default 5; needs root, gzip, tar, umoci, python3)
#
# Every round unpacks into fresh directories; they are deleted only after all timings, because
# on this kind of machine (ext4 without a journal) creating files soon after deleting many is
# 2-7x slower. Reports medians of wall and CPU (user+sys) time and the ratios berth/tar and
# berth/umoci. Work files live in $BENCH_DIR (default /var/tmp/berth-unpack-bench); the layer
# is built once and reused by later runs.
set -euo pipefail

rounds=${1:-5}
bench_dir=${BENCH_DIR:-/var/tmp/berth-unpack-bench}
size_mb=${LAYER_MB:-200}
repo=$(cd "$(dirname "$0")/.." && pwd)

for tool in tar gzip umoci python3; do
    command -v "$tool" >/dev/null || { echo "unpack.sh: $tool is not installed" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "unpack.sh: run as root (owners, device nodes, xattrs)" >&2; exit 1; }

echo "building berth's unpack_layer (release)..." >&2
(cd "$repo" && cargo build --release --quiet -p berth-engine --example unpack_layer)
target_dir=$(cd "$repo" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
berth_unpack=$target_dir/release/examples/unpack_layer

mkdir -p "$bench_dir"
layer=$bench_dir/layer.tar.gz
if [ ! -s "$layer" ]; then
    echo "building a ${size_mb} MB layer from /usr..." >&2
    # Directories, files and symlinks of /usr in find's order, files until the size is reached:
    # a realistic mix of file sizes and mostly compressible content.
    find /usr -mindepth 1 \( -type d -o -type f -o -type l \) -printf '%y %s %P\n' |
        awk -v limit=$((size_mb * 1024 * 1024)) '
            $1 == "f" { total += $2; if (total > limit) done = 1 }
            !done { sub(/^[^ ]+ [^ ]+ /, ""); print "usr/" $0 }' >"$bench_dir/files"
    tar --format=pax --numeric-owner --no-recursion -C / -cf "$bench_dir/layer.tar" -T "$bench_dir/files"
    gzip -6 -c "$bench_dir/layer.tar" >"$layer.tmp"
    mv "$layer.tmp" "$layer"
    rm -f "$bench_dir/layer.tar"
fi

# An OCI image layout holding the layer, for umoci (written by hand: one layer, a minimal config).
oci=$bench_dir/oci
if [ ! -s "$oci/index.json" ]; then
    rm -rf "$oci"
    mkdir -p "$oci/blobs/sha256"
    layer_digest=$(sha256sum "$layer" | cut -d' ' -f1)
    diff_id=$(gzip -dc "$layer" | sha256sum | cut -d' ' -f1)
    cp "$layer" "$oci/blobs/sha256/$layer_digest"
    put_blob() { # stdin → blob; prints "digest size"
        local tmp=$oci/blob.tmp digest
        cat >"$tmp"
        digest=$(sha256sum "$tmp" | cut -d' ' -f1)
        mv "$tmp" "$oci/blobs/sha256/$digest"
        echo "$digest $(stat -c %s "$oci/blobs/sha256/$digest")"
    }
    read -r config_digest config_size < <(printf '%s' \
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$diff_id\"]}}" |
        put_blob)
    read -r manifest_digest manifest_size < <(printf '%s' \
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$config_digest\",\"size\":$config_size},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$layer_digest\",\"size\":$(stat -c %s "$layer")}]}" |
        put_blob)
    printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"
    printf '%s' "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$manifest_digest\",\"size\":$manifest_size,\"annotations\":{\"org.opencontainers.image.ref.name\":\"bench\"}}]}" >"$oci/index.json"
fi

run=$bench_dir/run-$$
mkdir -p "$run"
trap 'echo "deleting the unpacked trees..." >&2; rm -rf "$run"' EXIT
times=$run/times
: >"$times"

# Runs one timed command; appends "tool wall cpu" to the times file (bash's own `time`:
# wall, user and system seconds of the command and its children).
timed() {
    local tool=$1 TIMEFORMAT='%R %U %S'
    shift
    if ! { time "$@" >/dev/null 2>"$run/err"; } 2>"$run/time"; then
        echo "unpack.sh: $tool failed:" >&2
        cat "$run/err" >&2
        exit 1
    fi
    awk -v tool="$tool" '{ printf "%s %s %.2f\n", tool, $1, $2 + $3 }' "$run/time" >>"$times"
}

ls -l "$layer" >&2
echo "unpacked: $(gzip -dc "$layer" | wc -c) bytes of tar; $rounds rounds" >&2
sync
for round in $(seq 1 "$rounds"); do
    mkdir -p "$run/$round/berth" "$run/$round/tar"
    timed berth "$berth_unpack" "$layer" "$run/$round/berth"
    timed tar tar -xzf "$layer" -C "$run/$round/tar"
    timed umoci umoci unpack --image "$oci:bench" "$run/$round/umoci"
    echo "round $round: $(tail -n3 "$times" | tr '\n' ' ')" >&2
done

python3 - "$times" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
med = {}
for tool in ("berth", "tar", "umoci"):
    walls = [float(r[1]) for r in rows if r[0] == tool]
    cpus = [float(r[2]) for r in rows if r[0] == tool]
    med[tool] = (statistics.median(walls), statistics.median(cpus))
print(f"{'tool':6} {'wall s (median)':>16} {'cpu s (median)':>15}")
for tool, (wall, cpu) in med.items():
    print(f"{tool:6} {wall:16.2f} {cpu:15.2f}")
for other in ("tar", "umoci"):
    print(f"berth/{other}: wall {med['berth'][0] / med[other][0]:.2f}, cpu {med['berth'][1] / med[other][1]:.2f}")
EOF

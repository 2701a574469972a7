#!/usr/bin/env bash
# Registry server benchmark: berth's registry (`berth serve --registry-listen`) against Debian's
# docker-registry (distribution 2.8) as the reference server, both on 127.0.0.1, in one run,
# alternating, N rounds. Each round, for each server (fresh storage every time):
#
#   skopeo-push   skopeo copy oci:DIR → docker://SERVER      (into an empty server)
#   push-unpack   then, until berth has unpacked it into a local image (reference: nothing)
#   skopeo-pull   skopeo copy docker://SERVER → oci:DIR     (into an empty directory)
#   curl-pull     curl GETs each blob into /dev/null         (the server's share of a pull)
#   berth-pull    berth pull SERVER/... by a client daemon   (fresh root: every layer moves)
#   berth-push    berth push SERVER/... by a client daemon   (into an empty server)
#
# and at the end, once: a second berth node that already has the base image pulls an image
# built on it from berth's server; the server's log counts the blobs and bytes it served (only
# the missing layer and the config should move).
#
#   benches/registry_server.sh [ROUNDS]  (default 3; root; docker-registry, skopeo, python3, curl)
#   BERTH_BIN=path/to/berth benches/registry_server.sh   measures that binary instead of building one
#
# The image: IMAGE_MB (default 200) of random data in 4 gzip layers (random data does not
# compress: the bytes on the wire are the image's size), built once in $BENCH_DIR, plus an image
# "app" of the same layers and one more of 8 MB. Reports medians of the wall time, the
# throughput (image bytes / wall time), the server's and the client's CPU time, berth/reference
# ratios, and the time to a blob's first byte.
set -euo pipefail

rounds=${1:-3}
bench_dir=${BENCH_DIR:-/var/tmp/berth-registry-bench}
image_mb=${IMAGE_MB:-200}
repo=$(cd "$(dirname "$0")/.." && pwd)
password=bench-admin-password

for tool in docker-registry skopeo python3 curl; do
    command -v "$tool" >/dev/null || { echo "registry_server.sh: $tool is not installed (scripts/setup.sh --bench)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "registry_server.sh: run as root" >&2; exit 1; }

# shellcheck source=benches/lib/release_berth.sh
. "$repo/benches/lib/release_berth.sh"
berth=$(release_berth)

# ---- the image: an OCI layout with the tags "base" and "app" ----
oci=$bench_dir/oci-$image_mb
if [ ! -s "$oci/index.json" ]; then
    echo "building a ${image_mb} MB image of random layers in $oci..." >&2
    rm -rf "$oci"
    python3 - "$oci" "$image_mb" <<'EOF'
import gzip, hashlib, io, json, os, platform, sys, tarfile
out, total_mb = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{out}/blobs/sha256")
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    with open(f"{out}/blobs/sha256/{d}", "wb") as f:
        f.write(data)
    return {"digest": f"sha256:{d}", "size": len(data)}
def layer(name, size):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo(f"data/{name}")
        info.size, info.mtime, info.mode = size, 1700000000, 0o644
        t.addfile(info, io.BytesIO(os.urandom(size)))
    tar = raw.getvalue()
    desc = blob(gzip.compress(tar, compresslevel=1, mtime=0))
    desc["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
    return desc, "sha256:" + hashlib.sha256(tar).hexdigest()
arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
base = [layer(f"base{i}", total_mb * 1024 * 1024 // 4) for i in range(4)]
extra = layer("app", 8 * 1024 * 1024)
manifests = []
for tag, layers in (("base", base), ("app", base + [extra])):
    config = {"architecture": arch, "os": "linux", "config": {"Cmd": ["sh"]},
              "rootfs": {"type": "layers", "diff_ids": [d for _, d in layers]},
              "history": [{"created_by": f"random layer {i}"} for i in range(len(layers))]}
    c = blob(json.dumps(config).encode())
    c["mediaType"] = "application/vnd.oci.image.config.v1+json"
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": c, "layers": [l for l, _ in layers]}
    m = blob(json.dumps(manifest).encode())
    m["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    m["annotations"] = {"org.opencontainers.image.ref.name": tag}
    manifests.append(m)
with open(f"{out}/oci-layout", "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
with open(f"{out}/index.json", "w") as f:
    json.dump({"schemaVersion": 2, "manifests": manifests}, f)
EOF
fi
# The bytes of the "base" image (manifest, config, layers): what a full pull or push moves.
image_bytes=$(python3 - "$oci" <<'EOF'
import json, sys
oci = sys.argv[1]
index = json.load(open(f"{oci}/index.json"))
m = next(m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == "base")
manifest = json.load(open(f"{oci}/blobs/sha256/{m['digest'][7:]}"))
print(m["size"] + manifest["config"]["size"] + sum(l["size"] for l in manifest["layers"]))
EOF
)
echo "image: $image_bytes bytes in $oci" >&2
# Its config and layers, for curl_pull.
blobs=$(python3 - "$oci" <<'EOF'
import json, sys
oci = sys.argv[1]
index = json.load(open(f"{oci}/index.json"))
m = next(m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == "base")
manifest = json.load(open(f"{oci}/blobs/sha256/{m['digest'][7:]}"))
print(" ".join(d["digest"] for d in [manifest["config"]] + manifest["layers"]))
EOF
)

run=$(mktemp -d /var/tmp/berth-registry-bench.XXXXXX)
pids=()
cleanup() {
    for f in "$run"/*.pid; do [ -e "$f" ] && pids+=("$(cat "$f")"); done
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    echo "deleting the bench trees..." >&2
    for m in $(awk -v d="$run" '$5 ~ "^"d {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m" || true; done
    rm -rf "$run" /run/brs-*
}
trap cleanup EXIT
times=$run/times
: >"$times"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() { # URL: waits until anything answers
    for _ in $(seq 200); do
        curl -s -o /dev/null "$1" && return
        sleep 0.05
    done
    echo "registry_server.sh: nothing answers on $1" >&2
    exit 1
}

# shellcheck source=benches/lib/docker_registry.sh
. "$repo/benches/lib/docker_registry.sh"

# start_reference NAME: a docker-registry on fresh storage; sets server_pid and server_host.
start_reference() {
    start_docker_registry "$run/$1"
    server_pid=$registry_pid
    pids+=("$server_pid")
    server_host=$registry_host
}

# start_berth NAME [REGISTRY_PORT]: a berth daemon on a fresh root; sets berth_pid (and
# server_pid/server_host when it serves a registry). Its socket: /run/brs-NAME/berth.sock.
start_berth() {
    local name=$1 registry_port=${2:-} args=()
    [ -n "$registry_port" ] && args=(--registry-listen "127.0.0.1:$registry_port")
    BERTH_ADMIN_PASSWORD=$password RUST_LOG=info "$berth" serve --root "$run/$name/root" \
        --run-dir "/run/brs-$name" --listen "127.0.0.1:$(free_port)" --bridge none \
        --docker-socket none --cri-socket none "${args[@]}" >"$run/$name.log" 2>&1 &
    berth_pid=$!
    pids+=("$berth_pid")
    for _ in $(seq 200); do
        BERTH_HOST=unix:///run/brs-$name/berth.sock "$berth" version >/dev/null 2>&1 && break
        sleep 0.05
    done
    if [ -n "$registry_port" ]; then
        server_pid=$berth_pid
        server_host=127.0.0.1:$registry_port
        wait_http "http://$server_host/v2/"
    fi
}

client() { # NAME ARGS...: the berth CLI against daemon NAME
    local name=$1
    shift
    BERTH_HOST=unix:///run/brs-$name/berth.sock "$berth" "$@"
}

stop() { # PID
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# CPU seconds (user+sys) a process has used so far.
proc_cpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }

# timed LABEL CMD...: appends "label wall server-cpu client-cpu": the CPU the server used
# meanwhile, and the client's (the command's own, plus that of the daemon $client_pid when set:
# a berth client's work is done by its daemon).
timed() {
    local label=$1 before after client_before=0 client_after=0 TIMEFORMAT='%R %U %S'
    shift
    before=$(proc_cpu "$server_pid")
    [ -n "${client_pid:-}" ] && client_before=$(proc_cpu "$client_pid")
    if ! { time "$@" >"$run/out" 2>"$run/err"; } 2>"$run/time"; then
        echo "registry_server.sh: $label failed:" >&2
        cat "$run/out" "$run/err" >&2
        exit 1
    fi
    after=$(proc_cpu "$server_pid")
    [ -n "${client_pid:-}" ] && client_after=$(proc_cpu "$client_pid")
    awk -v label="$label" -v a="$after" -v b="$before" -v ca="$client_after" -v cb="$client_before" \
        '{ printf "%s %s %.2f %.2f\n", label, $1, a - b, $2 + $3 + ca - cb }' "$run/time" >>"$times"
}

# settle KIND NAME: waits until the server has done what a push left it to do (berth: unpack
# the image into a local one; `image inspect` waits for that).
settle() {
    [ "$1" = berth ] || return 0
    client "$2" image inspect bench/img:1 >/dev/null
}

# pull_auth KIND: sets auth to the curl arguments of a pull token (berth's; the reference has no
# authentication), fetched before the timing starts.
pull_auth() {
    auth=()
    [ "$1" = berth ] || return 0
    local token
    token=$(curl -sf -u "admin:$password" "http://$server_host/token?scope=repository:bench/img:pull" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    auth=(-H "Authorization: Bearer $token")
}

# curl_pull KIND: the image's blobs fetched by curl into /dev/null, one after the other: the
# server's share of a pull, without a client's hashing and writing. Appends each blob's time to
# its first byte (s) to $run/ttfb-KIND.
curl_pull() {
    for digest in $blobs; do
        curl -sf -o /dev/null -w '%{time_starttransfer}\n' "${auth[@]}" \
            "http://$server_host/v2/bench/img/blobs/$digest" >>"$run/ttfb-$1"
    done
}

# start_server KIND NAME: berth or reference, fresh; sets server_pid, server_host, creds.
start_server() {
    case $1 in
        berth)
            start_berth "$2" "$(free_port)"
            creds=(--creds "admin:$password")
            ;;
        reference)
            start_reference "$2"
            creds=()
            ;;
    esac
}

# client_login NAME KIND: a client daemon logs in to the server (berth's needs credentials).
client_login() {
    [ "$2" = berth ] || return 0
    printf '%s' "$password" | client "$1" login "$server_host" -u admin --password-stdin >/dev/null
}

# The berth client that pushes holds the image: it pulls it once from a reference registry.
start_reference seed
seed_host=$server_host
seed_pid=$server_pid
skopeo copy --dest-tls-verify=false "oci:$oci:base" "docker://$seed_host/bench/img:1" >/dev/null
start_berth pusher
pusher_pid=$berth_pid
client pusher pull -q "$seed_host/bench/img:1" >/dev/null
stop "$seed_pid"
sync

for round in $(seq 1 "$rounds"); do
    for kind in berth reference; do
        r=$run/r$round-$kind
        mkdir -p "$r"
        # skopeo into an empty server, out of it into an empty directory; a berth client pulls.
        start_server "$kind" "s$round-$kind"
        timed "$kind:skopeo-push" skopeo copy --dest-tls-verify=false "${creds[@]/--creds/--dest-creds}" \
            "oci:$oci:base" "docker://$server_host/bench/img:1"
        # berth answers the manifest once it is stored, then unpacks the layers into a local
        # image: that time is measured on its own, and the pulls start on a quiet server.
        timed "$kind:push-unpack" settle "$kind" "s$round-$kind"
        sync
        timed "$kind:skopeo-pull" skopeo copy --src-tls-verify=false "${creds[@]/--creds/--src-creds}" \
            "docker://$server_host/bench/img:1" "oci:$r/oci:base"
        pull_auth "$kind"
        timed "$kind:curl-pull" curl_pull "$kind"
        start_berth "c$round-$kind"
        client_login "c$round-$kind" "$kind"
        client_pid=$berth_pid
        timed "$kind:berth-pull" client "c$round-$kind" pull -q "$server_host/bench/img:1"
        client_pid=
        stop "$berth_pid"
        stop "$server_pid"
        # A berth client pushes into an empty server.
        start_server "$kind" "p$round-$kind"
        client_login pusher "$kind"
        client pusher tag "$seed_host/bench/img:1" "$server_host/bench/img:1"
        client_pid=$pusher_pid
        timed "$kind:berth-push" client pusher push -q "$server_host/bench/img:1"
        client_pid=
        client pusher rmi "$server_host/bench/img:1" >/dev/null
        stop "$server_pid"
    done
    echo "round $round (load $(cut -d' ' -f1-3 /proc/loadavg)): $(tail -n12 "$times" | awk '{printf "%s %ss  ", $1, $2}')" >&2
    # The disk here is small: a round's trees go before the next (both servers alike).
    rm -rf "$run"/*"$round"-berth "$run"/*"$round"-reference
    sync
done

# ---- a second node pulls only what it lacks ----
start_server berth node-a
node_a_log=$run/node-a.log
skopeo copy --dest-tls-verify=false --dest-creds "admin:$password" "oci:$oci:base" "docker://$server_host/bench/img:1" >/dev/null
skopeo copy --dest-tls-verify=false --dest-creds "admin:$password" "oci:$oci:app" "docker://$server_host/bench/app:1" >/dev/null
start_berth node-b
client_login node-b berth
served() { # blobs and bytes node A's log says it served so far
    grep 'blob served' "$node_a_log" | sed -n 's/.*bytes=\([0-9]*\).*/\1/p' |
        awk '{ n++; s += $1 } END { printf "%d %d\n", n, s }'
}
client node-b pull -q "$server_host/bench/img:1" >/dev/null
read -r blobs_base bytes_base < <(served)
client node-b pull -q "$server_host/bench/app:1" >/dev/null
read -r blobs_all bytes_all < <(served)
stop "$berth_pid"
stop "$server_pid"

python3 - "$times" "$image_bytes" "$blobs_base" "$bytes_base" "$((blobs_all - blobs_base))" "$((bytes_all - bytes_base))" "$run" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
image = int(sys.argv[2])
labels = []
for r in rows:
    if r[0] not in labels:
        labels.append(r[0])
med = {l: [statistics.median(float(r[k]) for r in rows if r[0] == l) for k in (1, 2, 3)] for l in labels}
print(f"image: {image / 1e6:.1f} MB; {len(rows) // len(labels)} rounds; medians")
print(f"{'server:operation':26} {'wall s':>8} {'MB/s':>8} {'server cpu s':>13} {'client cpu s':>13}")
for l in labels:
    # push-unpack is a wait, not a transfer (the reference's is nothing): no MB/s.
    rate = f"{image / 1e6 / med[l][0]:8.1f}" if med[l][0] > 0 and "unpack" not in l else f"{'-':>8}"
    print(f"{l:26} {med[l][0]:8.2f} {rate} {med[l][1]:13.2f} {med[l][2]:13.2f}")
print("berth/reference throughput (and reference/berth server CPU):")
for op in ("skopeo-push", "skopeo-pull", "curl-pull", "berth-pull", "berth-push"):
    b, r = med[f"berth:{op}"], med[f"reference:{op}"]
    cpu = f"{r[1] / b[1]:.2f}" if b[1] > 0 else "-"
    print(f"  {op:12} throughput {r[0] / b[0]:.2f}x   server cpu {cpu}x")
b = med["berth:skopeo-push"][0] + med["berth:push-unpack"][0]
print(f"  skopeo push until berth's local image exists: {b:.2f} s, {med['reference:skopeo-push'][0] / b:.2f}x the reference's push")
for kind in ("berth", "reference"):
    ttfb = [float(t) for t in open(f"{sys.argv[7]}/ttfb-{kind}")]
    print(f"time to a blob's first byte ({kind}): median {statistics.median(ttfb) * 1000:.1f} ms, max {max(ttfb) * 1000:.1f} ms")
print(f"second node: first pull of the base image: {sys.argv[3]} blobs, {int(sys.argv[4]) / 1e6:.1f} MB served;")
print(f"  then the app image (base + one 8 MB layer): {sys.argv[5]} blobs, {int(sys.argv[6]) / 1e6:.1f} MB served")
EOF

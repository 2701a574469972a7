# Shared by the side-by-side benchmarks (load.sh, docker_api.sh, churn.sh): berth and a private
# Docker Engine 20.10 in a network namespace of their own, each with the same busybox image.
#
# The script sets `bench` (its name, for messages) and `repo`, then sources this file and calls
#   start_two_daemons          both daemons up: $B and $D (unix sockets for DOCKER_HOST),
#                              $berth_port (berth's API), $berth_docker_port (its Docker API
#                              over TCP), $dockerd_port (dockerd over TCP), $token (an admin
#                              API token), $berth_pid, $dockerd_pid
# and may add PIDs of its own to `extra_pids` for the cleanup. On exit every container of both
# daemons is removed, the daemons and extra PIDs are stopped (by PID), the mounts under the work
# directory are detached and it is deleted.
#
# BERTH_BIN=PATH measures that berth binary instead of building a release one; the work
# directory is made under $BENCH_DIR (default /var/tmp).

[ "$(id -u)" = 0 ] || { echo "$bench: run as root" >&2; exit 1; }
for tool in dockerd docker python3 unshare; do
    command -v "$tool" >/dev/null || { echo "$bench: $tool is not installed (scripts/setup.sh --test)" >&2; exit 1; }
done

# Into a network namespace of our own (the script runs again there).
if [ -z "${BERTH_BENCH_IN_NETNS:-}" ]; then
    exec env BERTH_BENCH_IN_NETNS=1 unshare --net -- "$0" "$@"
fi
ip link set lo up

# shellcheck source=benches/lib/release_berth.sh
. "$repo/benches/lib/release_berth.sh"
berth=$(release_berth)

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/berth-bench-$bench.XXXXXX")
berth_pid=""
dockerd_pid=""
extra_pids=""
token="berth_$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
export DOCKER_CONFIG=$work/docker-config
export DOCKER_CLI_HINTS=false
unset DOCKER_API_VERSION DOCKER_CONTEXT
B=unix://$work/berth/run/docker.sock
D=unix://$work/dockerd/docker.sock

cleanup() {
    set +e
    echo "cleaning up..." >&2
    for host in "$B" "$D"; do
        DOCKER_HOST=$host docker ps -aq 2>/dev/null | xargs -r -n 100 env DOCKER_HOST="$host" docker rm -f >/dev/null 2>&1
    done
    for pid in $berth_pid $dockerd_pid $extra_pids; do kill "$pid" 2>/dev/null; done
    for pid in $berth_pid $dockerd_pid $extra_pids; do
        for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    done
    # A containerd or shim that outlived its dockerd names the work directory in its arguments.
    for pid in $(grep -l "$work" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
        [ "$pid" = $$ ] || kill -9 "$pid" 2>/dev/null
    done
    awk -v d="$work" '$5 ~ "^"d {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # HOST: until the daemon answers
    for _ in $(seq 300); do DOCKER_HOST=$1 docker version >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "$bench: the daemon at $1 did not answer" >&2
    exit 1
}

start_two_daemons() {
    berth_port=$(free_port)
    berth_docker_port=$(free_port)
    mkdir -p "$work/berth" "$work/dockerd/data" "$work/dockerd/exec" "$DOCKER_CONFIG"
    BERTH_ADMIN_TOKEN=$token "$berth" serve --root "$work/berth/root" --run-dir "$work/berth/run" \
        --listen "127.0.0.1:$berth_port" --docker-listen "127.0.0.1:$berth_docker_port" --bridge none \
        >"$work/berth/daemon.log" 2>&1 &
    berth_pid=$!
    dockerd_port=$(free_port)
    dockerd --data-root "$work/dockerd/data" --exec-root "$work/dockerd/exec" -H "$D" -H "tcp://127.0.0.1:$dockerd_port" \
        --pidfile "$work/dockerd/pid" --iptables=false --ip-masq=false --bridge=none >"$work/dockerd/daemon.log" 2>&1 &
    dockerd_pid=$!
    wait_for "$B"
    wait_for "$D"
    echo "== berth: $berth"
    echo "== dockerd: $(dockerd --version)"
    echo "== client: $(docker --version); berth answers API $(DOCKER_HOST=$B docker version -f '{{.Server.APIVersion}}'), dockerd $(DOCKER_HOST=$D docker version -f '{{.Server.APIVersion}}')"
    echo "== machine: $(nproc) CPUs, $(free -g | awk '/Mem:/ {print $2}') GB, load $(cut -d' ' -f1-3 /proc/loadavg)"

    # The same busybox root filesystem in both.
    "$repo/scripts/busybox-rootfs.sh" "$work/busybox.tar"
    for host in "$B" "$D"; do
        DOCKER_HOST=$host docker import -c 'CMD ["sh"]' "$work/busybox.tar" busybox:latest >/dev/null
    done
}

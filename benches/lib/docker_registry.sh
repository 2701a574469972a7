# Debian's docker-registry (distribution 2.8), the reference registry of the benchmarks, sourced
# by docker_api.sh, pull_push.sh and registry_server.sh.
#
#   start_docker_registry DIR   a registry on 127.0.0.1 (a free port) with its storage, config and
#                               log under DIR; returns once it answers. Sets registry_pid and
#                               registry_host (HOST:PORT); the caller stops it by that PID.
start_docker_registry() {
    local dir=$1 port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    mkdir -p "$dir"
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
http:
  addr: 127.0.0.1:$port
  secret: berth-bench
EOF
    docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
    registry_pid=$!
    registry_host=127.0.0.1:$port
    for _ in $(seq 200); do
        python3 -c "import urllib.request; urllib.request.urlopen('http://$registry_host/v2/')" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "docker-registry in $dir does not answer on $registry_host" >&2
    return 1
}

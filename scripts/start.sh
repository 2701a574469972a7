#!/usr/bin/env bash
# The one command to run berth on this machine: installs what is missing (scripts/setup.sh),
# builds the dashboard and the `berth` binary, starts `berth serve` with its defaults, and makes a
# local `busybox` image available (built from Debian's busybox-static, imported through berth
# itself; no network). Runs in the foreground; Ctrl-C stops the daemon.
#
# Settings (environment): BERTH_ROOT (default /var/lib/berth), BERTH_RUN_DIR (default /run/berth),
# BERTH_LISTEN (default 127.0.0.1:7380; a non-loopback address is refused without TLS unless
# BERTH_INSECURE=true: `berth serve --insecure`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BERTH_ROOT="${BERTH_ROOT:-/var/lib/berth}"
BERTH_RUN_DIR="${BERTH_RUN_DIR:-/run/berth}"
BERTH_LISTEN="${BERTH_LISTEN:-127.0.0.1:7380}"

if [ "$(id -u)" != 0 ]; then
  echo "start.sh: berth serve needs root (namespaces, mounts, cgroups); run it with sudo" >&2
  exit 1
fi

"$ROOT/scripts/setup.sh"
export PATH="$ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"
cd "$ROOT"

echo "== start: building the dashboard and berth (release)"
cargo fetch --locked
trunk build --release --offline
cargo build --release --locked -p berth
install -m 0755 target/release/berth /usr/local/bin/berth

export BERTH_HOST="unix://$BERTH_RUN_DIR/berth.sock"
berth serve --root "$BERTH_ROOT" --run-dir "$BERTH_RUN_DIR" --listen "$BERTH_LISTEN" &
daemon=$!
trap 'kill -TERM "$daemon" 2>/dev/null; wait "$daemon"' INT TERM

for _ in $(seq 1 100); do
  berth version >/dev/null 2>&1 && break
  kill -0 "$daemon" 2>/dev/null || { wait "$daemon"; exit $?; }
  sleep 0.2
done
berth version >/dev/null

if ! berth image inspect busybox:latest >/dev/null 2>&1; then
  echo "== start: importing the local busybox image"
  rootfs="$(mktemp --suffix=.tar)"
  "$ROOT/scripts/busybox-rootfs.sh" "$rootfs"
  berth import --change 'CMD ["sh"]' --message "busybox-static from Debian" "$rootfs" busybox:latest
  rm -f "$rootfs"
fi

cat <<MSG

berth is running (pid $daemon).
  dashboard:  http://$BERTH_LISTEN/
  CLI:        berth images        (talks to $BERTH_HOST)
  state:      $BERTH_ROOT, $BERTH_RUN_DIR
Press Ctrl-C to stop.
MSG
berth images
wait "$daemon"

#!/usr/bin/env bash
# Installs everything berth needs to build, serve and test on Debian 12 (root). Idempotent:
# every step checks first and skips what is already there, so a re-run takes seconds.
#
#   scripts/setup.sh          what `berth serve` needs: Rust wasm target, trunk, wasm-bindgen-cli,
#                             wasm-opt (npm binaryen), busybox-static for the local busybox image
#   scripts/setup.sh --test   also the peers the test suite compares against (skopeo, umoci,
#                             Docker Engine 20.10, docker-compose, docker-py, testcontainers, ...)
#   scripts/setup.sh --bench  also the peers only the benchmarks run (crun, podman, ...)
#   scripts/setup.sh --fuzz   also what scripts/fuzz.sh needs (a nightly toolchain, cargo-fuzz);
#                             --test and --bench install cargo-fuzz only (the tests smoke-run
#                             the targets on stable, without a sanitizer)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WITH_TEST=0
WITH_BENCH=0
WITH_FUZZ=0
WITH_NIGHTLY=0
case "${1:-}" in
  --test) WITH_TEST=1; WITH_FUZZ=1 ;;
  --bench) WITH_TEST=1; WITH_BENCH=1; WITH_FUZZ=1 ;;
  --fuzz) WITH_FUZZ=1; WITH_NIGHTLY=1 ;;
  "") ;;
  *) echo "usage: scripts/setup.sh [--test|--bench|--fuzz]" >&2; exit 2 ;;
esac

# trunk 0.22 needs rustc >= 1.96; 0.21.14 is the newest that builds with this toolchain.
TRUNK_VERSION=0.21.14
# libFuzzer's driver for Rust; it builds the targets with a nightly toolchain (sanitizer flags).
CARGO_FUZZ_VERSION=0.13.2

export PATH="$HOME/.cargo/bin:$PATH"
log() { printf '== setup: %s\n' "$*"; }

# ---- Debian packages ------------------------------------------------------------------------
PACKAGES=(busybox-static pkg-config ca-certificates)
# libseccomp: the engine compiles containers' seccomp filters with it (as runc and crun do).
PACKAGES+=(libseccomp-dev)
# protoc: the CRI face's gRPC code (k8s-cri) is generated at build time; CNI plugins give CRI
# pods their network (`--cni-bin-dir`, /usr/lib/cni).
PACKAGES+=(protobuf-compiler containernetworking-plugins)
if [ "$WITH_TEST" = 1 ]; then
  # Peers the tests interoperate with and benchmarks compare against.
  PACKAGES+=(skopeo umoci oci-image-tool runc pigz hyperfine)
  # A second client of berth's registry server (push and pull), besides skopeo.
  PACKAGES+=(podman)
  # The registry the pull/push tests run (distribution 2.8), and htpasswd for its Basic auth.
  PACKAGES+=(docker-registry apache2-utils)
  # The CRI tests compare berth with containerd's CRI plugin (a private instance; containerd
  # comes with docker.io below, installed without starting it). Debian 12 has no cri-tools
  # (crictl, critest): the tests drive both with a gRPC client of their own.
  # The builder the build tests compare berth's images with (`buildah bud --layers`).
  PACKAGES+=(buildah)
  # The API tests: schemathesis in a virtual environment (below), curl as a TLS client.
  PACKAGES+=(python3-venv curl)
  # The dashboard's browser tests drive Debian's chromium with playwright-core (npm), never a
  # browser Playwright downloads itself.
  PACKAGES+=(chromium)
fi
if [ "$WITH_BENCH" = 1 ]; then
  PACKAGES+=(crun podman)
  # benches/network.sh compiles its static TCP stream tool (benches/tcpblast.c).
  PACKAGES+=(gcc libc6-dev)
fi
if [ "$WITH_FUZZ" = 1 ]; then
  # libfuzzer-sys compiles libFuzzer (C++).
  PACKAGES+=(g++)
fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---- Docker Engine 20.10, the reference of the Docker API tests ---------------------------------
# Debian's docker.io (dockerd, its containerd and runc, and a docker CLI 20.10 where none is on
# PATH) and docker-compose 1.29 (the Python Compose, which drives the API directly). The tests
# start their own private dockerd (tests/support/dockerd.rs); installing must start no system
# dockerd or containerd, which would rewrite the host's iptables and bridges: a policy-rc.d forbids
# service starts during the install (removed afterwards only if this script wrote it), and any
# dockerd or containerd process the install started anyway is stopped by its PID.
if [ "$WITH_TEST" = 1 ]; then
  docker_missing=()
  for p in docker.io docker-compose; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || docker_missing+=("$p")
  done
  if [ "${#docker_missing[@]}" -gt 0 ]; then
    log "apt-get install ${docker_missing[*]} (no service is started)"
    daemon_pids() { pgrep -x 'dockerd|containerd' | sort || true; }
    before="$(daemon_pids)"
    wrote_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\n# written by berth scripts/setup.sh for the docker.io install\nexit 101\n' \
        >/usr/sbin/policy-rc.d
      chmod 755 /usr/sbin/policy-rc.d
      wrote_policy=1
    fi
    apt-get update -qq
    status=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${docker_missing[@]}" >/dev/null || status=$?
    if [ "$wrote_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
    # The units the packages enabled would start a system dockerd at the next boot.
    if [ -d /run/systemd/system ]; then
      systemctl disable --quiet docker.service docker.socket containerd.service 2>/dev/null || true
    fi
    for pid in $(comm -13 <(printf '%s\n' "$before") <(daemon_pids)); do
      log "stopping $(cat "/proc/$pid/comm" 2>/dev/null) (PID $pid), started by the install"
      kill -TERM "$pid" 2>/dev/null || true
    done
    [ "$status" = 0 ] || exit "$status"
  fi
fi

# ---- Rust target for the dashboard ----------------------------------------------------------
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# ---- rustfmt and clippy (the test command checks both) ---------------------------------------
for component in rustfmt clippy; do
  if ! rustup component list --installed | grep -q "^$component"; then
    log "rustup component add $component"
    rustup component add "$component"
  fi
done

# has_exact BINARY "exact first line of BINARY --version"
has_exact() { command -v "$1" >/dev/null && [ "$("$1" --version 2>/dev/null | head -n1)" = "$2" ]; }

# ---- fuzzing: cargo-fuzz, and the nightly toolchain it builds with (the rustup dist server is
# reachable wherever rustup is; a minimal profile is enough: no -Zbuild-std, so no rust-src) ----
if [ "$WITH_FUZZ" = 1 ]; then
  # The tests' smoke builds on stable without a sanitizer; the real runs need nightly.
  if [ "$WITH_NIGHTLY" = 1 ] && ! rustup run nightly rustc --version >/dev/null 2>&1; then
    log "rustup toolchain install nightly --profile minimal"
    rustup toolchain install nightly --profile minimal
  fi
  if ! has_exact cargo-fuzz "cargo-fuzz $CARGO_FUZZ_VERSION"; then
    log "cargo install cargo-fuzz $CARGO_FUZZ_VERSION (about 2 minutes)"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
  fi
fi

# ---- trunk ------------------------------------------------------------------------------------
if ! has_exact trunk "trunk $TRUNK_VERSION"; then
  log "cargo install trunk $TRUNK_VERSION (about 5 minutes)"
  cargo install trunk --version "$TRUNK_VERSION" --locked
fi

# ---- wasm-bindgen-cli: must equal the wasm-bindgen crate in Cargo.lock ---------------------
WBG="$(awk '$0=="name = \"wasm-bindgen\"" {getline; gsub(/version = |"/, ""); print; exit}' "$ROOT/Cargo.lock")"
if [ -z "$WBG" ]; then echo "setup: no wasm-bindgen in Cargo.lock" >&2; exit 1; fi
if ! has_exact wasm-bindgen "wasm-bindgen $WBG"; then
  log "cargo install wasm-bindgen-cli $WBG (about 2 minutes)"
  # With --locked, some versions want crates this registry lacks; a fresh resolve works.
  cargo install wasm-bindgen-cli --version "$WBG" --locked \
    || cargo install wasm-bindgen-cli --version "$WBG"
fi

# ---- npm: wasm-opt from binaryen (Debian's wasm-opt 108 produces a wasm that fails to start),
# xterm.js for the dashboard's terminal, playwright-core for its browser tests --------------------
if [ ! -x "$ROOT/node_modules/.bin/wasm-opt" ] \
  || ! cmp -s "$ROOT/package-lock.json" "$ROOT/node_modules/.package-lock.json.installed" 2>/dev/null; then
  log "npm ci"
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$ROOT/package-lock.json" "$ROOT/node_modules/.package-lock.json.installed"
fi

# ---- cargo-nextest runs the test suite --------------------------------------------------------
if [ "$WITH_TEST" = 1 ] && ! cargo nextest --version >/dev/null 2>&1; then
  log "cargo install cargo-nextest (about 3 minutes)"
  cargo install cargo-nextest --locked
fi

# ---- Python tools of the API tests (schemathesis against the OpenAPI document) and of the API
# benchmark (a WebSocket client), in their own virtual environment ------------------------------
if [ "$WITH_TEST" = 1 ]; then
  VENV=/opt/berth-test-venv
  ST_VERSION=3.39.16
  # The newest Hypothesis this schemathesis works with (later ones removed an internal it uses).
  HYPOTHESIS_VERSION=6.131.14
  # pip_has NAME VERSION (the output is read whole first: with pipefail, a `grep -q` that stops
  # reading early makes pip die of SIGPIPE, and the check failed on every run)
  pip_has() { local info; info="$("$VENV/bin/pip" show "$1" 2>/dev/null)" && grep -qx "Version: $2" <<<"$info"; }
  if [ "$("$VENV/bin/st" --version 2>/dev/null)" != "st, version $ST_VERSION" ] \
    || ! pip_has hypothesis "$HYPOTHESIS_VERSION"; then
    log "pip install schemathesis $ST_VERSION (in $VENV)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "schemathesis==$ST_VERSION" "hypothesis==$HYPOTHESIS_VERSION"
  fi
  # The Docker API client tests: docker-py and testcontainers (Python), driving berth and dockerd.
  DOCKER_PY_VERSION=7.2.0
  TESTCONTAINERS_VERSION=4.15.0
  if ! pip_has docker "$DOCKER_PY_VERSION" || ! pip_has testcontainers "$TESTCONTAINERS_VERSION"; then
    log "pip install docker $DOCKER_PY_VERSION testcontainers $TESTCONTAINERS_VERSION (in $VENV)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "docker==$DOCKER_PY_VERSION" "testcontainers==$TESTCONTAINERS_VERSION"
  fi
  if [ "$WITH_BENCH" = 1 ] && ! "$VENV/bin/python" -c 'import websockets' 2>/dev/null; then
    log "pip install websockets (in $VENV)"
    "$VENV/bin/pip" install --quiet "websockets>=13"
  fi
fi

log "ready"

#!/usr/bin/env bash
# The one command that runs every check and test of berth: installs what is missing (including
# the peer tools the tests compare against), builds the dashboard and the workspace, then runs
# formatting and lint checks and the whole test suite. Needs root (tests mount, unshare, ...).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "$(id -u)" != 0 ]; then
  echo "test.sh: the tests need root (mounts, namespaces); run it with sudo" >&2
  exit 1
fi

"$ROOT/scripts/setup.sh" --test
export PATH="$ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"
cd "$ROOT"

step() { printf '\n== test: %s\n' "$*"; }

step "cargo fetch"
cargo fetch --locked
step "rustfmt"
cargo fmt --all --check
step "dashboard (trunk build --release)"
trunk build --release --offline
step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p berth-web --target wasm32-unknown-unknown --locked -- -D warnings
step "build"
cargo build --workspace --locked
step "tests"
cargo nextest run --workspace --locked --no-fail-fast
step "fuzz smoke (each target a few seconds; scripts/fuzz.sh SECONDS for a real run)"
FUZZ_TOOLCHAIN=stable FUZZ_SANITIZER=none FUZZ_DEV=1 "$ROOT/scripts/fuzz.sh" 5

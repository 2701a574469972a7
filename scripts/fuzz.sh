#!/usr/bin/env bash
# Runs berth's fuzz targets (fuzz/, cargo-fuzz with libFuzzer) one after the other, SECONDS each,
# and prints the executions of each. Exits non-zero when a target crashed: its input is saved in
# fuzz/artifacts/TARGET/ (replay it with `cargo +nightly fuzz run TARGET FILE`).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 60 seconds, every target
#
# The committed seeds (fuzz/corpus/TARGET/) are read, never written: the inputs a run finds go
# to a scratch corpus removed at the end, or to FUZZ_CORPUS_DIR/TARGET when that is set (to keep
# them between runs). Needs root (layer_extract runs in a private mount namespace) and what
# `scripts/setup.sh --fuzz` installs (a nightly toolchain and cargo-fuzz).
#
# FUZZ_SANITIZER=none builds without AddressSanitizer, which works on the stable toolchain
# (FUZZ_TOOLCHAIN=stable: no nightly needed); FUZZ_DEV=1 builds unoptimised (quicker to build,
# slower to run). The test suite's smoke uses both: it checks every target still builds and runs
# from its seeds; the sanitizer run on nightly is the real one.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_EACH="${1:-60}"
shift || true
case "$SECONDS_EACH" in
  '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac
export PATH="$HOME/.cargo/bin:$PATH"
TOOLCHAIN="${FUZZ_TOOLCHAIN:-nightly}"
SANITIZER="${FUZZ_SANITIZER:-address}"
PROFILE=release
BUILD_FLAGS=(--sanitizer "$SANITIZER")
if [ "${FUZZ_DEV:-0}" = 1 ]; then
  PROFILE=debug
  BUILD_FLAGS+=(--dev)
fi
# Its own target directory: the sanitizer flags rebuild every crate.
TARGET_DIR="${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/fuzz}"

if ! cargo fuzz --version >/dev/null 2>&1 || ! rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-fuzz or the $TOOLCHAIN toolchain is missing: run scripts/setup.sh --fuzz" >&2
  exit 1
fi

cd "$ROOT"
if [ "$#" -gt 0 ]; then
  TARGETS=("$@")
else
  mapfile -t TARGETS < <(cargo "+$TOOLCHAIN" fuzz list)
fi

SCRATCH="$(mktemp -d -t berth-fuzz.XXXXXX)"
trap 'rm -rf "$SCRATCH"' EXIT

echo "== fuzz: building the targets (cargo +$TOOLCHAIN fuzz build ${BUILD_FLAGS[*]}: debug assertions)"
if ! cargo "+$TOOLCHAIN" fuzz build "${BUILD_FLAGS[@]}" --target-dir "$TARGET_DIR" >"$SCRATCH/build.log" 2>&1; then
  tail -n 60 "$SCRATCH/build.log"
  exit 1
fi
BIN_DIR="$TARGET_DIR/$(rustc "+$TOOLCHAIN" -vV | sed -n 's/^host: //p')/$PROFILE"
# The targets' temporary directories (layer scratch, rootfs) go under SCRATCH too.
export TMPDIR="$SCRATCH"

failed=()
rows=()
total_start=$SECONDS
for target in "${TARGETS[@]}"; do
  bin="$BIN_DIR/$target"
  if [ ! -x "$bin" ]; then
    echo "fuzz.sh: no such target: $target (cargo fuzz list)" >&2
    exit 2
  fi
  corpus="${FUZZ_CORPUS_DIR:+$FUZZ_CORPUS_DIR/$target}"
  corpus="${corpus:-$SCRATCH/corpus/$target}"
  artifacts="$ROOT/fuzz/artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  log="$SCRATCH/$target.log"
  max_len=4096
  [ "$target" = layer_extract ] && max_len=16384
  echo "== fuzz: $target for ${SECONDS_EACH}s"
  status=0
  "$bin" "$corpus" "$ROOT/fuzz/corpus/$target" \
    -max_total_time="$SECONDS_EACH" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)"
  execs="${execs:-0}"
  per_second="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)"
  if [ "$status" = 0 ]; then
    result=ok
  else
    artifact="$(sed -n 's/.*Test unit written to //p' "$log" | tail -n1)"
    result="CRASH ${artifact:-(exit $status)}"
    failed+=("$target")
    echo "---- $target: last lines of its log"
    tail -n 40 "$log"
    echo "----"
  fi
  rows+=("$(printf '%-26s %12s %10s  %s' "$target" "$execs" "${per_second:-0}" "$result")")
done

echo
printf '%-26s %12s %10s  %s\n' TARGET EXECUTIONS EXEC/S RESULT
printf '%s\n' "${rows[@]}"
echo "== fuzz: ${#TARGETS[@]} targets in $((SECONDS - total_start))s, ${#failed[@]} crashed"
[ "${#failed[@]}" = 0 ]

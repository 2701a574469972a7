# Shared by the benchmarks that measure one berth binary: sourced after `repo` is set.
#
#   berth=$(release_berth)   $BERTH_BIN when set, else a release build made here (its path)

release_berth() {
    if [ -n "${BERTH_BIN:-}" ]; then
        echo "$BERTH_BIN"
        return
    fi
    echo "building berth (release)..." >&2
    (cd "$repo" && cargo build --release --quiet -p berth) >&2
    local target_dir
    target_dir=$(cd "$repo" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    echo "$target_dir/release/berth"
}

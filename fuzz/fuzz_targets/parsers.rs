//! The option parsers of `berth_types` that the CLI's flags, compose files, the dashboard's run
//! form and the Docker API translation share: sizes (`--memory 512m`), CPUs, restart policies,
//! published ports, volume, mount and tmpfs specs, Go durations (`--health-interval 1m30s`),
//! RFC 3339 times, signals and object names; and the human forms sizes and durations are shown
//! in. Every one runs on each input; bad input must be an error, never a panic.

#![no_main]

use berth_types::format::{human_duration, human_size, parse_go_duration_ns, parse_time, split_tag};
use berth_types::mount::{
    clean_absolute, clean_clamped, parse_mount, parse_tmpfs, parse_volume, validate_mounts,
};
use berth_types::name::{check_object_name, ObjectKind};
use berth_types::parse::{parse_cpus, parse_memory, parse_publish, parse_restart};
use berth_types::signal::Signal;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(bytes) = parse_memory(text) {
        let _ = human_size(bytes);
    }
    let _ = parse_cpus(text);
    let _ = parse_restart(text);
    let _ = parse_publish(text);
    if let Some(ns) = parse_go_duration_ns(text) {
        let _ = human_duration(ns / 1_000_000_000);
    }
    let _ = parse_time(text);
    let _ = split_tag(text);
    if let Ok(signal) = text.parse::<Signal>() {
        assert_eq!(Signal::from_number(signal.number()).map(|s| s.number()).ok(), Some(signal.number()));
    }
    for kind in [
        ObjectKind::Container,
        ObjectKind::Volume,
        ObjectKind::Network,
        ObjectKind::Project,
        ObjectKind::User,
        ObjectKind::Team,
        ObjectKind::Token,
    ] {
        let _ = check_object_name(kind, text);
    }
    let _ = clean_absolute(text);
    let _ = clean_clamped(text);
    // Several specs, one a line: what a run with many `-v`/`--mount`/`--tmpfs` checks.
    let mut mounts = Vec::new();
    for line in text.lines() {
        mounts.extend(parse_volume(line).ok());
        mounts.extend(parse_mount(line).ok());
        mounts.extend(parse_tmpfs(line).ok());
    }
    let _ = validate_mounts(&mounts);
    // Numbers as they come in JSON bodies and are shown.
    if let Some(chunk) = data.get(..8) {
        let n = i64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let _ = human_duration(n);
        let _ = human_size(n as u64);
    }
});

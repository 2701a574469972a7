//! Layer extraction (`berth_engine::layer::unpack`) of untrusted tar bytes (plain, gzip or zstd).
//! The property: whatever the archive holds, nothing lands outside the target directory, and
//! bad input is an error, never a panic.
//!
//! Input: one byte of options (see `options`), then the blob.
//!
//! The process runs in a private mount namespace in which every file system is read-only but a
//! scratch directory (holding the target and nothing else) and the fuzz directory (corpus and
//! artifacts). So a bug cannot write to the host, and is seen when it tries:
//! - a write outside the scratch directory fails with EROFS, and a hard link out of it with
//!   EXDEV (another mount): either error means the extractor reached outside the target;
//! - a write into the scratch directory beside the target shows up as a new entry there.

#![no_main]

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use berth_engine::layer::{unpack, Compression, UnpackOptions};
use libfuzzer_sys::fuzz_target;
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

/// The scratch directory: `target/` and nothing else.
fn scratch() -> &'static Path {
    static SCRATCH: OnceLock<PathBuf> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("berth-fuzz-layer-").tempdir().expect("scratch dir").keep();
        let mut writable = vec![dir.clone(), PathBuf::from(env!("CARGO_MANIFEST_DIR"))];
        // Corpus directories given on the command line (libFuzzer adds new inputs there).
        writable.extend(std::env::args().skip(1).map(PathBuf::from).filter(|p| p.is_dir()));
        let writable: Vec<PathBuf> = writable.iter().filter_map(|p| p.canonicalize().ok()).collect();
        read_only_host(&writable);
        dir
    })
}

/// Enters a private mount namespace in which every mount is read-only except `writable`.
fn read_only_host(writable: &[PathBuf]) {
    unshare(CloneFlags::CLONE_NEWNS)
        .expect("layer_extract needs root (a private mount namespace keeps the host read-only)");
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .expect("making / private");
    for dir in writable {
        mount(Some(dir), dir, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .expect("bind-mounting a writable directory");
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("reading mountinfo");
    let mut seen = HashSet::new();
    for line in mountinfo.lines() {
        let Some(point) = line.split(' ').nth(4) else { continue };
        let path = Path::new(point);
        // Device nodes, proc and sysfs hold no files an extraction could write.
        let special = ["/proc", "/sys", "/dev"].iter().any(|p| path.starts_with(p));
        if special || point.contains('\\') || writable.iter().any(|w| path.starts_with(w)) {
            continue;
        }
        if !seen.insert(point.to_string()) {
            continue;
        }
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        let done = mount(None::<&str>, path, None::<&str>, flags, None::<&str>);
        if point == "/" {
            done.expect("remounting / read-only");
        }
    }
}

/// The first byte's bits: the unpack options a layer, `docker cp` or `build` may use.
fn options(bits: u8) -> UnpackOptions {
    UnpackOptions {
        allow_device_nodes: bits & 1 != 0,
        plain: bits & 2 != 0,
        in_root: bits & 4 != 0,
        no_overwrite_dir_non_dir: bits & 8 != 0,
        owner: (bits & 16 != 0).then_some((1000, 1000)),
        ids: None,
        // The flush changes no byte that lands: fuzzing skips its fsyncs.
        durable: false,
    }
}

fuzz_target!(|data: &[u8]| {
    let scratch = scratch();
    let Some((&bits, blob)) = data.split_first() else { return };
    let target = scratch.join("target");
    fs::create_dir(&target).expect("creating the target");
    let result = unpack(blob, Compression::detect(blob), &target, options(bits));
    if let Err(e) = &result {
        let message = e.to_string();
        assert!(
            !message.contains("Read-only file system") && !message.contains("cross-device link"),
            "the extraction reached outside its target: {message}"
        );
    }
    let beside: Vec<_> = fs::read_dir(scratch)
        .expect("listing the scratch directory")
        .map(|e| e.expect("reading the scratch directory").file_name())
        .filter(|name| name != "target")
        .collect();
    assert!(beside.is_empty(), "the extraction wrote outside its target: {beside:?}");
    fs::remove_dir_all(&target).expect("removing the target");
});

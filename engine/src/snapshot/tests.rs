//! Snapshot store tests (they mount, so they need root). Every mount is held by a guard that
//! unmounts on drop, so a failing assertion leaves no mount behind.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;

use tar::{EntryType, Header};

use super::*;

fn tar_of(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in entries {
        let mut h = Header::new_gnu();
        match content {
            Some(data) => {
                h.set_entry_type(EntryType::Regular);
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
            }
            None => {
                h.set_entry_type(EntryType::Directory);
                h.set_size(0);
                h.set_mode(0o755);
            }
        }
        h.set_mtime(1_600_000_000);
        builder.append_data(&mut h, name, content.unwrap_or(b"")).unwrap();
    }
    builder.into_inner().unwrap()
}

/// Bottom layer: files, a directory with two files.
fn lower_layer() -> Vec<u8> {
    tar_of(&[
        ("a", Some(b"a from lower")),
        ("b", Some(b"b from lower")),
        ("dir/", None),
        ("dir/x", Some(b"x")),
        ("dir/y", Some(b"y")),
        ("gone/", None),
        ("gone/deep", Some(b"deep")),
    ])
}

/// Top layer: deletes `a` and `gone`, makes `dir` opaque with one new file, adds `new`.
fn upper_layer() -> Vec<u8> {
    tar_of(&[
        (".wh.a", Some(b"")),
        (".wh.gone", Some(b"")),
        ("dir/", None),
        ("dir/.wh..wh..opq", Some(b"")),
        ("dir/z", Some(b"z")),
        ("new", Some(b"new from upper")),
    ])
}

fn open_store(kind: Option<SnapshotterKind>) -> (tempfile::TempDir, SnapshotStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(&dir.path().join("snapshots"), kind).unwrap();
    (dir, store)
}

/// Unmounts on drop.
struct Mounted<'a> {
    store: &'a SnapshotStore,
    key: &'a str,
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.store.unmount_writable(self.key) {
            eprintln!("unmounting {}: {e}", self.key);
        }
    }
}

fn mount<'a>(store: &'a SnapshotStore, key: &'a str, target: &Path) -> Mounted<'a> {
    store.mount_writable(key, target).unwrap();
    Mounted { store, key }
}

/// Path → type, mode, size, content of everything under `dir`.
fn describe(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(path: &Path, base: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let meta = fs::symlink_metadata(path).unwrap();
        let content = if meta.is_file() {
            String::from_utf8_lossy(&fs::read(path).unwrap()).into_owned()
        } else {
            String::new()
        };
        out.insert(
            path.strip_prefix(base).unwrap().to_path_buf(),
            format!("{:o} {} {}", meta.mode(), meta.mtime(), content),
        );
        if meta.is_dir() {
            for entry in fs::read_dir(path).unwrap() {
                walk(&entry.unwrap().path(), base, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn the_mount_root_attribute_agrees_with_mountinfo() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    std::fs::create_dir(&target).unwrap();
    let mut paths: Vec<std::path::PathBuf> =
        ["/", "/proc", "/sys", "/sys/fs/cgroup", "/etc", "/proc/1"].iter().map(Into::into).collect();
    paths.push(target.clone());
    for path in &paths {
        let path = std::fs::canonicalize(path).unwrap();
        let listed = overlay::listed_in_mountinfo(&path);
        assert_eq!(overlay::mount_root_attribute(&path).unwrap_or(listed), listed, "{}", path.display());
        assert_eq!(overlay::is_mountpoint(&path), listed, "{}", path.display());
    }
    // A bind mount of the directory onto itself, removed at once: both see it.
    nix::mount::mount(Some(&target), &target, None::<&str>, nix::mount::MsFlags::MS_BIND, None::<&str>)
        .unwrap();
    let mounted = (overlay::is_mountpoint(&target), overlay::listed_in_mountinfo(&target));
    nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH).unwrap();
    assert_eq!(mounted, (true, true));
    assert!(!overlay::is_mountpoint(&target));
}

#[test]
fn open_picks_overlay_here_and_honours_a_forced_kind() {
    let (_dir, store) = open_store(None);
    assert_eq!(store.kind(), SnapshotterKind::Overlay, "overlayfs works on this machine");
    let (_dir, store) = open_store(Some(SnapshotterKind::Copy));
    assert_eq!(store.kind(), SnapshotterKind::Copy);
    assert_eq!(names(store.root()), ["containers", "layers", "tmp"]);
    assert!(names(&store.root().join("tmp")).is_empty(), "the probe cleans up after itself");
    assert_eq!("overlay".parse::<SnapshotterKind>().unwrap(), SnapshotterKind::Overlay);
    assert_eq!("copy".parse::<SnapshotterKind>().unwrap(), SnapshotterKind::Copy);
    assert!("zfs".parse::<SnapshotterKind>().is_err());
}

#[test]
fn open_removes_leftovers_of_interrupted_work() {
    let (dir, store) = open_store(Some(SnapshotterKind::Copy));
    let tmp = store.root().join("tmp");
    fs::create_dir_all(tmp.join("unpack-1/fs/etc")).unwrap();
    fs::write(tmp.join("unpack-1/fs/etc/half"), b"half").unwrap();
    fs::create_dir_all(tmp.join("probe-2/merged")).unwrap();
    let store = SnapshotStore::open(&dir.path().join("snapshots"), Some(SnapshotterKind::Copy)).unwrap();
    assert!(names(&store.root().join("tmp")).is_empty());
    assert!(store.list_layers().unwrap().is_empty());
}

#[test]
fn layers_unpack_once_and_are_listed_sized_and_removed() {
    let (_dir, store) = open_store(Some(SnapshotterKind::Copy));
    let tar = lower_layer();
    let diff_id = store.unpack_layer(&tar[..], Compression::None, None).unwrap();
    assert_eq!(diff_id, crate::digest::sha256_of(&tar));
    assert!(store.has_layer(&diff_id));
    assert_eq!(store.list_layers().unwrap(), vec![diff_id.clone()]);
    assert_eq!(store.layer_size(&diff_id).unwrap(), (12 + 12 + 1 + 1 + 4) as u64);
    assert_eq!(fs::read(store.layer_path(&diff_id).join("dir/x")).unwrap(), b"x");

    // Present and expected: the blob is hashed to show it is that layer, not extracted again
    // (the layer's files are untouched: the same inode).
    let ino = |p: &std::path::Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
    let before = ino(&store.layer_path(&diff_id).join("dir/x"));
    assert_eq!(store.unpack_layer(&tar[..], Compression::None, Some(&diff_id)).unwrap(), diff_id);
    assert_eq!(ino(&store.layer_path(&diff_id).join("dir/x")), before);
    // Another blob that claims to be the present layer (a config may name any diff ID) is
    // refused, not given the layer.
    let other = upper_layer();
    match store.unpack_layer(&other[..], Compression::None, Some(&diff_id)).unwrap_err() {
        Error::DigestMismatch { expected, actual, .. } => {
            assert_eq!(expected, diff_id);
            assert_eq!(actual, crate::digest::sha256_of(&other));
        }
        e => panic!("expected a digest mismatch, got {e}"),
    }
    // A blob shown to be the layer is recorded as its source; other blobs are not.
    let blob = crate::digest::sha256_of(b"the compressed blob");
    assert!(!store.is_layer_source(&diff_id, &blob));
    store.record_layer_source(&diff_id, &blob).unwrap();
    assert!(store.is_layer_source(&diff_id, &blob));
    assert!(!store.is_layer_source(&diff_id, &crate::digest::sha256_of(b"another")));

    let freed = store.remove_layer(&diff_id).unwrap();
    assert!(freed > 0);
    assert!(!store.has_layer(&diff_id));
    assert!(store.list_layers().unwrap().is_empty());
    assert_eq!(store.remove_layer(&diff_id).unwrap(), 0);
    assert!(store.layer_size(&diff_id).is_err());
    assert!(names(&store.root().join("tmp")).is_empty());
}

#[test]
fn a_wrong_diff_id_keeps_nothing() {
    let (_dir, store) = open_store(Some(SnapshotterKind::Copy));
    let tar = lower_layer();
    let wrong = crate::digest::sha256_of(b"something else");
    let err = store.unpack_layer(&tar[..], Compression::None, Some(&wrong)).unwrap_err();
    match err {
        Error::DigestMismatch { expected, actual, .. } => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, crate::digest::sha256_of(&tar));
        }
        other => panic!("expected a digest mismatch, got {other}"),
    }
    assert!(store.list_layers().unwrap().is_empty());
    assert!(names(&store.root().join("tmp")).is_empty());
    // An unsafe layer keeps nothing either.
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Regular);
    h.set_size(1);
    h.as_old_mut().name[..6].copy_from_slice(b"../bad");
    h.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&h, &b"x"[..]).unwrap();
    let bad = builder.into_inner().unwrap();
    assert!(matches!(store.unpack_layer(&bad[..], Compression::None, None), Err(Error::UnsafeEntry { .. })));
    assert!(store.list_layers().unwrap().is_empty());
    assert!(names(&store.root().join("tmp")).is_empty());
}

#[test]
fn concurrent_unpacks_of_one_layer_leave_one_good_copy() {
    let (_dir, store) = open_store(Some(SnapshotterKind::Copy));
    let tar = lower_layer();
    let results: Vec<Digest> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| store.unpack_layer(&tar[..], Compression::None, None).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(results.iter().all(|d| *d == results[0]));
    assert_eq!(store.list_layers().unwrap(), vec![results[0].clone()]);
    assert_eq!(names(&store.layer_path(&results[0])), ["a", "b", "dir", "gone"]);
    assert!(names(&store.root().join("tmp")).is_empty());
}

#[test]
fn mounts_and_unmounts_of_one_writable_layer_do_not_race() {
    let (dir, store) = open_store(Some(SnapshotterKind::Overlay));
    let lower = store.unpack_layer(&lower_layer()[..], Compression::None, None).unwrap();
    store.create_writable("one", &[lower]).unwrap();
    let target = dir.path().join("m");
    fs::create_dir(&target).unwrap();
    // Whatever a failure leaves mounted goes.
    struct Unmount<'a>(&'a SnapshotStore, &'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = self.0.unmount_all_at("one", self.1);
        }
    }
    let _unmount = Unmount(&store, &target);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (store, target) = (&store, &target);
            s.spawn(move || {
                for i in 0..200 {
                    if (i + t) % 2 == 0 {
                        match store.mount_writable("one", target) {
                            Ok(()) | Err(Error::Conflict(_)) => {}
                            Err(e) => panic!("{e}"),
                        }
                    } else {
                        store.unmount_writable("one").unwrap();
                    }
                }
            });
        }
    });
    store.unmount_writable("one").unwrap();
    let stacked = overlay::is_mountpoint(&target);
    store.unmount_all_at("one", &target).unwrap();
    assert!(!stacked, "a mount was left without a record (or stacked on another)");
    assert!(!overlay::is_mountpoint(&target));
    store.remove_writable("one").unwrap();
}

fn writable_layers_share_layers_and_apply_whiteouts(kind: SnapshotterKind) {
    let (dir, store) = open_store(Some(kind));
    let lower = store.unpack_layer(&lower_layer()[..], Compression::None, None).unwrap();
    let upper = store.unpack_layer(&upper_layer()[..], Compression::None, None).unwrap();
    let layers_before = describe(&store.root().join("layers"));
    store.create_writable("one", &[lower.clone(), upper.clone()]).unwrap();
    store.create_writable("two", &[lower.clone(), upper.clone()]).unwrap();
    assert_eq!(store.list_writable().unwrap(), ["one", "two"]);
    assert_eq!(store.layers_in_use().unwrap(), HashSet::from([lower.clone(), upper.clone()]));
    assert_eq!(store.writable_layers("one").unwrap(), [lower.clone(), upper.clone()]);
    assert!(matches!(store.remove_layer(&lower), Err(Error::Conflict(_))));

    let (m1, m2) = (dir.path().join("m1"), dir.path().join("m2"));
    fs::create_dir(&m1).unwrap();
    fs::create_dir(&m2).unwrap();
    {
        let _one = mount(&store, "one", &m1);
        let _two = mount(&store, "two", &m2);
        assert!(matches!(store.mount_writable("one", &m2), Err(Error::Conflict(_))));
        for m in [&m1, &m2] {
            assert_eq!(names(m), ["b", "dir", "new"], "whiteouts hide a and gone");
            assert_eq!(names(&m.join("dir")), ["z"], "the opaque dir hides x and y");
            assert_eq!(fs::read(m.join("b")).unwrap(), b"b from lower");
            assert_eq!(fs::read(m.join("new")).unwrap(), b"new from upper");
        }
        fs::write(m1.join("b"), b"b changed in one").unwrap();
        fs::write(m1.join("written"), b"only in one").unwrap();
        fs::remove_file(m1.join("new")).unwrap();
        fs::remove_dir_all(m1.join("dir")).unwrap();
        fs::write(m2.join("dir/z"), b"z changed in two").unwrap();

        assert_eq!(names(&m1), ["b", "written"]);
        assert_eq!(names(&m2), ["b", "dir", "new"]);
        assert_eq!(fs::read(m2.join("b")).unwrap(), b"b from lower");
        assert_eq!(fs::read(m2.join("dir/z")).unwrap(), b"z changed in two");
        assert_eq!(describe(&store.root().join("layers")), layers_before, "layers are never written");
        let changes = store.writable_changes_path("one").unwrap();
        assert_eq!(fs::read(changes.join("written")).unwrap(), b"only in one");
        if kind == SnapshotterKind::Overlay {
            // The deletion of a lower file is a whiteout in the upper directory.
            let new = fs::symlink_metadata(changes.join("new")).unwrap();
            assert!(std::os::unix::fs::FileTypeExt::is_char_device(&new.file_type()));
        }
    }
    assert!(names(&m1).is_empty() && names(&m2).is_empty(), "both unmounted");
    // Changes persist across mounts.
    {
        let _one = mount(&store, "one", &m1);
        assert_eq!(fs::read(m1.join("written")).unwrap(), b"only in one");
    }
    store.remove_writable("one").unwrap();
    assert_eq!(store.list_writable().unwrap(), ["two"]);
    // Removing a mounted writable layer unmounts it first.
    store.mount_writable("two", &m2).unwrap();
    store.remove_writable("two").unwrap();
    assert!(!overlay::is_mountpoint(&m2));
    assert!(store.list_writable().unwrap().is_empty());
    assert!(store.layers_in_use().unwrap().is_empty());
    assert_eq!(describe(&store.root().join("layers")), layers_before);
    assert!(names(&store.root().join("tmp")).is_empty());
}

#[test]
fn overlay_writable_layers_share_layers_and_apply_whiteouts() {
    writable_layers_share_layers_and_apply_whiteouts(SnapshotterKind::Overlay);
}

#[test]
fn copy_writable_layers_share_layers_and_apply_whiteouts() {
    writable_layers_share_layers_and_apply_whiteouts(SnapshotterKind::Copy);
}

#[test]
fn writable_layer_errors_are_clear() {
    let (dir, store) = open_store(Some(SnapshotterKind::Copy));
    for key in ["", "../x", ".hidden", "a/b", &"k".repeat(129)] {
        assert!(matches!(store.create_writable(key, &[]), Err(Error::InvalidInput(_))), "{key:?}");
    }
    let missing = crate::digest::sha256_of(b"no such layer");
    let err = store.create_writable("c", std::slice::from_ref(&missing)).unwrap_err();
    assert!(err.to_string().contains(&missing.to_string()), "{err}");
    store.create_writable("c", &[]).unwrap();
    assert!(matches!(store.create_writable("c", &[]), Err(Error::Conflict(_))));
    assert!(store.mount_writable("nope", dir.path()).is_err());
    assert!(overlay::check_layer_count(501).is_err());
    store.remove_writable("c").unwrap();
    store.remove_writable("c").unwrap();
}

#[test]
fn overlay_mounts_more_layers_than_one_page_of_options_holds() {
    let (dir, store) = open_store(Some(SnapshotterKind::Overlay));
    let layers: Vec<Digest> = (0..80)
        .map(|i| {
            let name = format!("file{i}");
            let content = format!("layer {i}");
            let tar = tar_of(&[(name.as_str(), Some(content.as_bytes())), ("top", Some(content.as_bytes()))]);
            store.unpack_layer(&tar[..], Compression::None, None).unwrap()
        })
        .collect();
    let options: usize = layers.iter().map(|d| store.layer_path(d).as_os_str().len() + 1).sum();
    assert!(options > 4096, "the test needs more than a page of lowerdir ({options} bytes)");
    store.create_writable("many", &layers).unwrap();
    let target = dir.path().join("m");
    fs::create_dir(&target).unwrap();
    let _mounted = mount(&store, "many", &target);
    assert_eq!(fs::read_to_string(target.join("file0")).unwrap(), "layer 0");
    assert_eq!(fs::read_to_string(target.join("file79")).unwrap(), "layer 79");
    assert_eq!(fs::read_to_string(target.join("top")).unwrap(), "layer 79", "the last layer is on top");
}

#[test]
fn a_layer_made_without_durability_is_mounted_volatile_and_mounts_again_after_an_unmount() {
    let (dir, store) = open_store(Some(SnapshotterKind::Overlay));
    let lower = store.unpack_layer(&lower_layer()[..], Compression::None, None).unwrap();
    store.create_writable_with("rm", std::slice::from_ref(&lower), false).unwrap();
    store.create_writable("kept", &[lower]).unwrap();
    let target = dir.path().join("m");
    fs::create_dir(&target).unwrap();
    let volatile = |target: &Path| {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let line = mountinfo.lines().find(|l| l.split(' ').nth(4) == Some(target.to_str().unwrap())).unwrap();
        // `volatile`, shown as `fsync=volatile` since Linux 6.12.
        line.split(" - ").nth(1).unwrap().split(',').any(|o| o == "volatile" || o == "fsync=volatile")
    };
    {
        let _m = mount(&store, "rm", &target);
        assert!(volatile(&target));
        fs::write(target.join("written"), b"kept across mounts").unwrap();
    }
    // The kernel's marker of a volatile mount stays after the unmount; it is removed before the
    // next mount, which would fail otherwise.
    let marker = store.writable_dir("rm").join("work/work/incompat/volatile");
    assert!(marker.exists());
    {
        let _m = mount(&store, "rm", &target);
        assert_eq!(fs::read(target.join("written")).unwrap(), b"kept across mounts");
    }
    let _m = mount(&store, "kept", &target);
    assert!(!volatile(&target), "a durable layer is mounted with syncs");
}

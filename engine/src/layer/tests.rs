//! Layer unpack tests. Tars are built in memory; malicious names are written straight into the
//! header bytes (the tar crate's own setters refuse them). Every malicious case runs next to a
//! sentinel directory and checks that nothing outside the target changed.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::*;

const MTIME: u64 = 1_600_000_000;

/// A layer tar under construction.
struct Layer(tar::Builder<Vec<u8>>);

impl Layer {
    fn new() -> Layer {
        Layer(tar::Builder::new(Vec::new()))
    }

    fn header(kind: EntryType, name: &str, mode: u32, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        let raw = &mut h.as_old_mut().name;
        assert!(name.len() < raw.len());
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h
    }

    fn with_link(mut h: Header, target: &str) -> Header {
        let raw = &mut h.as_old_mut().linkname;
        raw[..target.len()].copy_from_slice(target.as_bytes());
        h
    }

    fn append(mut self, mut h: Header, data: &[u8]) -> Layer {
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn dir(self, name: &str, mode: u32) -> Layer {
        self.append(Self::header(EntryType::Directory, name, mode, 0), b"")
    }

    fn file(self, name: &str, content: &[u8], mode: u32) -> Layer {
        self.append(Self::header(EntryType::Regular, name, mode, content.len() as u64), content)
    }

    fn owned_file(self, name: &str, content: &[u8], uid: u64, gid: u64) -> Layer {
        let mut h = Self::header(EntryType::Regular, name, 0o640, content.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        self.append(h, content)
    }

    fn symlink(self, name: &str, target: &str) -> Layer {
        self.append(Self::with_link(Self::header(EntryType::Symlink, name, 0o777, 0), target), b"")
    }

    fn hardlink(self, name: &str, target: &str) -> Layer {
        self.append(Self::with_link(Self::header(EntryType::Link, name, 0o644, 0), target), b"")
    }

    fn node(self, kind: EntryType, name: &str, major: u32, minor: u32) -> Layer {
        let mut h = Self::header(kind, name, 0o666, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.append(h, b"")
    }

    fn pax(mut self, records: &[(&str, &[u8])]) -> Layer {
        self.0.append_pax_extensions(records.iter().map(|(k, v)| (*k, *v))).unwrap();
        self
    }

    fn finish(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// A target directory next to a sentinel directory that no layer may touch.
struct Scene {
    base: tempfile::TempDir,
    before: BTreeMap<PathBuf, String>,
}

impl Scene {
    fn new() -> Scene {
        let base = tempfile::tempdir().unwrap();
        fs::create_dir(base.path().join("target")).unwrap();
        fs::create_dir_all(base.path().join("sentinel/sub")).unwrap();
        fs::write(base.path().join("sentinel/secret"), b"secret").unwrap();
        fs::write(base.path().join("sentinel/sub/file"), b"file").unwrap();
        let before = describe_outside(base.path());
        Scene { base, before }
    }

    fn target(&self) -> PathBuf {
        self.base.path().join("target")
    }

    fn sentinel(&self) -> PathBuf {
        self.base.path().join("sentinel")
    }

    fn unpack(&self, tar: &[u8]) -> Result<UnpackStats> {
        unpack(tar, Compression::None, &self.target(), UnpackOptions::default())
    }

    fn assert_outside_untouched(&self) {
        assert_eq!(describe_outside(self.base.path()), self.before, "something outside the target changed");
    }
}

/// Everything under `base` except `target/`: type, mode, links, mtime, content.
fn describe_outside(base: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(path: &Path, base: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let meta = fs::symlink_metadata(path).unwrap();
        let content = if meta.is_file() {
            String::from_utf8_lossy(&fs::read(path).unwrap()).into_owned()
        } else {
            String::new()
        };
        let rel = path.strip_prefix(base).unwrap().to_path_buf();
        out.insert(rel, format!("{:o} {} {} {}", meta.mode(), meta.nlink(), meta.mtime(), content));
        if meta.is_dir() {
            for entry in fs::read_dir(path).unwrap() {
                let entry = entry.unwrap();
                if path == base && entry.file_name() == "target" {
                    continue;
                }
                walk(&entry.path(), base, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(base, base, &mut out);
    // The base's own mtime changes only if an entry was created next to the target.
    out
}

fn expect_unsafe(result: Result<UnpackStats>, entry: &str) -> String {
    match result {
        Err(Error::UnsafeEntry { entry: e, reason }) => {
            assert_eq!(e, entry);
            reason
        }
        other => panic!("expected an unsafe entry error for {entry:?}, got {other:?}"),
    }
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let name = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: NUL-terminated strings, buffer and its length.
    let n = unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (n >= 0).then(|| buf[..n as usize].to_vec())
}

fn is_whiteout_at(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == 0)
}

fn sample_layer() -> Vec<u8> {
    Layer::new()
        .dir("./", 0o755)
        .dir("etc/", 0o750)
        .file("etc/hostname", b"berth\n", 0o644)
        .owned_file("etc/owned", b"mine", 1000, 1001)
        .file("usr/bin/tool", &vec![7u8; 300_000], 0o4755)
        .symlink("etc/link", "hostname")
        .symlink("etc/abs", "/etc/hostname")
        .hardlink("etc/hard", "etc/hostname")
        .node(EntryType::Fifo, "run/fifo", 0, 0)
        .dir("ro/", 0o555)
        .file("ro/inside", b"x", 0o444)
        .finish()
}

#[test]
fn unpacks_a_normal_layer_with_its_metadata() {
    let scene = Scene::new();
    let tar = sample_layer();
    let stats = scene.unpack(&tar).unwrap();
    let t = scene.target();
    assert_eq!(fs::read(t.join("etc/hostname")).unwrap(), b"berth\n");
    assert_eq!(fs::read(t.join("usr/bin/tool")).unwrap(), vec![7u8; 300_000]);
    let tool = fs::metadata(t.join("usr/bin/tool")).unwrap();
    assert_eq!(tool.mode() & 0o7777, 0o4755, "setuid bit survives the chown");
    assert_eq!(tool.mtime() as u64, MTIME);
    let owned = fs::metadata(t.join("etc/owned")).unwrap();
    assert_eq!((owned.uid(), owned.gid(), owned.mode() & 0o777), (1000, 1001, 0o640));
    assert_eq!(fs::read_link(t.join("etc/link")).unwrap(), Path::new("hostname"));
    assert_eq!(fs::read_link(t.join("etc/abs")).unwrap(), Path::new("/etc/hostname"));
    assert_eq!(fs::symlink_metadata(t.join("etc/link")).unwrap().mtime() as u64, MTIME);
    let hard = fs::metadata(t.join("etc/hard")).unwrap();
    assert_eq!(hard.ino(), fs::metadata(t.join("etc/hostname")).unwrap().ino());
    assert!(fs::symlink_metadata(t.join("run/fifo")).unwrap().file_type().is_fifo());
    // Directory modes and mtimes are applied after their content.
    let etc = fs::metadata(t.join("etc")).unwrap();
    assert_eq!((etc.mode() & 0o7777, etc.mtime() as u64), (0o750, MTIME));
    let ro = fs::metadata(t.join("ro")).unwrap();
    assert_eq!((ro.mode() & 0o7777, ro.mtime() as u64), (0o555, MTIME));
    assert_eq!(fs::read(t.join("ro/inside")).unwrap(), b"x");
    // Parents without an entry of their own are created 0755.
    assert_eq!(fs::metadata(t.join("usr/bin")).unwrap().mode() & 0o7777, 0o755);
    assert_eq!(fs::metadata(&t).unwrap().mtime() as u64, MTIME);
    assert_eq!(stats.diff_id, crate::digest::sha256_of(&tar));
    assert_eq!((stats.tar_bytes, stats.blob_bytes), (tar.len() as u64, tar.len() as u64));
    let symlinks = "hostname".len() + "/etc/hostname".len();
    assert_eq!(stats.content_bytes, (6 + 4 + 300_000 + 1 + symlinks) as u64);
    scene.assert_outside_untouched();
}

#[test]
fn gzip_and_zstd_layers_give_the_diff_id_of_the_raw_tar() {
    let tar = sample_layer();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    for (blob, compression) in [(gz, Compression::Gzip), (zst, Compression::Zstd)] {
        assert_eq!(Compression::detect(&blob), compression);
        let scene = Scene::new();
        let stats = unpack(&blob[..], compression, &scene.target(), UnpackOptions::default()).unwrap();
        assert_eq!(stats.diff_id, crate::digest::sha256_of(&tar), "{compression:?}");
        assert_eq!(stats.blob_bytes, blob.len() as u64);
        assert_eq!(stats.tar_bytes, tar.len() as u64);
        assert_eq!(fs::read(scene.target().join("etc/hostname")).unwrap(), b"berth\n");
    }
    assert_eq!(Compression::detect(&tar), Compression::None);
}

#[test]
fn diff_id_covers_the_padding_after_the_end_of_archive() {
    // GNU tar pads archives to a multiple of 10 KiB; those zeros are part of the diff ID.
    let mut tar = Layer::new().file("a", b"a", 0o644).finish();
    tar.resize(tar.len() + 10240, 0);
    let big = Layer::new().file("big", &vec![1u8; 3 << 20], 0o644).finish();
    for tar in [tar, big] {
        let scene = Scene::new();
        let stats = scene.unpack(&tar).unwrap();
        assert_eq!(stats.diff_id, crate::digest::sha256_of(&tar));
        assert_eq!(stats.tar_bytes, tar.len() as u64);
    }
}

#[test]
fn media_types_map_to_compressions() {
    let cases = [
        ("application/vnd.oci.image.layer.v1.tar", Compression::None),
        ("application/vnd.oci.image.layer.v1.tar+gzip", Compression::Gzip),
        ("application/vnd.oci.image.layer.v1.tar+zstd", Compression::Zstd),
        ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Compression::Gzip),
        ("application/vnd.docker.image.rootfs.diff.tar.gzip", Compression::Gzip),
        ("application/vnd.docker.image.rootfs.diff.tar", Compression::None),
        ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", Compression::Gzip),
    ];
    for (media_type, want) in cases {
        assert_eq!(Compression::from_media_type(&MediaType::from(media_type)).unwrap(), want, "{media_type}");
    }
    let err = Compression::from_media_type(&MediaType::from("application/vnd.oci.image.config.v1+json"))
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)));
    assert!(err.to_string().contains("application/vnd.oci.image.config.v1+json"), "{err}");
}

#[test]
fn refuses_dot_dot_leading_out() {
    for name in ["../evil", "a/../../evil", "./../sentinel/secret"] {
        let scene = Scene::new();
        let tar = Layer::new().file(name, b"pwned", 0o644).finish();
        let reason = expect_unsafe(scene.unpack(&tar), name);
        assert!(reason.contains(".."), "{reason}");
        scene.assert_outside_untouched();
    }
    // `..` that stays inside is only a roundabout name.
    let scene = Scene::new();
    scene.unpack(&Layer::new().file("a/../b", b"ok", 0o644).finish()).unwrap();
    assert_eq!(fs::read(scene.target().join("b")).unwrap(), b"ok");
}

#[test]
fn refuses_absolute_paths() {
    let scene = Scene::new();
    let name = format!("{}/evil", scene.sentinel().display());
    let tar = Layer::new().file(&name, b"pwned", 0o644).finish();
    let reason = expect_unsafe(scene.unpack(&tar), &name);
    assert!(reason.contains("absolute"), "{reason}");
    scene.assert_outside_untouched();
}

#[test]
fn refuses_paths_through_a_symlink_out_of_the_target() {
    let scene = Scene::new();
    let absolute = scene.sentinel().display().to_string();
    for (link_target, entry) in
        [("../sentinel", "link/evil"), (absolute.as_str(), "link/evil"), ("../sentinel", "link/sub/evil")]
    {
        let scene = Scene::new();
        let tar = Layer::new().symlink("link", link_target).file(entry, b"pwned", 0o644).finish();
        let reason = expect_unsafe(scene.unpack(&tar), entry);
        assert!(reason.contains("symlink"), "{reason}");
        scene.assert_outside_untouched();
        // A directory entry through the link, too.
        let scene = Scene::new();
        let tar = Layer::new().symlink("link", link_target).dir("link/newdir/", 0o755).finish();
        expect_unsafe(scene.unpack(&tar), "link/newdir/");
        scene.assert_outside_untouched();
    }
    // A symlink chain that ends outside.
    let scene = Scene::new();
    let tar = Layer::new().symlink("a", "b").symlink("b", "../sentinel").file("a/evil", b"x", 0o644).finish();
    expect_unsafe(scene.unpack(&tar), "a/evil");
    scene.assert_outside_untouched();
    // Symlinks that stay inside are followed like tar does.
    let scene = Scene::new();
    scene
        .unpack(
            &Layer::new().dir("real/", 0o755).symlink("alias", "real").file("alias/f", b"in", 0o644).finish(),
        )
        .unwrap();
    assert_eq!(fs::read(scene.target().join("real/f")).unwrap(), b"in");
}

#[test]
fn refuses_hard_links_out_of_the_target() {
    let cases: Vec<(Layer, &str, &str)> = vec![
        (Layer::new().hardlink("hl", "../sentinel/secret"), "hl", ".."),
        (Layer::new().hardlink("hl", "/etc/passwd"), "hl", "absolute"),
        (Layer::new().symlink("link", "../sentinel").hardlink("hl", "link/secret"), "hl", "symlink"),
        (Layer::new().hardlink("hl", "missing"), "hl", "not in the layer"),
        (Layer::new().hardlink("hl", "nodir/missing"), "hl", "not in the layer"),
    ];
    for (layer, entry, why) in cases {
        let scene = Scene::new();
        let reason = expect_unsafe(scene.unpack(&layer.finish()), entry);
        assert!(reason.contains(why), "{reason} should mention {why}");
        scene.assert_outside_untouched();
    }
    // A hard link to a symlink that points out links the symlink itself, harmlessly.
    let scene = Scene::new();
    let secret = scene.sentinel().join("secret").display().to_string();
    scene.unpack(&Layer::new().symlink("out", &secret).hardlink("hl", "out").finish()).unwrap();
    assert_eq!(fs::read_link(scene.target().join("hl")).unwrap(), Path::new(&secret));
    scene.assert_outside_untouched();
}

#[test]
fn device_nodes_are_refused_unless_allowed() {
    for kind in [EntryType::Char, EntryType::Block] {
        let scene = Scene::new();
        let tar = Layer::new().node(kind, "dev/null", 1, 3).finish();
        let reason = expect_unsafe(scene.unpack(&tar), "dev/null");
        assert!(reason.contains("device"), "{reason}");
        assert!(!scene.target().join("dev").exists(), "nothing is created before the refusal");
        scene.assert_outside_untouched();
    }
    let scene = Scene::new();
    let tar = Layer::new().node(EntryType::Char, "dev/null", 1, 3).finish();
    unpack(
        &tar[..],
        Compression::None,
        &scene.target(),
        UnpackOptions { allow_device_nodes: true, ..Default::default() },
    )
    .unwrap();
    let meta = fs::symlink_metadata(scene.target().join("dev/null")).unwrap();
    assert!(meta.file_type().is_char_device());
    assert_eq!(meta.rdev(), nix::sys::stat::makedev(1, 3));
}

#[test]
fn whiteouts_become_overlay_whiteouts_and_opaque_dirs() {
    let scene = Scene::new();
    let tar = Layer::new()
        .file(".wh.gone", b"", 0o644)
        .dir("opq/", 0o755)
        .file("opq/.wh..wh..opq", b"", 0o644)
        .file("opq/kept", b"k", 0o644)
        // Deleted, then re-created with content in the same layer: an opaque directory.
        .file(".wh.redo", b"", 0o644)
        .file("redo/new", b"n", 0o644)
        // A directory of this layer, then a whiteout of it: content stays, lower is hidden.
        .file("mine/file", b"m", 0o644)
        .file(".wh.mine", b"", 0o644)
        // A file of this layer and a whiteout of it: the file stays.
        .file("plain", b"p", 0o644)
        .file(".wh.plain", b"", 0o644)
        .file("deep/er/.wh.x", b"", 0o644)
        .file(".wh..wh.plnk", b"", 0o644)
        .finish();
    scene.unpack(&tar).unwrap();
    let t = scene.target();
    assert!(is_whiteout_at(&t.join("gone")));
    assert!(!t.join(".wh.gone").exists());
    assert_eq!(xattr(&t.join("opq"), OPAQUE_XATTR).as_deref(), Some(&b"y"[..]));
    assert!(!t.join("opq/.wh..wh..opq").exists());
    assert_eq!(fs::read(t.join("opq/kept")).unwrap(), b"k");
    assert_eq!(xattr(&t.join("redo"), OPAQUE_XATTR).as_deref(), Some(&b"y"[..]));
    assert_eq!(fs::read(t.join("redo/new")).unwrap(), b"n");
    assert_eq!(xattr(&t.join("mine"), OPAQUE_XATTR).as_deref(), Some(&b"y"[..]));
    assert_eq!(fs::read(t.join("mine/file")).unwrap(), b"m");
    assert_eq!(fs::read(t.join("plain")).unwrap(), b"p");
    assert!(is_whiteout_at(&t.join("deep/er/x")));
    assert!(!t.join(".wh..wh.plnk").exists() && !t.join("plnk").exists());
    assert_eq!(xattr(&t.join("deep"), OPAQUE_XATTR), None);

    for name in [".wh..", ".wh..."] {
        let scene = Scene::new();
        expect_unsafe(scene.unpack(&Layer::new().file(name, b"", 0o644).finish()), name);
        scene.assert_outside_untouched();
    }
}

#[test]
fn pax_xattrs_are_applied_but_not_overlay_ones() {
    let scene = Scene::new();
    let tar = Layer::new()
        .pax(&[("SCHILY.xattr.user.color", b"blue"), ("SCHILY.xattr.trusted.overlay.opaque", b"y")])
        .dir("d/", 0o755)
        .pax(&[("SCHILY.xattr.user.note", b"hi"), ("mtime", b"1600000000.5")])
        .file("d/f", b"f", 0o644)
        .finish();
    scene.unpack(&tar).unwrap();
    let t = scene.target();
    assert_eq!(xattr(&t.join("d"), "user.color").as_deref(), Some(&b"blue"[..]));
    assert_eq!(xattr(&t.join("d"), OPAQUE_XATTR), None, "overlay xattrs from the tar are ignored");
    assert_eq!(xattr(&t.join("d/f"), "user.note").as_deref(), Some(&b"hi"[..]));
    let meta = fs::metadata(t.join("d/f")).unwrap();
    assert_eq!((meta.mtime() as u64, meta.mtime_nsec()), (MTIME, 500_000_000));
}

#[test]
fn later_entries_replace_earlier_ones() {
    let scene = Scene::new();
    let tar = Layer::new()
        .file("f", b"old", 0o644)
        .file("f", b"new", 0o600)
        .file("d/inner", b"x", 0o644)
        .file("d", b"now a file", 0o644)
        .symlink("s", "somewhere")
        .dir("s/", 0o755)
        .file("s/in", b"in", 0o644)
        .finish();
    scene.unpack(&tar).unwrap();
    let t = scene.target();
    assert_eq!(fs::read(t.join("f")).unwrap(), b"new");
    assert_eq!(fs::metadata(t.join("f")).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(fs::read(t.join("d")).unwrap(), b"now a file");
    assert!(fs::symlink_metadata(t.join("s")).unwrap().is_dir());
    assert_eq!(fs::read(t.join("s/in")).unwrap(), b"in");
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let scene = Scene::new();
    let garbage = b"\x1f\x8bnot really gzip at all".to_vec();
    let err = unpack(&garbage[..], Compression::Gzip, &scene.target(), UnpackOptions::default()).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    // A tar cut in the middle of a file.
    let tar = Layer::new().file("big", &vec![1u8; 100_000], 0o644).finish();
    let err = scene.unpack(&tar[..50_000]).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    // A header with a broken checksum.
    let mut tar = Layer::new().file("a", b"a", 0o644).finish();
    tar[0] = b'b';
    assert!(matches!(scene.unpack(&tar).unwrap_err(), Error::InvalidInput(_)));
    // A reader that fails is an I/O error.
    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("disk on fire"))
        }
    }
    let err = unpack(Failing, Compression::Gzip, &scene.target(), UnpackOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    scene.assert_outside_untouched();
}

#[test]
fn the_fallback_without_openat2_refuses_symlinks_too() {
    let scene = Scene::new();
    let tar = Layer::new().symlink("link", "../sentinel").file("link/evil", b"x", 0o644).finish();
    let result = extract::extract_with(&tar[..], &scene.target(), UnpackOptions::default(), false);
    assert!(
        matches!(result, Err(Error::UnsafeEntry { ref entry, .. }) if entry == "link/evil"),
        "{:?}",
        result.err()
    );
    scene.assert_outside_untouched();
    let scene = Scene::new();
    let (_, bytes) =
        extract::extract_with(&sample_layer()[..], &scene.target(), UnpackOptions::default(), false).unwrap();
    assert!(bytes > 300_000);
    assert_eq!(fs::read(scene.target().join("etc/hard")).unwrap(), b"berth\n");
}

//! A container's files through the engine (needs root: root filesystems are mounted): `cp` both
//! ways with paths and archives that try to leave the container, `diff`, `commit`, `export`,
//! and `update` of a container that is not running. Containers are created, never started, on
//! a tiny image made here.

use std::fs;
use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};

use berth_engine::container::archive::ExtractOptions;
use berth_engine::container::commit::CommitOptions;
use berth_engine::{Engine, EngineConfig, Error, ErrorKind};
use berth_types::container::{ContainerConfig, RestartPolicy};
use berth_types::files::ContainerUpdate;

struct Env {
    rt: tokio::runtime::Runtime,
    engine: Option<Engine>,
    dir: tempfile::TempDir,
}

impl Env {
    /// An engine with the image `tiny` (`/etc/passwd`, `/etc/motd`, `/tmp`, `/bin`, and a link
    /// `/escape` to `outside`, a directory of the host), or `None` when not root.
    fn new() -> Option<Env> {
        Env::with_snapshotter(None)
    }

    fn with_snapshotter(snapshotter: Option<berth_engine::SnapshotterKind>) -> Option<Env> {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root (mounts)");
            return None;
        }
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = tempfile::Builder::new().prefix("bf").tempdir_in("/tmp").unwrap();
        fs::create_dir(dir.path().join("outside")).unwrap();
        let config = EngineConfig {
            snapshotter,
            ..EngineConfig::new(dir.path().join("root"), dir.path().join("run"))
        };
        let engine = rt.block_on(Engine::open(config)).unwrap();
        let env = Env { rt, engine: Some(engine), dir };
        let outside = env.outside();
        let tar = tar_of(|b| {
            dir_entry(b, "bin/");
            dir_entry(b, "etc/");
            file_entry(b, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nweb:x:33:33::/:/bin/false\n");
            file_entry(b, "etc/motd", b"hello\n");
            dir_entry(b, "tmp/");
            symlink_entry(b, "escape", outside.to_str().unwrap());
            symlink_entry(b, "etclink", "/etc");
        });
        let engine = env.engine();
        env.block(async move {
            engine
                .import_image(std::io::Cursor::new(tar), Some("tiny:1".into()), vec![], None)
                .await
                .unwrap();
        });
        Some(env)
    }

    fn engine(&self) -> Engine {
        self.engine.clone().unwrap()
    }

    fn block<T>(&self, f: impl Future<Output = T>) -> T {
        self.rt.block_on(f)
    }

    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    fn create(&self, name: &str, read_only: bool) -> String {
        let engine = self.engine();
        let config = ContainerConfig {
            image: "tiny:1".into(),
            name: Some(name.into()),
            cmd: vec!["/bin/true".into()],
            network: Some("none".into()),
            read_only,
            ..Default::default()
        };
        self.block(async move { engine.create_container(config).await.unwrap().id })
    }

    fn rootfs(&self, id: &str) -> PathBuf {
        self.dir.path().join("root/containers").join(id).join("rootfs")
    }

    fn put(&self, name: &str, path: &str, tar: Vec<u8>, options: ExtractOptions) -> Result<(), Error> {
        let engine = self.engine();
        let (name, path) = (name.to_string(), path.to_string());
        self.block(async move {
            engine.extract_into_container(&name, &path, std::io::Cursor::new(tar), options).await
        })
    }

    /// The entry names of `path`'s archive.
    fn get(&self, name: &str, path: &str) -> Result<Vec<String>, Error> {
        let engine = self.engine();
        let (name, path) = (name.to_string(), path.to_string());
        let bytes = self.block(async move {
            let source = engine.archive_container_path(&name, &path).await?;
            let (writer, mut reader) = tokio::io::duplex(64 * 1024);
            let write = source.write_to(&engine, writer);
            let mut out = Vec::new();
            let read = tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut out);
            let (written, _) = tokio::join!(write, read);
            written.map(|()| out)
        })?;
        Ok(entries(&bytes))
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let Some(engine) = self.engine.take() else { return };
        self.rt.block_on(async {
            for c in engine.list_containers(true).await.unwrap_or_default() {
                let _ = engine.remove_container(&c.id, true).await;
            }
        });
        drop(engine);
        if let Ok(mounts) = fs::read_to_string("/proc/self/mounts") {
            let base = self.dir.path().display().to_string();
            let mut targets: Vec<&str> =
                mounts.lines().filter_map(|l| l.split(' ').nth(1)).filter(|t| t.starts_with(&base)).collect();
            targets.reverse();
            for t in targets {
                let _ = nix::mount::umount2(t, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

fn tar_of(fill: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    fill(&mut b);
    b.into_inner().unwrap()
}

fn header(kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_mtime(1_700_000_000);
    h.set_size(0);
    h
}

fn dir_entry(b: &mut tar::Builder<Vec<u8>>, name: &str) {
    b.append_data(&mut header(tar::EntryType::Directory, 0o755), name, std::io::empty()).unwrap();
}

fn file_entry(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut h = header(tar::EntryType::Regular, 0o644);
    h.set_size(data.len() as u64);
    // Raw names: the tar crate's own path setter refuses `..`, which these tests need.
    let raw = &mut h.as_old_mut().name;
    raw.fill(0);
    raw[..name.len()].copy_from_slice(name.as_bytes());
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn symlink_entry(b: &mut tar::Builder<Vec<u8>>, name: &str, target: &str) {
    b.append_link(&mut header(tar::EntryType::Symlink, 0o777), name, target).unwrap();
}

fn entries(tar: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect()
}

fn is_empty_dir(path: &Path) -> bool {
    fs::read_dir(path).unwrap().next().is_none()
}

#[test]
fn paths_are_stat_and_archived_inside_the_container() {
    let Some(env) = Env::new() else { return };
    env.create("reader", false);
    let engine = env.engine();
    let stat = env.block(engine.stat_container_path("reader", "/etc/motd")).unwrap();
    assert_eq!((stat.name.as_str(), stat.size, stat.mode & 0o170777), ("motd", 6, 0o100644));
    let link = env.block(engine.stat_container_path("reader", "/etclink")).unwrap();
    assert!(link.is_symlink() && link.link_target == "/etc", "{link:?}");
    // A link that points out of the container is resolved inside it.
    let escape = env.block(engine.stat_container_path("reader", "/escape")).unwrap();
    assert_eq!(escape.link_target, env.outside().display().to_string());
    let e = env.block(engine.stat_container_path("reader", "/escape/")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let e = env.block(engine.stat_container_path("reader", "/nope")).unwrap_err();
    assert_eq!(e.to_string(), "Could not find the file /nope in container reader");
    let e = env.block(engine.stat_container_path("ghost", "/")).unwrap_err();
    assert_eq!(e.to_string(), "No such container: ghost");

    assert_eq!(env.get("reader", "/etc").unwrap(), ["etc/", "etc/motd", "etc/passwd"]);
    // Docker names the contents of `dir/.` so too (its CLI renames them by their `.`).
    assert_eq!(env.get("reader", "/etclink/.").unwrap(), ["./", "./motd", "./passwd"]);
    assert_eq!(env.get("reader", "/etclink").unwrap(), ["etclink"]);
    assert_eq!(env.get("reader", "/etc/motd").unwrap(), ["motd"]);
    // Docker names the root's entries absolutely.
    let root = env.get("reader", "/").unwrap();
    assert_eq!(root[0], "/");
    assert!(root.contains(&"/etc/motd".to_string()), "{root:?}");

    let bytes = env.block(async {
        let source = engine.export_container("reader").await.unwrap();
        let (writer, mut reader) = tokio::io::duplex(64 * 1024);
        let mut out = Vec::new();
        let (written, _) = tokio::join!(
            source.write_to(&engine, writer),
            tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut out)
        );
        written.unwrap();
        out
    });
    let listed = entries(&bytes);
    for want in ["bin/", "etc/motd", "escape", "tmp/"] {
        assert!(listed.iter().any(|e| e == want), "{want} in {listed:?}");
    }
}

#[test]
fn archives_are_extracted_inside_the_container_only() {
    let Some(env) = Env::new() else { return };
    let id = env.create("writer", false);
    let rootfs = env.rootfs(&id);
    let plain = ExtractOptions::default();
    env.put("writer", "/tmp", tar_of(|b| file_entry(b, "hello", b"hi\n")), plain).unwrap();
    assert_eq!(fs::read_to_string(rootfs.join("tmp/hello")).unwrap(), "hi\n");
    // Through the link to /etc, into the container's /etc.
    env.put("writer", "/etclink", tar_of(|b| file_entry(b, "via-link", b"x")), plain).unwrap();
    assert!(rootfs.join("etc/via-link").is_file());

    // `..` out of the destination, a link in the container that points at the host, a link in
    // the archive that points at `/`: nothing reaches the host.
    let e =
        env.put("writer", "/tmp", tar_of(|b| file_entry(b, "../../../../escaped", b"x")), plain).unwrap_err();
    assert!(matches!(e, Error::UnsafeEntry { .. }), "{e}");
    let e = env.put("writer", "/escape", tar_of(|b| file_entry(b, "x", b"x")), plain).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let e = env.put("writer", "/escape/sub", tar_of(|b| file_entry(b, "x", b"x")), plain).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let outside = env.outside();
    let through_link = tar_of(|b| {
        symlink_entry(b, "out", outside.to_str().unwrap());
        file_entry(b, "out/planted", b"x");
    });
    // Refused: inside the container the link leads nowhere.
    assert!(env.put("writer", "/tmp", through_link, plain).is_err());
    assert!(is_empty_dir(&outside), "a file was written outside the container");
    // An absolute link in the archive is followed inside the container, as in a chroot.
    let in_root = tar_of(|b| {
        symlink_entry(b, "etc2", "/etc");
        file_entry(b, "etc2/planted", b"x");
    });
    env.put("writer", "/", in_root, plain).unwrap();
    assert!(rootfs.join("etc/planted").is_file());

    let e = env.put("writer", "/missing", tar_of(|b| file_entry(b, "x", b"x")), plain).unwrap_err();
    assert_eq!(e.to_string(), "Could not find the file /missing in container writer");
    let strict = ExtractOptions { no_overwrite_dir_non_dir: true, ..Default::default() };
    let e = env.put("writer", "/", tar_of(|b| file_entry(b, "tmp", b"x")), strict).unwrap_err();
    assert!(e.to_string().contains("cannot overwrite directory"), "{e}");
    assert!(rootfs.join("tmp").is_dir());

    // `cp -a` gives the files the container user's owner.
    let user = env.engine();
    let config = ContainerConfig {
        image: "tiny:1".into(),
        name: Some("as-web".into()),
        cmd: vec!["/bin/true".into()],
        user: Some("web".into()),
        network: Some("none".into()),
        ..Default::default()
    };
    let web = env.block(user.create_container(config)).unwrap().id;
    let owned = ExtractOptions { copy_uid_gid: true, ..Default::default() };
    env.put("as-web", "/tmp", tar_of(|b| file_entry(b, "mine", b"x")), owned).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(env.rootfs(&web).join("tmp/mine")).unwrap().uid(), 33);

    env.create("frozen", true);
    let e = env.put("frozen", "/tmp", tar_of(|b| file_entry(b, "x", b"x")), plain).unwrap_err();
    assert_eq!(
        (e.kind(), e.to_string().as_str()),
        (ErrorKind::Forbidden, "container rootfs is marked read-only")
    );
}

#[test]
fn diff_commit_and_update() {
    let Some(env) = Env::new() else { return };
    let id = env.create("changer", false);
    let engine = env.engine();
    let rootfs = env.rootfs(&id);
    env.put("changer", "/tmp", tar_of(|b| file_entry(b, "new", b"new\n")), ExtractOptions::default())
        .unwrap();
    fs::remove_file(rootfs.join("etc/motd")).unwrap();
    fs::write(rootfs.join("etc/passwd"), "root:x:0:0::/:/bin/sh\n").unwrap();
    fs::create_dir_all(rootfs.join("proc")).unwrap();
    let changes = env.block(engine.container_changes("changer")).unwrap();
    let shown: Vec<String> = changes.iter().map(|c| format!("{} {}", c.letter(), c.path)).collect();
    assert_eq!(shown, ["C /etc", "D /etc/motd", "C /etc/passwd", "C /tmp", "A /tmp/new"]);

    let options = CommitOptions {
        reference: Some("tiny:committed".into()),
        author: Some("tester".into()),
        comment: Some("a test".into()),
        changes: vec![r#"CMD ["/bin/sh"]"#.into(), "ENV A=b".into()],
        ..Default::default()
    };
    let image = env.block(engine.commit_container("changer", options)).unwrap();
    let inspect = env.block(engine.inspect_image("tiny:committed")).unwrap();
    assert_eq!(inspect.id, image);
    let bad = CommitOptions { changes: vec!["RUN true".into()], ..Default::default() };
    assert!(env.block(engine.commit_container("changer", bad)).is_err());

    // A container of the new image has the changes, and no /proc of the old one's making.
    let config = ContainerConfig {
        image: "tiny:committed".into(),
        name: Some("child".into()),
        network: Some("none".into()),
        ..Default::default()
    };
    let child = env.block(engine.create_container(config)).unwrap().id;
    let child_fs = env.rootfs(&child);
    assert_eq!(fs::read_to_string(child_fs.join("tmp/new")).unwrap(), "new\n");
    assert!(!child_fs.join("etc/motd").exists());
    assert!(!child_fs.join("proc").exists());
    let record = env.block(engine.inspect_container("child")).unwrap();
    assert_eq!(record.path, "/bin/sh");
    assert!(env.block(engine.container_changes("child")).unwrap().is_empty());

    let update = ContainerUpdate {
        memory: Some(64 << 20),
        restart_policy: Some(RestartPolicy::UnlessStopped),
        ..Default::default()
    };
    env.block(engine.update_container("changer", update)).unwrap();
    let record = env.block(engine.inspect_container("changer")).unwrap();
    assert_eq!(record.config.resources.memory, Some(64 << 20));
    assert_eq!(record.config.restart_policy, RestartPolicy::UnlessStopped);
    let mut spec = String::new();
    fs::File::open(env.dir.path().join("root/containers").join(&id).join("config.json"))
        .unwrap()
        .read_to_string(&mut spec)
        .unwrap();
    assert!(spec.contains(&(64u64 << 20).to_string()), "the bundle has the new limit");
    let e = env
        .block(
            engine.update_container("changer", ContainerUpdate { memory: Some(1024), ..Default::default() }),
        )
        .unwrap_err();
    assert!(e.to_string().contains("Minimum memory limit"), "{e}");
    let e = env.block(engine.update_container("ghost", ContainerUpdate::default())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[test]
fn diff_and_commit_with_the_copy_snapshotter() {
    let Some(env) = Env::with_snapshotter(Some(berth_engine::SnapshotterKind::Copy)) else { return };
    let id = env.create("copied", false);
    let engine = env.engine();
    let rootfs = env.rootfs(&id);
    fs::remove_file(rootfs.join("etc/motd")).unwrap();
    fs::write(rootfs.join("tmp/new"), "new\n").unwrap();
    fs::create_dir_all(rootfs.join("proc")).unwrap();
    let changes = env.block(engine.container_changes("copied")).unwrap();
    let shown: Vec<String> = changes.iter().map(|c| format!("{} {}", c.letter(), c.path)).collect();
    assert_eq!(shown, ["C /etc", "D /etc/motd", "C /tmp", "A /tmp/new"]);
    let options = CommitOptions { reference: Some("tiny:copied".into()), ..Default::default() };
    env.block(engine.commit_container("copied", options)).unwrap();
    let config = ContainerConfig {
        image: "tiny:copied".into(),
        name: Some("child".into()),
        cmd: vec!["/bin/true".into()],
        network: Some("none".into()),
        ..Default::default()
    };
    let child = env.block(engine.create_container(config)).unwrap().id;
    assert!(env.rootfs(&child).join("tmp/new").is_file());
    assert!(!env.rootfs(&child).join("etc/motd").exists());
    assert!(env.block(engine.container_changes("child")).unwrap().is_empty());
}

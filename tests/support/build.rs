//! Helpers of the build tests: the peer builder (buildah, in its own storage under a temporary
//! directory, with the local busybox image), root filesystems of built images unpacked with
//! umoci, and a description of a tree that two builders' results can be compared by.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::{unmount_under, Daemon};

/// The test Dockerfiles (`tests/dockerfiles/<case>/`).
pub fn dockerfiles_dir() -> PathBuf {
    crate::repo_root().join("tests/dockerfiles")
}

/// Copies a test case's context into `dest` (git keeps neither empty directories nor modes
/// other than the executable bit, so the copy is what both builders see), adding what cannot
/// live in the repository as is: `archive.tar.gz` for ADD's extraction.
pub fn prepare_context(case: &str, dest: &Path) -> PathBuf {
    let src = dockerfiles_dir().join(case);
    let ctx = dest.join(case);
    let status = Command::new("cp").arg("-a").arg(&src).arg(&ctx).status().expect("cp");
    assert!(status.success(), "copying {}", src.display());
    if case == "copy" {
        let mut builder =
            tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
        for (path, data, mode) in [
            ("pkg/", &b""[..], 0o755),
            ("pkg/bin.sh", &b"#!/bin/sh\n"[..], 0o755),
            ("pkg/doc.txt", &b"doc\n"[..], 0o600),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_mode(mode);
            h.set_uid(1);
            h.set_gid(1);
            h.set_mtime(1_600_000_000);
            h.set_size(data.len() as u64);
            h.set_entry_type(if path.ends_with('/') {
                tar::EntryType::Directory
            } else {
                tar::EntryType::Regular
            });
            builder.append_data(&mut h, path, data).expect("tar entry");
        }
        let gz = builder.into_inner().expect("tar").finish().expect("gzip");
        std::fs::write(ctx.join("archive.tar.gz"), gz).expect("writing archive.tar.gz");
    }
    ctx
}

/// buildah with private storage holding the daemon's busybox image.
pub struct Buildah {
    dir: tempfile::TempDir,
}

impl Buildah {
    /// A buildah store with `busybox:latest` from `daemon` (saved by berth as an OCI archive).
    pub fn with_busybox(daemon: &Daemon) -> Buildah {
        let dir = tempfile::Builder::new().prefix("berth-buildah-").tempdir().expect("temp dir");
        let b = Buildah { dir };
        let archive = b.dir.path().join("busybox.tar");
        daemon.berth(&["save", "-o", archive.to_str().expect("utf-8"), "busybox:latest"]).ok();
        b.run(&["pull", "-q", &format!("oci-archive:{}:latest", archive.display())]);
        b
    }

    fn command(&self) -> Command {
        let mut c = Command::new("buildah");
        c.arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .arg("--storage-driver")
            .arg("overlay");
        c
    }

    /// Runs buildah; panics with its output on failure.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self
            .command()
            .args(args)
            .output()
            .expect("running buildah (scripts/setup.sh --test installs it)");
        assert!(
            out.status.success(),
            "buildah {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `buildah bud --layers` of `ctx` as `tag` (docker format, so HEALTHCHECK and friends stay).
    pub fn build(&self, ctx: &Path, tag: &str, extra: &[&str]) {
        let mut args = vec![
            "bud",
            "--layers",
            "--isolation",
            "chroot",
            "--pull-never",
            "--format",
            "docker",
            "-q",
            "-t",
            tag,
        ];
        args.extend_from_slice(extra);
        let ctx = ctx.to_str().expect("utf-8");
        args.push(ctx);
        self.run(&args);
    }

    /// The image's root filesystem, unpacked by umoci into `out`.
    pub fn rootfs(&self, image: &str, out: &Path) -> PathBuf {
        let layout = out.join("buildah-layout");
        self.run(&["push", "-q", image, &format!("oci:{}:latest", layout.display())]);
        umoci_unpack(&layout, &out.join("buildah-bundle"))
    }

    /// The image's runnable config (`OCIv1.config`).
    pub fn config(&self, image: &str) -> serde_json::Value {
        let text = self.run(&["inspect", "--type", "image", image]);
        let v: serde_json::Value = serde_json::from_str(&text).expect("buildah inspect JSON");
        v["OCIv1"]["config"].clone()
    }
}

impl Drop for Buildah {
    fn drop(&mut self) {
        let _ = self.command().args(["rm", "--all"]).output();
        let _ = self.command().args(["rmi", "--all", "--force"]).output();
        unmount_under(self.dir.path());
    }
}

/// The root filesystem of berth's image `image`, unpacked by umoci into `out`.
pub fn berth_rootfs(daemon: &Daemon, image: &str, out: &Path) -> PathBuf {
    let archive = out.join("berth.tar");
    daemon.berth(&["save", "-o", archive.to_str().expect("utf-8"), image]).ok();
    let layout = out.join("berth-layout");
    std::fs::create_dir(&layout).expect("mkdir");
    let status = Command::new("tar").arg("xf").arg(&archive).arg("-C").arg(&layout).status().expect("tar");
    assert!(status.success());
    // The layout's ref.name is the tag.
    let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
    umoci_unpack_tag(&layout, tag, &out.join("berth-bundle"))
}

fn umoci_unpack(layout: &Path, bundle: &Path) -> PathBuf {
    umoci_unpack_tag(layout, "latest", bundle)
}

fn umoci_unpack_tag(layout: &Path, tag: &str, bundle: &Path) -> PathBuf {
    let out = Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:{tag}", layout.display()))
        .arg(bundle)
        .output()
        .expect("running umoci");
    assert!(out.status.success(), "umoci unpack failed: {}", String::from_utf8_lossy(&out.stderr));
    bundle.join("rootfs")
}

/// What is compared of one path: type, permission bits, owner, and the link target or the
/// sha256 of the content.
pub type TreeDesc = BTreeMap<String, String>;

/// Describes every path under `root`.
pub fn describe_tree(root: &Path) -> TreeDesc {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut TreeDesc) {
    let mut names: Vec<_> =
        std::fs::read_dir(dir).expect("read_dir").map(|e| e.expect("entry").file_name()).collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let rel = path.strip_prefix(root).expect("under root").to_string_lossy().into_owned();
        let meta = std::fs::symlink_metadata(&path).expect("lstat");
        let ft = meta.file_type();
        let what = if ft.is_dir() {
            "dir".to_string()
        } else if ft.is_symlink() {
            format!("link -> {}", std::fs::read_link(&path).expect("readlink").display())
        } else if ft.is_file() {
            format!("file {}", hex::encode(Sha256::digest(std::fs::read(&path).expect("read"))))
        } else {
            format!("special {:o}", meta.mode() & libc::S_IFMT)
        };
        out.insert(
            rel,
            format!("{what} mode={:o} owner={}:{}", meta.mode() & 0o7777, meta.uid(), meta.gid()),
        );
        if ft.is_dir() {
            walk(root, &path, out);
        }
    }
}

/// Drops what buildah's chroot isolation leaves in every image it runs a RUN step in and that
/// is not part of what the Dockerfile made: the empty mount points of `/etc/hostname`,
/// `/etc/hosts`, `/etc/resolv.conf`, and `/run` (when the base had none).
pub fn without_buildah_mountpoints(mut tree: TreeDesc, base: &TreeDesc) -> TreeDesc {
    for p in ["etc/hostname", "etc/hosts", "etc/resolv.conf", "run"] {
        if !base.contains_key(p) {
            tree.remove(p);
        }
    }
    tree
}

/// Lines naming every difference between two trees.
pub fn tree_differences(berth: &TreeDesc, peer: &TreeDesc) -> Vec<String> {
    let mut diffs = Vec::new();
    for (path, desc) in berth {
        match peer.get(path) {
            None => diffs.push(format!("only in berth's image: {path} ({desc})")),
            Some(other) if other != desc => diffs.push(format!("{path}: berth {desc}, buildah {other}")),
            Some(_) => {}
        }
    }
    for (path, desc) in peer {
        if !berth.contains_key(path) {
            diffs.push(format!("only in buildah's image: {path} ({desc})"));
        }
    }
    diffs
}

/// The fields of a runnable config the comparison covers, in Docker's names, from either an
/// OCI/Docker config JSON (buildah) or berth's `image inspect` (snake_case).
pub fn comparable_config(v: &serde_json::Value) -> serde_json::Value {
    let pick = |docker: &str, berth: &str| -> serde_json::Value {
        let x = v.get(docker).or_else(|| v.get(berth)).cloned().unwrap_or(serde_json::Value::Null);
        match x {
            serde_json::Value::String(s) if s.is_empty() => serde_json::Value::Null,
            serde_json::Value::Array(a) if a.is_empty() => serde_json::Value::Null,
            serde_json::Value::Object(o) if o.is_empty() => serde_json::Value::Null,
            other => other,
        }
    };
    let set = |x: serde_json::Value| -> serde_json::Value {
        // `{"80/tcp": {}}` (OCI) and `["80/tcp"]` (berth inspect) become one sorted list.
        let mut keys: Vec<String> = match x {
            serde_json::Value::Object(o) => o.keys().cloned().collect(),
            serde_json::Value::Array(a) => a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        };
        keys.sort();
        serde_json::json!(keys)
    };
    let mut labels = pick("Labels", "labels");
    if let Some(o) = labels.as_object_mut() {
        // buildah stamps its version on every image it makes.
        o.remove("io.buildah.version");
        if o.is_empty() {
            labels = serde_json::Value::Null;
        }
    }
    serde_json::json!({
        "Env": pick("Env", "env"),
        "Cmd": pick("Cmd", "cmd"),
        "Entrypoint": pick("Entrypoint", "entrypoint"),
        "WorkingDir": pick("WorkingDir", "working_dir"),
        "User": pick("User", "user"),
        "ExposedPorts": set(pick("ExposedPorts", "exposed_ports")),
        "Volumes": set(pick("Volumes", "volumes")),
        "Labels": labels,
        "StopSignal": pick("StopSignal", "stop_signal"),
    })
}

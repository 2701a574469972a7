//! Helpers for runtime tests: a busybox bundle, a runtime under a temporary state directory,
//! and a guard that kills, reaps and deletes what a test started, even when it fails.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use berth_types::container::ContainerConfig;
use oci_spec::image::{ConfigBuilder, ImageConfigurationBuilder};
use oci_spec::runtime::Spec;

use super::{build_spec, write_bundle, Runtime, Stdio};

static TAR_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Removes the tarball's directory when the test process exits (statics are never dropped).
extern "C" fn remove_tar_dir() {
    if let Some(dir) = TAR_DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A busybox rootfs tarball, built once per test process by scripts/busybox-rootfs.sh (it takes
/// seconds) and removed at exit.
pub fn busybox_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let dir = TAR_DIR
            .get_or_init(|| std::env::temp_dir().join(format!("berth-runtime-test-{}", std::process::id())));
        std::fs::create_dir_all(dir).unwrap();
        // SAFETY: registering a plain function to run at exit.
        unsafe { libc::atexit(remove_tar_dir) };
        let tar = dir.join("busybox.tar");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/busybox-rootfs.sh");
        let status = Command::new("bash").arg(script).arg(&tar).status().expect("running busybox-rootfs.sh");
        assert!(status.success(), "busybox-rootfs.sh failed");
        tar
    })
}

/// A bundle directory with an unpacked busybox rootfs and `config.json` for `config`.
pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub id: String,
    pub spec: Spec,
}

impl Bundle {
    pub fn new(config: &ContainerConfig) -> Bundle {
        Bundle::with(config, |_| {})
    }

    /// A bundle whose spec `edit` may change before it is written.
    pub fn with(config: &ContainerConfig, edit: impl FnOnce(&mut Spec)) -> Bundle {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir(&rootfs).unwrap();
        let status =
            Command::new("tar").arg("-xf").arg(busybox_tar()).arg("-C").arg(&rootfs).status().unwrap();
        assert!(status.success());
        let image = ImageConfigurationBuilder::default()
            .config(ConfigBuilder::default().cmd(vec!["sh".to_string()]).build().unwrap())
            .build()
            .unwrap();
        let id = format!("test{:x}", rand::random::<u64>());
        let mut spec = build_spec(&id, config, &image, &rootfs).unwrap();
        edit(&mut spec);
        write_bundle(dir.path(), &spec).unwrap();
        Bundle { dir, id, spec }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// `sh -c SCRIPT` as a config.
pub fn sh(script: &str) -> ContainerConfig {
    ContainerConfig {
        image: "busybox".into(),
        cmd: vec!["sh".into(), "-c".into(), script.into()],
        ..Default::default()
    }
}

/// A pipe: (read, write).
pub fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap()
}

/// stdio for a process: /dev/null stdin, one pipe for stdout and stderr. Returns the read end.
pub fn capture() -> (Stdio, OwnedFd) {
    let (r, w) = pipe();
    let null: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
    let w2 = w.try_clone().unwrap();
    (Stdio::Fds([null, w, w2]), r)
}

/// Reads a pipe to its end.
pub fn read_all(fd: OwnedFd) -> String {
    let mut s = String::new();
    std::fs::File::from(fd).read_to_string(&mut s).unwrap();
    s
}

/// Waits for `pid`; its exit code, or 128+signal.
pub fn wait(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid: {}", std::io::Error::last_os_error());
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

/// Kills and reaps the processes a test started and deletes the container, on drop.
pub struct Guard<'a> {
    pub runtime: &'a dyn Runtime,
    pub id: String,
    pub pids: Vec<i32>,
}

impl<'a> Guard<'a> {
    pub fn new(runtime: &'a dyn Runtime, id: &str) -> Guard<'a> {
        Guard { runtime, id: id.to_string(), pids: Vec::new() }
    }

    /// Remembers `pid` to kill and reap on drop.
    pub fn track(&mut self, pid: i32) -> i32 {
        self.pids.push(pid);
        pid
    }

    /// Waits for a tracked `pid` (which is then no longer killed on drop: its PID may be reused).
    pub fn wait(&mut self, pid: i32) -> i32 {
        let code = wait(pid);
        self.pids.retain(|p| *p != pid);
        code
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        for pid in &self.pids {
            // SAFETY: killing and reaping our own children (by PID; WNOHANG after SIGKILL is racy,
            // so wait blocking: they were SIGKILLed).
            unsafe {
                libc::kill(*pid, libc::SIGKILL);
                let mut status = 0;
                libc::waitpid(*pid, &mut status, 0);
            }
        }
        if let Err(e) = self.runtime.delete(&self.id) {
            eprintln!("cleanup of {}: {e}", self.id);
        }
    }
}

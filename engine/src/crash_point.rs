//! Crash points: named places where the engine writes state, at which a test can make the daemon
//! die with SIGKILL, to prove that a crash at any of them leaves a store that recovers.
//!
//! Compiled in only with debug assertions (the tests' build); a release build has none. A daemon
//! started with `BERTH_CRASH_AT=N` kills itself at the N-th crash point it passes once it serves
//! (counting from 1; what start-up writes is not counted), and `BERTH_CRASH_AT=NAME` or `NAME@N`
//! at the (N-th) pass of the point called NAME. `BERTH_CRASH_LOG=FILE` appends the name of every
//! point passed to FILE, so a harness can first count the points an operation passes, then crash
//! at each of them in turn.
//!
//! Hand-written rather than the `fail` crate: the only action needed is SIGKILL (a panic would
//! unwind and run destructors that a real crash never runs), and `fail` compiles its points in
//! by a cargo feature, which cannot follow the build profile.
//!
//! Only the process that called [`init`] crashes: monitors forked from the daemon (through the
//! zygote) inherit its memory, and a monitor's death is a different failure.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

/// Every crash point, for the harness's report (`grep`-able: a new one belongs here too).
pub const POINTS: &[&str] = &[
    "file.before_rename",
    "file.after_rename",
    "blob.before_rename",
    "blob.after_rename",
    "history.write",
    "distribution.manifest_stored",
    "distribution.unpacked",
];

struct Config {
    pid: u32,
    /// Crash at this count of passes (of `name`, or of any point when `name` is empty).
    at: u64,
    name: String,
    log: Option<std::path::PathBuf>,
}

static CONFIG: OnceLock<Option<Config>> = OnceLock::new();
static PASSES: AtomicU64 = AtomicU64::new(0);
static ARMED: AtomicBool = AtomicBool::new(false);

/// Reads `BERTH_CRASH_AT`/`BERTH_CRASH_LOG` for this process (the daemon, once at start).
pub fn init() {
    CONFIG.get_or_init(|| {
        if !cfg!(debug_assertions) {
            return None;
        }
        let at = std::env::var("BERTH_CRASH_AT").ok().filter(|s| !s.is_empty());
        let log = std::env::var_os("BERTH_CRASH_LOG").map(std::path::PathBuf::from);
        if at.is_none() && log.is_none() {
            return None;
        }
        let (name, at) = match at.as_deref() {
            None => (String::new(), 0),
            Some(spec) => match spec.parse::<u64>() {
                Ok(n) => (String::new(), n),
                Err(_) => match spec.split_once('@') {
                    Some((name, n)) => (name.to_string(), n.parse().unwrap_or(1)),
                    None => (spec.to_string(), 1),
                },
            },
        };
        Some(Config { pid: std::process::id(), at, name, log })
    });
}

/// Starts counting: called when the daemon serves.
pub fn arm() {
    ARMED.store(true, Ordering::SeqCst);
}

/// A crash point: with debug assertions and a matching `BERTH_CRASH_AT`, the process dies here.
pub fn pass(name: &'static str) {
    if !cfg!(debug_assertions) {
        return;
    }
    let Some(Some(config)) = CONFIG.get() else { return };
    if std::process::id() != config.pid || !ARMED.load(Ordering::SeqCst) {
        return;
    }
    debug_assert!(POINTS.contains(&name), "crash point {name} is not in POINTS");
    if let Some(log) = &config.log {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
            let _ = writeln!(f, "{name}");
        }
    }
    if config.at == 0 || (!config.name.is_empty() && config.name != name) {
        return;
    }
    if PASSES.fetch_add(1, Ordering::SeqCst) + 1 == config.at {
        tracing::warn!(point = name, "crash point reached: killing the daemon (BERTH_CRASH_AT)");
        // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

//! The monitor: one small supervisor process per container (`berth monitor CONTAINER_DIR`, a
//! re-exec of the daemon's binary).
//!
//! It starts the container through the [`Runtime`](crate::runtime::Runtime) trait and is the
//! parent of its first process (and of `exec`'d processes), owns their stdio or pty, appends the
//! output to the container's log (JSON lines of [`berth_types::LogEntry`]), serves attach,
//! stdin, resize, exec and control (start, kill, pause, resume) on a unix socket, records exit
//! code, time and OOM kills in the state file, and applies the restart policy with a growing
//! back-off. It runs in its own session, so it survives the daemon; a new daemon reads its state
//! file and connects to its socket again.
//!
//! Plain blocking code around one `poll` loop, no async runtime and no threads, so it stays
//! small (its memory is counted once per running container).

pub(crate) mod health;
pub mod protocol;
mod supervisor;

use std::path::Path;

/// The descriptor on which a starting monitor tells the daemon that it is ready (`ok`) or why
/// it failed, then closes it.
pub const READY_FD: i32 = 3;

/// Entry point of `berth monitor CONTAINER_DIR`; returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    let [dir] = args.as_slice() else {
        eprintln!("usage: berth monitor CONTAINER_DIR (started by the daemon)");
        return 2;
    };
    match supervisor::run(Path::new(dir)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth monitor: {e}");
            1
        }
    }
}

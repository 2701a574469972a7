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
pub mod log_file;
pub mod protocol;
mod supervisor;
pub mod zygote;

use std::path::Path;

/// The descriptor on which a starting monitor tells the daemon that it is ready (`ok`) or why
/// it failed, then closes it: its stdout, a pipe from the daemon (then stdout becomes
/// /dev/null). Stdout rather than an extra descriptor, so that the daemon needs no code
/// between fork and exec and can start the monitor with posix_spawn.
pub const READY_FD: i32 = 1;

/// Writes a line to the monitor's stderr (its `monitor.log`), ignoring failure: `eprintln!`
/// panics when the write fails, and a full disk must not kill a container's monitor.
pub(crate) fn note(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Entry point of `berth monitor CONTAINER_DIR` and of `berth monitor --zygote SOCKET` (see
/// [`zygote`]); returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    if let [flag, socket] = args.as_slice() {
        if flag == "--zygote" {
            return match zygote::run(Path::new(socket)) {
                Ok(()) => 0,
                Err(e) => {
                    note(format_args!("berth monitor zygote: {e}"));
                    1
                }
            };
        }
    }
    let [dir] = args.as_slice() else {
        note(format_args!("usage: berth monitor CONTAINER_DIR (started by the daemon)"));
        return 2;
    };
    match supervisor::run(Path::new(dir)) {
        Ok(()) => 0,
        Err(e) => {
            note(format_args!("berth monitor: {e}"));
            1
        }
    }
}

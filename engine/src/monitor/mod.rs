//! The monitor: one small supervisor process per container (`berth monitor ...`, a re-exec of the
//! daemon's binary). Plain blocking code, no async runtime, so it stays small.

/// Entry point of `berth monitor ARGS...`; returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    let _ = args;
    eprintln!("berth monitor: not implemented yet");
    1
}

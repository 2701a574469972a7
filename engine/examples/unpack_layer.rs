//! Unpacks one layer blob into a directory with `berth_engine::layer::unpack`:
//! `unpack_layer BLOB TARGET [--durable | --syncfs]`. Without a flag nothing is flushed; with
//! `--durable` the files written are fsynced as the snapshot store has them (see
//! `UnpackOptions::durable`); with `--syncfs` the whole file system is synced afterwards, as the
//! store once did. The compression is taken from the blob's first bytes. Used by
//! benches/unpack.sh and benches/unpack_flush.sh.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;
use std::process::ExitCode;

use berth_engine::layer::{self, Compression, UnpackOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (blob, target, flush) = match args.as_slice() {
        [blob, target] => (blob, target, ""),
        [blob, target, flag] if flag == "--durable" || flag == "--syncfs" => (blob, target, flag.as_str()),
        _ => {
            eprintln!("usage: unpack_layer BLOB TARGET [--durable | --syncfs]");
            return ExitCode::from(2);
        }
    };
    match run(Path::new(blob), Path::new(target), flush) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("unpack_layer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(blob: &Path, target: &Path, flush: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut file = File::open(blob).map_err(|e| format!("opening {}: {e}", blob.display()))?;
    let mut head = [0u8; 4];
    let n = file.read(&mut head)?;
    file.rewind()?;
    let compression = Compression::detect(&head[..n]);
    std::fs::create_dir_all(target)?;
    let options =
        UnpackOptions { allow_device_nodes: true, durable: flush == "--durable", ..Default::default() };
    let stats = layer::unpack(BufReader::with_capacity(1 << 20, file), compression, target, options)?;
    if flush == "--syncfs" {
        use std::os::fd::AsRawFd;
        let dir = File::open(target)?;
        // SAFETY: a valid open fd.
        if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
    }
    println!(
        "{} blob={} tar={} content={}",
        stats.diff_id, stats.blob_bytes, stats.tar_bytes, stats.content_bytes
    );
    Ok(())
}

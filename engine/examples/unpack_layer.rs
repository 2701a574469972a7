//! Unpacks one layer blob into a directory with `berth_engine::layer::unpack`, as the snapshot
//! store does (without its final syncfs): `unpack_layer BLOB TARGET`. The compression is taken
//! from the blob's first bytes. Used by benches/unpack.sh.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;
use std::process::ExitCode;

use berth_engine::layer::{self, Compression, UnpackOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [blob, target] = args.as_slice() else {
        eprintln!("usage: unpack_layer BLOB TARGET");
        return ExitCode::from(2);
    };
    match run(Path::new(blob), Path::new(target)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("unpack_layer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(blob: &Path, target: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let mut file = File::open(blob).map_err(|e| format!("opening {}: {e}", blob.display()))?;
    let mut head = [0u8; 4];
    let n = file.read(&mut head)?;
    file.rewind()?;
    let compression = Compression::detect(&head[..n]);
    std::fs::create_dir_all(target)?;
    let options = UnpackOptions { allow_device_nodes: true, ..Default::default() };
    let stats = layer::unpack(BufReader::with_capacity(1 << 20, file), compression, target, options)?;
    println!(
        "{} blob={} tar={} content={}",
        stats.diff_id, stats.blob_bytes, stats.tar_bytes, stats.content_bytes
    );
    Ok(())
}

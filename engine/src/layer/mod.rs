//! Layer tars: decompressing, hashing and safely extracting them into a directory in one
//! streaming pass. Layer tars are untrusted input: no entry may touch anything outside the
//! target directory. OCI whiteouts are stored in overlayfs' format (a 0/0 character device for a
//! deleted path, the `trusted.overlay.opaque` xattr for an opaque directory), which both
//! snapshotters understand.
//!
//! The pass runs on two threads: one reads the blob and inflates it into a bounded channel of
//! large buffers, the other hashes each buffer as it arrives (the diff ID) and extracts the tar.
//! Inflate and the file system work are the two expensive halves and they overlap; hashing with
//! sha2 is cheap next to them.

mod extract;

use std::cell::Cell;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::rc::Rc;
use std::sync::mpsc;

use oci_spec::image::{Digest, MediaType};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

pub(crate) use extract::{is_whiteout, remove_tree_at, OPAQUE_XATTR};

/// Extracts a plain (uncompressed) tar into the directory `target` with `options`, without the
/// hashing and threads of a layer unpack: for archives copied into containers.
pub(crate) fn extract_archive(reader: impl Read, target: &Path, options: UnpackOptions) -> Result<()> {
    extract::extract(reader, target, options).map(drop)
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From a layer media type (OCI or Docker schema 2); other media types are refused.
    pub fn from_media_type(media_type: &MediaType) -> Result<Compression> {
        let s = media_type.to_string();
        let compression = match s.as_str() {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Compression::Zstd,
            _ => return Err(Error::Unsupported(format!("layer media type {s:?}"))),
        };
        Ok(compression)
    }

    /// From the first bytes of a stream (gzip and zstd magic numbers; anything else is a tar).
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// What may appear in a layer.
#[derive(Debug, Clone, Default)]
pub struct UnpackOptions {
    /// Allow block and character device nodes (other than whiteouts).
    pub allow_device_nodes: bool,
    /// A plain archive, not a layer: `.wh.` names are ordinary files (`docker cp`).
    pub plain: bool,
    /// Symlinks met on the way are followed, with the target as their root (as in a chroot),
    /// instead of being refused when they point outside it.
    pub in_root: bool,
    /// Refuse to replace a directory with a non-directory or the other way round (Docker's
    /// `noOverwriteDirNonDir`).
    pub no_overwrite_dir_non_dir: bool,
    /// Every entry gets this owner (uid, gid) instead of the archive's.
    pub owner: Option<(u32, u32)>,
    /// The archive's ids (or `owner`) are a remapped container's: each is written as the host id
    /// the mapping gives it (`docker cp` into a container under `--userns-remap`).
    pub ids: Option<crate::runtime::userns::IdMap>,
    /// Everything written is on disk when the extraction returns: each file is fsynced (in
    /// batches, after its writeback was started as it was written), and so is every directory
    /// that got an entry. Only what this extraction wrote is flushed, never other programs'
    /// dirty data on the same file system (as `syncfs` would).
    pub durable: bool,
}

/// What an unpack saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    /// sha256 of the uncompressed tar (the layer's diff ID).
    pub diff_id: Digest,
    /// Bytes of the blob read.
    pub blob_bytes: u64,
    /// Bytes of the uncompressed tar.
    pub tar_bytes: u64,
    /// Bytes of content the layer holds: sizes of regular files (hard links once) and symlink
    /// targets, the figure Docker reports as a layer's size.
    pub content_bytes: u64,
}

/// Size of the buffers passed from the inflating thread to the extracting one: large enough that
/// channel traffic is negligible, small enough that a few in flight cost little memory.
const CHUNK_SIZE: usize = 1 << 20;
/// Buffers in flight between the two threads (bounds memory at about 8 MiB per unpack).
const CHUNKS_IN_FLIGHT: usize = 8;

/// Decompresses `blob`, hashes the tar and extracts it into `target` (an existing, empty
/// directory), all in one pass.
pub fn unpack(
    blob: impl Read + Send,
    compression: Compression,
    target: &Path,
    options: UnpackOptions,
) -> Result<UnpackStats> {
    let (full_tx, full_rx) = mpsc::sync_channel::<Chunk>(CHUNKS_IN_FLIGHT);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        let inflater = std::thread::Builder::new()
            .name("layer-inflate".into())
            .spawn_scoped(scope, move || inflate(blob, compression, full_tx, empty_rx))
            .map_err(|e| Error::io("starting the layer inflate thread", e))?;
        let reader = ChunkReader::new(full_rx, empty_tx);
        let extracted = extract::extract(reader, target, options);
        // Dropping the reader (on success or error) closes the channel, which stops the
        // inflater if it is still running.
        let (reader, content_bytes) = match extracted {
            Ok(done) => done,
            Err(e) => {
                // The inflater's error, if any, is the root cause (a truncated stream shows up
                // as a malformed tar here).
                let inflated = inflater.join().expect("layer inflate thread panicked");
                return Err(inflated.err().unwrap_or(e));
            }
        };
        let (diff_id, tar_bytes) = reader.finish();
        let blob_bytes = inflater.join().expect("layer inflate thread panicked")?;
        Ok(UnpackStats { diff_id, blob_bytes, tar_bytes, content_bytes })
    })
}

/// The tar stream of a layer blob.
fn decompressed<'a>(blob: impl Read + 'a, compression: Compression) -> Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(blob),
        // Multi-member gzip streams are valid gzip (Go's reader, and so Docker, accepts them).
        Compression::Gzip => {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(256 << 10, blob)))
        }
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(blob).map_err(|e| Error::io("starting the zstd decoder", e))?,
        ),
    })
}

/// The diff ID of a layer blob (sha256 of its tar stream), without extracting it: how a blob
/// is shown to be a layer the store already has.
pub fn diff_id_of(blob: impl Read, compression: Compression) -> Result<Digest> {
    let mut stream = decompressed(blob, compression)?;
    let mut hasher = Sha256::new();
    io::copy(&mut stream, &mut hasher)
        .map_err(|e| Error::InvalidInput(format!("decompressing layer blob ({compression:?}): {e}")))?;
    let hex = hex::encode(hasher.finalize());
    Ok(crate::digest::parse_sha256(&format!("sha256:{hex}")).expect("sha256 hex is a valid digest"))
}

/// A filled buffer and how many of its bytes are data.
struct Chunk {
    buf: Vec<u8>,
    len: usize,
}

/// Reads the blob, decompresses it and sends the tar stream in chunks; returns the bytes of the
/// blob read. Stops early, without error, when the receiving side has gone away.
fn inflate(
    blob: impl Read,
    compression: Compression,
    tx: mpsc::SyncSender<Chunk>,
    recycled: mpsc::Receiver<Vec<u8>>,
) -> Result<u64> {
    let counted = Rc::new(Cell::new(0u64));
    let source_failed = Rc::new(Cell::new(false));
    let source = CountingReader { inner: blob, bytes: counted.clone(), failed: source_failed.clone() };
    let mut stream = decompressed(source, compression)?;
    let fail = |e: io::Error| {
        if source_failed.get() {
            Error::io("reading layer blob", e)
        } else {
            Error::InvalidInput(format!("decompressing layer blob ({compression:?}): {e}"))
        }
    };
    loop {
        let mut buf = recycled.try_recv().unwrap_or_else(|_| vec![0; CHUNK_SIZE]);
        let mut len = 0;
        while len < buf.len() {
            match stream.read(&mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(fail(e)),
            }
        }
        if len == 0 {
            break;
        }
        if tx.send(Chunk { buf, len }).is_err() {
            break;
        }
    }
    Ok(counted.get())
}

/// Counts the bytes read from the blob and remembers whether the blob itself failed, so that
/// decoder errors (bad input) can be told apart from read errors (I/O).
struct CountingReader<R> {
    inner: R,
    bytes: Rc<Cell<u64>>,
    failed: Rc<Cell<bool>>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.bytes.set(self.bytes.get() + n as u64);
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.failed.set(true);
                }
                Err(e)
            }
        }
    }
}

/// The tar stream as the extractor reads it: chunks from the inflater, each hashed whole as it
/// arrives. EOF when the inflater is done (or has failed; its own result says which).
struct ChunkReader {
    rx: mpsc::Receiver<Chunk>,
    recycle: mpsc::Sender<Vec<u8>>,
    current: Chunk,
    pos: usize,
    hasher: Sha256,
    bytes: u64,
}

impl ChunkReader {
    fn new(rx: mpsc::Receiver<Chunk>, recycle: mpsc::Sender<Vec<u8>>) -> Self {
        ChunkReader {
            rx,
            recycle,
            current: Chunk { buf: Vec::new(), len: 0 },
            pos: 0,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Reads the rest of the stream (the end-of-archive blocks and any padding after them belong
    /// to the diff ID too) and returns the digest and length of the whole stream.
    fn finish(mut self) -> (Digest, u64) {
        while let Ok(chunk) = self.rx.recv() {
            self.hash(&chunk);
        }
        let hex = hex::encode(self.hasher.finalize());
        let digest =
            crate::digest::parse_sha256(&format!("sha256:{hex}")).expect("sha256 hex is a valid digest");
        (digest, self.bytes)
    }

    fn hash(&mut self, chunk: &Chunk) {
        self.hasher.update(&chunk.buf[..chunk.len]);
        self.bytes += chunk.len as u64;
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.current.len {
            let Ok(next) = self.rx.recv() else { return Ok(0) };
            self.hash(&next);
            let done = std::mem::replace(&mut self.current, next);
            if !done.buf.is_empty() {
                let _ = self.recycle.send(done.buf);
            }
            self.pos = 0;
        }
        let n = buf.len().min(self.current.len - self.pos);
        buf[..n].copy_from_slice(&self.current.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;

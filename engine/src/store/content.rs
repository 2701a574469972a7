//! The content store: blobs addressed by their sha256 digest, under `blobs/sha256/<hex>` (the OCI
//! image layout's own shape). A blob is written under `ingest/`, hashed while it streams, fsynced,
//! checked against the digest it was announced with, and only then renamed into `blobs/`. So a
//! blob that is visible is always complete and correct; a crash leaves at most a file in
//! `ingest/`, which [`ContentStore::open`] removes.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::Digest;

use crate::digest::{parse_sha256, Sha256Writer};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{create_private_dir, sync_dir};

#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) the store under `root`, and removes writes a crash left behind.
    pub fn open(root: &Path) -> Result<ContentStore> {
        let store = ContentStore { blobs: root.join("blobs/sha256"), ingest: root.join("ingest") };
        create_private_dir(&store.blobs)?;
        create_private_dir(&store.ingest)?;
        for entry in fs::read_dir(&store.ingest).context(|| format!("listing {}", store.ingest.display()))? {
            let path = entry.context(|| "listing ingest".into())?.path();
            tracing::info!(path = %path.display(), "removing unfinished blob write");
            fs::remove_file(&path).context(|| format!("removing {}", path.display()))?;
        }
        Ok(store)
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.digest())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    pub fn size(&self, digest: &Digest) -> Result<u64> {
        match fs::metadata(self.path(digest)) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::BlobNotFound(digest.clone())),
            Err(e) => Err(Error::io(format!("reading blob {digest}"), e)),
        }
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        match File::open(self.path(digest)) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::BlobNotFound(digest.clone())),
            Err(e) => Err(Error::io(format!("opening blob {digest}"), e)),
        }
    }

    /// Reads a whole (small) blob, such as a manifest or config, and checks its digest again,
    /// so that on-disk corruption is noticed rather than parsed.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open_blob(digest)?.read_to_end(&mut bytes).context(|| format!("reading blob {digest}"))?;
        let actual = crate::digest::sha256_of(&bytes);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                what: format!("stored blob {digest}"),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Starts writing a new blob.
    pub fn writer(&self) -> Result<BlobWriter> {
        let path = self.ingest.join(format!("{:016x}", rand::random::<u64>()));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .context(|| format!("creating {}", path.display()))?;
        Ok(BlobWriter {
            store: self.clone(),
            path,
            out: Some(Sha256Writer::new(io::BufWriter::with_capacity(1 << 20, file))),
            committed: false,
            written_back: 0,
        })
    }

    /// Writes a small blob from memory; returns its digest.
    pub fn write_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let mut w = self.writer()?;
        w.write_all(bytes).context(|| "writing blob".into())?;
        Ok(w.commit(None)?.0)
    }

    /// Copies a stream into the store; with `expected`, fails unless it hashes to that digest.
    pub fn write_from(&self, mut reader: impl Read, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let mut w = self.writer()?;
        io::copy(&mut reader, &mut w).context(|| "writing blob".into())?;
        w.commit(expected)
    }

    /// Removes a blob. Removing a blob that is not there is not an error.
    pub fn delete(&self, digest: &Digest) -> Result<()> {
        match fs::remove_file(self.path(digest)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("removing blob {digest}"), e)),
        }
    }

    /// Every blob in the store. Files whose names are not sha256 hex (none should exist) are skipped.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.blobs).context(|| format!("listing {}", self.blobs.display()))? {
            let entry = entry.context(|| "listing blobs".into())?;
            if let Ok(d) = parse_sha256(&format!("sha256:{}", entry.file_name().to_string_lossy())) {
                out.push(d);
            }
        }
        Ok(out)
    }
}

/// A blob being written. Nothing is visible in the store until [`BlobWriter::commit`]; dropping
/// the writer without committing removes the partial file.
pub struct BlobWriter {
    store: ContentStore,
    path: PathBuf,
    out: Option<Sha256Writer<io::BufWriter<File>>>,
    /// Set once the file is renamed into `blobs/`; until then, drop removes it.
    committed: bool,
    /// How far the kernel was asked to start writing the file back (see `WRITE_BACK_EVERY`).
    written_back: u64,
}

/// A blob being written is handed to the disk every this many bytes (started, not waited for),
/// so that the fsync of the commit finds little left to write: a large blob's commit then costs
/// milliseconds instead of the whole file's writeback.
const WRITE_BACK_EVERY: u64 = 8 << 20;

impl BlobWriter {
    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.out.as_ref().map_or(0, |o| o.bytes())
    }

    /// Makes the blob durable and visible. With `expected`, a blob that hashes to anything else
    /// is discarded and the call fails naming both digests. Committing a blob the store already
    /// has is fine (content addressing makes them the same).
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let (digest, size, buffered) = self.out.take().expect("commit once").finish();
        let file = buffered.into_inner().map_err(|e| Error::io("flushing blob", e.into_error()))?;
        if let Some(expected) = expected {
            if expected != &digest {
                return Err(Error::DigestMismatch {
                    what: format!("blob {expected}"),
                    expected: expected.clone(),
                    actual: digest,
                });
            }
        }
        file.sync_all().context(|| format!("syncing {}", self.path.display()))?;
        drop(file);
        let target = self.store.path(&digest);
        crate::crash_point::pass("blob.before_rename");
        fs::rename(&self.path, &target).context(|| format!("storing blob {digest}"))?;
        self.committed = true;
        crate::crash_point::pass("blob.after_rename");
        sync_dir(&self.store.blobs)?;
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let out = self.out.as_mut().expect("not committed");
        let n = out.write(buf)?;
        let written = out.bytes();
        if written - self.written_back >= WRITE_BACK_EVERY {
            use std::os::fd::AsRawFd;
            let fd = out.get_ref().get_ref().as_raw_fd();
            // Only a hint: what it does not start, the commit's fsync writes.
            // SAFETY: a plain system call on a descriptor this writer owns.
            unsafe {
                libc::sync_file_range(fd, self.written_back as i64, 0, libc::SYNC_FILE_RANGE_WRITE);
            }
            self.written_back = written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.as_mut().expect("not committed").flush()
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256_of;

    fn store() -> (tempfile::TempDir, ContentStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn written_blob_is_found_by_its_digest() {
        let (_d, s) = store();
        let d = s.write_bytes(b"layer bytes").unwrap();
        assert_eq!(d, sha256_of(b"layer bytes"));
        assert!(s.contains(&d));
        assert_eq!(s.read(&d).unwrap(), b"layer bytes");
        assert_eq!(s.size(&d).unwrap(), 11);
        assert_eq!(s.list().unwrap(), vec![d]);
    }

    #[test]
    fn mismatching_digest_is_refused_and_leaves_nothing() {
        let (dir, s) = store();
        let wrong = sha256_of(b"something else");
        let err = s.write_from(&b"actual content"[..], Some(&wrong)).unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert!(err.to_string().contains(&wrong.to_string()));
        assert!(!s.contains(&wrong));
        assert!(s.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
    }

    #[test]
    fn dropped_writer_leaves_no_partial_blob() {
        let (dir, s) = store();
        let mut w = s.writer().unwrap();
        w.write_all(b"half a layer").unwrap();
        drop(w);
        assert!(s.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
    }

    #[test]
    fn open_removes_leftovers_of_a_crash() {
        let (dir, s) = store();
        let mut w = s.writer().unwrap();
        w.write_all(b"interrupted").unwrap();
        std::mem::forget(w); // as if the process died here
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 1);
        let s = ContentStore::open(dir.path()).unwrap();
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
        assert!(s.list().unwrap().is_empty());
    }

    #[test]
    fn corrupted_blob_is_noticed_on_read() {
        let (_d, s) = store();
        let d = s.write_bytes(b"{\"config\":1}").unwrap();
        fs::write(s.path(&d), b"{\"config\":2}").unwrap();
        assert!(matches!(s.read(&d), Err(Error::DigestMismatch { .. })));
    }
}

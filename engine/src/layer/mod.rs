//! Layer tars: decompressing, hashing and safely extracting them into a directory in one
//! streaming pass. Layer tars are untrusted input: no entry may touch anything outside the
//! target directory. OCI whiteouts are stored in overlayfs' format (a 0/0 character device for a
//! deleted path, the `trusted.overlay.opaque` xattr for an opaque directory), which both
//! snapshotters understand.

use std::io::Read;
use std::path::Path;

use oci_spec::image::{Digest, MediaType};

use crate::error::Result;

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
        let _ = media_type;
        todo!()
    }

    /// From the first bytes of a stream (gzip and zstd magic numbers; anything else is a tar).
    pub fn detect(head: &[u8]) -> Compression {
        let _ = head;
        todo!()
    }
}

/// What may appear in a layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnpackOptions {
    /// Allow block and character device nodes (other than whiteouts).
    pub allow_device_nodes: bool,
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
}

/// Decompresses `blob`, hashes the tar and extracts it into `target` (an existing, empty
/// directory), all in one pass.
pub fn unpack(
    blob: impl Read + Send,
    compression: Compression,
    target: &Path,
    options: UnpackOptions,
) -> Result<UnpackStats> {
    let _ = (blob, compression, target, options);
    todo!()
}

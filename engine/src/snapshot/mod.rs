//! Snapshots: every layer unpacked once, under `layers/<diff id hex>/`, and shared by every image
//! and container built on it; and a writable layer per container on top, mounted with overlayfs,
//! or, where overlayfs is not available or not wanted, assembled by copying (the `copy`
//! snapshotter).

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use oci_spec::image::Digest;

use crate::error::Result;
use crate::layer::Compression;

/// How container root filesystems are assembled from layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotterKind {
    Overlay,
    Copy,
}

#[derive(Debug)]
pub struct SnapshotStore {
    kind: SnapshotterKind,
}

impl SnapshotStore {
    /// Opens (creating) the store under `root`; `kind: None` picks overlay where it works.
    pub fn open(root: &Path, kind: Option<SnapshotterKind>) -> Result<SnapshotStore> {
        let _ = (root, kind);
        todo!()
    }

    pub fn kind(&self) -> SnapshotterKind {
        self.kind
    }

    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        let _ = diff_id;
        todo!()
    }

    /// Unpacked size of a layer in bytes.
    pub fn layer_size(&self, diff_id: &Digest) -> Result<u64> {
        let _ = diff_id;
        todo!()
    }

    /// Unpacks a layer blob unless the layer is already there; returns its diff ID.
    pub fn unpack_layer(
        &self,
        blob: impl Read + Send,
        compression: Compression,
        expected_diff_id: Option<&Digest>,
    ) -> Result<Digest> {
        let _ = (blob, compression, expected_diff_id);
        todo!()
    }

    pub fn list_layers(&self) -> Result<Vec<Digest>> {
        todo!()
    }

    /// Removes an unpacked layer; returns the bytes freed.
    pub fn remove_layer(&self, diff_id: &Digest) -> Result<u64> {
        let _ = diff_id;
        todo!()
    }

    /// Layers that some writable layer (a container) stands on.
    pub fn layers_in_use(&self) -> Result<HashSet<Digest>> {
        todo!()
    }
}

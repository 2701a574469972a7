//! Persistent state: the content store (blobs by digest) and the image index (images and tags).

pub mod content;
pub mod images;

pub use content::{BlobWriter, ContentStore};
pub use images::{ImageRecord, ImageStore};

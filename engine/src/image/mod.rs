//! Image operations on the store: list, inspect, tag, remove, prune, garbage collection, and
//! moving images in and out (import, load, save).

pub mod import;
pub mod load;
pub mod save;

use berth_types::{GcReport, ImageDeleteItem, ImageInspect, ImagePruneReport, ImageSummary};

use crate::{Engine, Result};

impl Engine {
    /// Every image, newest first.
    pub async fn list_images(&self) -> Result<Vec<ImageSummary>> {
        todo!()
    }

    /// Config, layers, history and size of one image, by reference, ID or ID prefix.
    pub async fn inspect_image(&self, name: &str) -> Result<ImageInspect> {
        let _ = name;
        todo!()
    }

    /// Makes `target` (a reference; `:latest` added if it has no tag) point at image `source`.
    pub async fn tag_image(&self, source: &str, target: &str) -> Result<()> {
        let _ = (source, target);
        todo!()
    }

    /// `rmi`: untags `name`; when it was the image's last tag (or `name` is an ID), removes the
    /// image and garbage-collects what only it used. Refused while a container uses the image,
    /// unless `force`.
    pub async fn remove_image(&self, name: &str, force: bool) -> Result<Vec<ImageDeleteItem>> {
        let _ = (name, force);
        todo!()
    }

    /// Removes dangling images (no tag), or with `all` every image no container uses, then
    /// collects garbage.
    pub async fn prune_images(&self, all: bool) -> Result<ImagePruneReport> {
        let _ = all;
        todo!()
    }

    /// Removes blobs and unpacked layers that no image and no container references.
    pub async fn collect_garbage(&self) -> Result<GcReport> {
        todo!()
    }
}

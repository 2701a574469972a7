//! `docker diff`: what a container changed in its file system, from its writable layer (the
//! overlay upper directory, or for the copy snapshotter its tree compared with the image's
//! layers).
//!
//! Docker keeps what it sets up for every container (`/etc/hosts`, `/etc/hostname`,
//! `/etc/resolv.conf`, `/dev`, `/proc`, `/sys`) in a layer of its own below the container's, so
//! its diff and commit never show them. berth creates those mount points in the writable layer
//! when the image lacks them; they are left out here and from commits.

use berth_types::files::ContainerChange;

use crate::build::layers::{self, ChangeKind};
use crate::error::Result;
use crate::Engine;

/// Paths (relative) that the runtime makes in every container; never a change of the container.
const SETUP_PATHS: &[&str] = &["etc/hosts", "etc/hostname", "etc/resolv.conf", "dev", "proc", "sys"];

/// Whether `path` (relative, `etc/hosts`) is, or is below, what the runtime sets up.
pub(crate) fn is_setup_path(path: &str) -> bool {
    SETUP_PATHS.iter().any(|p| path == *p || path.strip_prefix(p).is_some_and(|rest| rest.starts_with('/')))
}

impl Engine {
    /// `docker diff`: changed (0), added (1) and deleted (2) paths, sorted.
    pub async fn container_changes(&self, name: &str) -> Result<Vec<ContainerChange>> {
        let record = self.inner.containers.resolve(name)?;
        self.blocking(move |inner| {
            let changes = layers::writable_changes(inner, &record.id)?;
            Ok(visible_changes(changes))
        })
        .await
    }
}

/// The changes without the runtime's set-up paths, and without a directory that shows only
/// because one of them was made in it (its times changed, nothing else).
fn visible_changes(changes: Vec<layers::PathChange>) -> Vec<ContainerChange> {
    let (setup, mut rest): (Vec<_>, Vec<_>) = changes.into_iter().partition(|c| is_setup_path(&c.path));
    let below =
        |dir: &str, c: &layers::PathChange| c.path.starts_with(dir) && c.path[dir.len()..].starts_with('/');
    let keep: Vec<bool> = rest
        .iter()
        .map(|c| {
            !(c.kind == ChangeKind::Modified
                && c.same_dir_attributes
                && setup.iter().any(|s| below(&c.path, s))
                && !rest.iter().any(|other| below(&c.path, other)))
        })
        .collect();
    let mut kept = keep.into_iter();
    rest.retain(|_| kept.next().unwrap_or(true));
    let mut out: Vec<ContainerChange> = rest
        .into_iter()
        .map(|c| ContainerChange { path: format!("/{}", c.path), kind: c.kind as u8 })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use layers::PathChange;

    fn change(path: &str, kind: ChangeKind, same: bool) -> PathChange {
        PathChange { path: path.into(), kind, same_dir_attributes: same }
    }

    #[test]
    fn setup_paths_and_the_directories_they_touched_are_hidden() {
        assert!(is_setup_path("etc/hosts") && is_setup_path("dev/null") && is_setup_path("proc"));
        assert!(!is_setup_path("etc/hostsx") && !is_setup_path("devices") && !is_setup_path("etc"));
        let got = visible_changes(vec![
            change("etc", ChangeKind::Modified, true),
            change("etc/hosts", ChangeKind::Added, false),
            change("proc", ChangeKind::Added, false),
            change("tmp", ChangeKind::Modified, true),
            change("tmp/new", ChangeKind::Added, false),
            change("bin/rm", ChangeKind::Deleted, false),
        ]);
        let shown: Vec<String> = got.iter().map(|c| format!("{} {}", c.letter(), c.path)).collect();
        assert_eq!(shown, ["D /bin/rm", "C /tmp", "A /tmp/new"]);
        // /etc changed for itself as well: shown.
        let got = visible_changes(vec![
            change("etc", ChangeKind::Modified, true),
            change("etc/hosts", ChangeKind::Added, false),
            change("etc/motd", ChangeKind::Added, false),
        ]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].path, "/etc");
    }
}

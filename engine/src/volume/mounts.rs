//! A container's mounts at its create: `-v`, `--mount`, `--tmpfs` and the image's VOLUMEs
//! checked (Docker's wording), volumes made on demand (named, or anonymous for one container),
//! new empty volumes filled with what the image has at their path (Docker's copy-up), and the
//! result as the runtime spec's mounts.

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use berth_types::container::ContainerConfig;
use berth_types::mount::{clean_absolute, validate_mounts};
use berth_types::volume::{Mount, MountPoint, MountType};
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use oci_spec::image::ImageConfiguration;

use super::{anonymous_name, volume_users, ANONYMOUS_LABEL};
use crate::error::{Error, IoContext, Result};
use crate::runtime::UserMount;
use crate::EngineInner;

/// The volumes and mounts of a container being created. While it lives, the volumes it mounts
/// count as in use (the container's record does not exist yet); [`Attached::undo`] removes
/// the volumes it made when the create fails.
pub(crate) struct Attached<'a> {
    inner: &'a EngineInner,
    id: String,
    /// Volumes noted as in use by this container until its record exists.
    pending: Vec<String>,
    /// Volumes this create made.
    created: Vec<String>,
    /// What the runtime spec mounts, parents before what is mounted inside them.
    pub mounts: Vec<UserMount>,
}

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        for name in &self.pending {
            self.inner.volumes.remove_pending(name, &self.id);
        }
    }
}

impl Attached<'_> {
    /// Removes the volumes this create made, unless something else has started to use them.
    pub(crate) fn undo(self) {
        let store = &self.inner.volumes;
        let _guard = store.lock();
        let users = volume_users(self.inner);
        for name in &self.created {
            let others = users.get(name).map(|ids| ids.iter().any(|i| *i != self.id)).unwrap_or(false);
            if !others {
                if let Err(e) = store.remove_locked(name) {
                    tracing::warn!(volume = %name, error = %e, "removing a volume of a failed create");
                }
            }
        }
    }
}

/// Checks `config.mounts`, adds the image's VOLUMEs that no mount covers as anonymous volumes,
/// makes the volumes that do not exist yet, creates a missing bind source where the mount asks
/// for it, copies the image's content into new empty volumes, and replaces `config.mounts`
/// with the result (every volume named), which the container's record keeps. Nothing is made
/// when a mount is invalid.
pub(crate) fn attach<'a>(
    inner: &'a EngineInner,
    id: &str,
    config: &mut ContainerConfig,
    image: &ImageConfiguration,
    rootfs: &Path,
) -> Result<Attached<'a>> {
    let mut attached =
        Attached { inner, id: id.to_string(), pending: Vec::new(), created: Vec::new(), mounts: Vec::new() };
    let mut mounts = validate(&config.mounts)?;
    let image_volumes = image.config().as_ref().and_then(|c| c.volumes().clone()).unwrap_or_default();
    for path in image_volumes {
        let Some(target) = clean_absolute(&path) else {
            tracing::warn!(volume = %path, "ignoring the image's VOLUME that is not an absolute path");
            continue;
        };
        if target != "/" && !mounts.iter().any(|m| m.target == target) {
            mounts.push(Mount { mount_type: MountType::Volume, target, ..Default::default() });
        }
    }
    if mounts.is_empty() {
        config.mounts = mounts;
        return Ok(attached);
    }

    let made = (|| -> Result<()> {
        {
            let store = &inner.volumes;
            let _guard = store.lock();
            for m in mounts.iter_mut().filter(|m| m.mount_type == MountType::Volume) {
                let (name, labels, anonymous) = if m.source.is_empty() {
                    (anonymous_name(), BTreeMap::from([(ANONYMOUS_LABEL.to_string(), String::new())]), true)
                } else {
                    (m.source.clone(), BTreeMap::new(), false)
                };
                let made_for = anonymous.then_some(id);
                let (_, made) = store.create_locked(&name, labels, anonymous, made_for)?;
                if made {
                    attached.created.push(name.clone());
                }
                if !attached.pending.contains(&name) {
                    store.add_pending(&name, id);
                    attached.pending.push(name.clone());
                }
                m.source = name;
            }
            // Under the lock: two creates that mount one new volume copy into it once.
            for m in mounts.iter().filter(|m| m.mount_type == MountType::Volume) {
                copy_up(rootfs, &m.target, &store.data_path(&m.source))?;
            }
        }
        for m in mounts.iter().filter(|m| m.mount_type == MountType::Bind) {
            if m.create_mountpoint && fs::symlink_metadata(&m.source).is_err() {
                // `-v /host:/path` with a missing host path: made as a directory (Docker).
                fs::create_dir_all(&m.source).context(|| format!("creating bind source {}", m.source))?;
            }
        }
        Ok(())
    })();
    if let Err(e) = made {
        attached.undo();
        return Err(e);
    }
    attached.mounts = mounts
        .iter()
        .map(|m| UserMount {
            kind: m.mount_type,
            source: match m.mount_type {
                MountType::Bind => PathBuf::from(&m.source),
                MountType::Volume => inner.volumes.data_path(&m.source),
                MountType::Tmpfs => PathBuf::new(),
            },
            destination: PathBuf::from(&m.target),
            read_only: m.read_only,
            tmpfs_size: m.tmpfs_size,
            propagation: m.propagation.clone(),
        })
        .collect();
    attached.mounts.sort_by_key(|m| m.destination.components().count());
    config.mounts = mounts;
    Ok(attached)
}

/// The mounts of a container's record as `inspect` shows them.
pub(crate) fn mount_points(inner: &EngineInner, mounts: &[Mount]) -> Vec<MountPoint> {
    mounts
        .iter()
        .map(|m| MountPoint {
            mount_type: m.mount_type,
            name: if m.mount_type == MountType::Volume { m.source.clone() } else { String::new() },
            source: match m.mount_type {
                MountType::Bind => m.source.clone(),
                MountType::Volume => inner.volumes.data_path(&m.source).display().to_string(),
                MountType::Tmpfs => String::new(),
            },
            destination: m.target.clone(),
            read_only: m.read_only,
        })
        .collect()
}

/// Checks each mount as Docker's daemon does ([`validate_mounts`], with its wording; paths
/// cleaned), and on the host that a bind source which is not to be made exists.
fn validate(mounts: &[Mount]) -> Result<Vec<Mount>> {
    let mounts = validate_mounts(mounts)
        .map_err(|e| Error::InvalidField { field: "mounts", message: e.to_string() })?;
    for m in &mounts {
        if m.mount_type == MountType::Bind && !m.create_mountpoint && fs::symlink_metadata(&m.source).is_err()
        {
            return Err(Error::InvalidInput(format!(
                "invalid mount config for type \"bind\": bind source path does not exist: {}",
                m.source
            )));
        }
    }
    Ok(mounts)
}

/// Docker's copy-up: a volume that is empty gets what the image has at `target` (a directory),
/// with that directory's owner and mode. `target` is resolved inside `rootfs` (symlinks in the
/// image cannot lead to the host's files).
fn copy_up(rootfs: &Path, target: &str, data: &Path) -> Result<()> {
    if fs::read_dir(data).context(|| format!("reading {}", data.display()))?.next().is_some() {
        return Ok(());
    }
    let root = nix::fcntl::open(rootfs, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| Error::io(format!("opening {}", rootfs.display()), e.into()))?;
    let relative = target.trim_start_matches('/');
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let source = match nix::fcntl::openat2(root.as_fd(), relative, how) {
        Ok(fd) => fd,
        // Nothing (or no directory) there in the image: nothing to copy.
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => return Ok(()),
        Err(e) => return Err(Error::io(format!("opening {target} in the image"), e.into())),
    };
    let stat = nix::sys::stat::fstat(source.as_fd())
        .map_err(|e| Error::io(format!("reading {target} in the image"), e.into()))?;
    // The copy reads the directory through its descriptor: no path is looked up again.
    let through = PathBuf::from(format!("/proc/self/fd/{}", source.as_raw_fd()));
    crate::snapshot::copy::apply_layer(&through, data)?;
    std::os::unix::fs::chown(data, Some(stat.st_uid), Some(stat.st_gid))
        .context(|| format!("setting the owner of {}", data.display()))?;
    fs::set_permissions(data, fs::Permissions::from_mode(stat.st_mode & 0o7777))
        .context(|| format!("setting the mode of {}", data.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(t: MountType, source: &str, target: &str) -> Mount {
        Mount { mount_type: t, source: source.into(), target: target.into(), ..Default::default() }
    }

    #[test]
    fn bind_sources_must_exist_unless_made() {
        // The checks without the host are berth_types::mount's (and tested there).
        let err = |m: Vec<Mount>| validate(&m).unwrap_err().to_string();
        assert_eq!(
            err(vec![mount(MountType::Bind, "/surely/not/here", "/x")]),
            "invalid mount config for type \"bind\": bind source path does not exist: /surely/not/here"
        );
        assert_eq!(
            err(vec![mount(MountType::Volume, "vol", "/data"), mount(MountType::Tmpfs, "", "/data/")]),
            "Duplicate mount point: /data"
        );
        // A missing bind source is fine when the mount asks for it to be made (-v).
        let mut create = mount(MountType::Bind, "/surely/not/here", "/x");
        create.create_mountpoint = true;
        assert_eq!(validate(&[create]).unwrap()[0].source, "/surely/not/here");
    }

    #[test]
    fn volumes_are_in_use_while_their_container_is_created_and_a_failed_create_removes_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::EngineConfig::new(dir.path().join("root"), dir.path().join("run"));
        let engine = crate::Engine::open_blocking(config).unwrap();
        let inner = engine.inner();
        let rootfs = dir.path().join("rootfs");
        fs::create_dir(&rootfs).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime
            .block_on(engine.create_volume(berth_types::volume::VolumeCreate {
                name: "existing".into(),
                ..Default::default()
            }))
            .unwrap();

        let mut config = ContainerConfig {
            mounts: vec![
                mount(MountType::Volume, "existing", "/a"),
                mount(MountType::Volume, "made", "/b"),
                mount(MountType::Volume, "", "/c"),
                mount(MountType::Tmpfs, "", "/t"),
            ],
            ..Default::default()
        };
        let attached = attach(inner, "c1", &mut config, &ImageConfiguration::default(), &rootfs).unwrap();
        let anonymous = config.mounts[2].source.clone();
        assert_eq!(anonymous.len(), 64);
        assert_eq!(attached.mounts.len(), 4);
        assert_eq!(attached.mounts[0].source, inner.volumes.data_path("existing"));
        // No record names the container yet, but its volumes are in use.
        let e = runtime.block_on(engine.remove_volume("existing", false)).unwrap_err();
        assert_eq!(e.to_string(), "remove existing: volume is in use - [c1]");
        let report = runtime.block_on(engine.prune_volumes(true)).unwrap();
        assert!(report.volumes_deleted.is_empty(), "{report:?}");

        // The create fails: what it made goes, what existed stays.
        attached.undo();
        assert_eq!(inner.volumes.names().unwrap(), ["existing"]);
        runtime.block_on(engine.remove_volume("existing", false)).unwrap();
    }

    #[test]
    fn copy_up_copies_only_into_empty_volumes_and_stays_in_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        fs::create_dir_all(rootfs.join("data/sub")).unwrap();
        fs::write(rootfs.join("data/sub/f"), b"image").unwrap();
        std::os::unix::fs::symlink("/data", rootfs.join("link")).unwrap();
        // An absolute symlink in the image resolves inside the root, never to the host's path.
        let host = dir.path().join("host");
        fs::create_dir_all(&host).unwrap();
        fs::write(host.join("secret"), b"host").unwrap();
        std::os::unix::fs::symlink(&host, rootfs.join("escape")).unwrap();

        let empty = dir.path().join("v1");
        fs::create_dir(&empty).unwrap();
        copy_up(&rootfs, "/link", &empty).unwrap();
        assert_eq!(fs::read(empty.join("sub/f")).unwrap(), b"image");

        let full = dir.path().join("v2");
        fs::create_dir(&full).unwrap();
        fs::write(full.join("mine"), b"kept").unwrap();
        copy_up(&rootfs, "/data", &full).unwrap();
        assert!(!full.join("sub").exists(), "a volume with data is not copied into");

        let escaped = dir.path().join("v3");
        fs::create_dir(&escaped).unwrap();
        copy_up(&rootfs, "/escape", &escaped).unwrap();
        assert!(!escaped.join("secret").exists());
        copy_up(&rootfs, "/missing", &escaped).unwrap();
        assert_eq!(fs::read_dir(&escaped).unwrap().count(), 0);
    }
}

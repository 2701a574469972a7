//! `volumes:` (short and long syntax) and `tmpfs:` of a service as mounts: the short syntax and
//! `tmpfs:` are read as `-v` and `--tmpfs` are ([`berth_types::mount`]), and every mount is
//! checked as the engine will check it.

use berth_types::mount;
use berth_types::volume::{Mount, MountType};
use docker_compose_types as spec;

use super::{invalid_project, resolve_path, Project};
use crate::error::{Error, Result};

pub(super) fn mounts(
    project: &Project,
    service: &str,
    volumes: &[spec::Volumes],
    tmpfs: Option<&spec::Tmpfs>,
) -> Result<Vec<Mount>> {
    let named =
        |key: &str| -> Result<String> {
            project.volumes.get(key).map(|v| v.name.clone()).ok_or_else(|| {
                invalid_project(format!("service {service:?} refers to undefined volume {key}"))
            })
        };
    let mut out = Vec::new();
    for v in volumes {
        match v {
            spec::Volumes::Simple(text) => {
                // `-v`'s syntax; a source starting with `~` is a bind under $HOME, as Compose has it.
                let mut mount = mount::parse_volume(text)
                    .map_err(|e| invalid_project(format!("services.{service}.volumes: {e}")))?;
                if mount.mount_type == MountType::Volume && mount.source.starts_with('~') {
                    mount.mount_type = MountType::Bind;
                    // The short syntax creates a missing host directory, as `-v` does.
                    mount.create_mountpoint = true;
                }
                match mount.mount_type {
                    MountType::Bind => {
                        mount.source = resolve_path(&project.working_dir, &mount.source).display().to_string()
                    }
                    MountType::Volume if !mount.source.is_empty() => mount.source = named(&mount.source)?,
                    _ => {}
                }
                out.push(mount);
            }
            spec::Volumes::Advanced(a) => {
                let source = a.source.clone().unwrap_or_default();
                let mount = match a._type.as_str() {
                    "bind" => {
                        if source.is_empty() {
                            return Err(invalid_project(format!(
                                "services.{service}.volumes: a bind mount needs a source"
                            )));
                        }
                        Mount {
                            mount_type: MountType::Bind,
                            source: resolve_path(&project.working_dir, &source).display().to_string(),
                            target: a.target.clone(),
                            read_only: a.read_only,
                            tmpfs_size: None,
                            create_mountpoint: a
                                .bind
                                .as_ref()
                                .and_then(|b| b.create_host_path)
                                .unwrap_or(false),
                            propagation: None,
                        }
                    }
                    "volume" => Mount {
                        mount_type: MountType::Volume,
                        source: if source.is_empty() { String::new() } else { named(&source)? },
                        target: a.target.clone(),
                        read_only: a.read_only,
                        tmpfs_size: None,
                        ..Default::default()
                    },
                    "tmpfs" => Mount {
                        mount_type: MountType::Tmpfs,
                        source: String::new(),
                        target: a.target.clone(),
                        read_only: a.read_only,
                        tmpfs_size: a.tmpfs.as_ref().map(|t| t.size).filter(|s| *s > 0),
                        ..Default::default()
                    },
                    other => {
                        return Err(Error::Unsupported(format!("services.{service}.volumes: type {other:?}")))
                    }
                };
                out.push(mount);
            }
        }
    }
    let tmpfs_targets = match tmpfs {
        None => Vec::new(),
        Some(spec::Tmpfs::Simple(t)) => vec![t.clone()],
        Some(spec::Tmpfs::List(list)) => list.clone(),
    };
    for t in tmpfs_targets {
        out.push(
            mount::parse_tmpfs(&t).map_err(|e| invalid_project(format!("services.{service}.tmpfs: {e}")))?,
        );
    }
    // Refused here rather than when the first container is made; the mounts stay as written
    // (cleaning them would change the config hash of existing stacks).
    mount::validate_mounts(&out).map_err(|e| invalid_project(format!("services.{service}.volumes: {e}")))?;
    Ok(out)
}

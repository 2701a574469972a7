//! Which team owns an object, and how far a caller reaches it. Admins reach everything; a
//! member reaches their teams' objects, sees (and uses) shared ones, and meets every other
//! team's object as if it did not exist.

use std::collections::HashSet;

use berth_types::auth::Role;
use berth_types::volume::MountType;
use berth_types::ContainerConfig;

use super::Caller;
use crate::serve::auth::store::OwnedKind;
use crate::serve::error::ApiError;
use crate::serve::state::AppState;

/// An object an operation acts on or uses, by the name the caller gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object {
    Container(String),
    Image(String),
    Stack(String),
    Volume(String),
}

impl Object {
    /// The answer for an object the caller may not see: the engine's own words for one that
    /// does not exist, so that the two cannot be told apart.
    pub fn not_found(&self) -> ApiError {
        ApiError::not_found(match self {
            Object::Container(n) => format!("No such container: {n}"),
            Object::Image(n) => format!("No such image: {n}"),
            Object::Stack(n) => format!("no such stack: {n}"),
            Object::Volume(n) => format!("No such volume: {n}"),
        })
    }
}

/// What a caller may do with an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Act on it.
    Allowed,
    /// Not theirs: answered as if it did not exist.
    Hidden,
    /// Shared (no team owns it): they may see and use it, not change it.
    ReadOnly,
}

/// What the operation does with the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Reads it or uses it (a container's image, a mounted volume).
    Read,
    /// Changes or removes it.
    Change,
}

/// How far `caller` reaches `object`. An object that does not exist is `Allowed`: the engine
/// then answers 404 in the same words a hidden one gets.
pub async fn reach(state: &AppState, caller: &Caller, object: &Object) -> Result<Reach, ApiError> {
    if caller.is_admin() {
        return Ok(Reach::Allowed);
    }
    let teams = caller.team_ids();
    let ours = |owners: &[i64]| owners.iter().any(|t| teams.contains(t));
    match object {
        Object::Container(name) => {
            let Ok(c) = state.engine.inspect_container(name).await else { return Ok(Reach::Allowed) };
            let owner: Vec<i64> = state.auth.container_owner(&c.id).await?.into_iter().collect();
            Ok(if ours(&owner) { Reach::Allowed } else { Reach::Hidden })
        }
        // A stack is its team's when its containers are; one with no containers yet is anyone's
        // to bring up.
        Object::Stack(name) => {
            let Ok(containers) = state.engine.stack_containers(name, true).await else {
                return Ok(Reach::Allowed);
            };
            if containers.is_empty() {
                return Ok(Reach::Allowed);
            }
            let owned = state.auth.owned(OwnedKind::Containers, &teams).await?;
            Ok(if containers.iter().any(|c| owned.contains(&c.id)) { Reach::Allowed } else { Reach::Hidden })
        }
        // A volume is the team's that made it, or for an anonymous volume its container's.
        Object::Volume(name) => {
            let Ok(volume) = state.engine.inspect_volume(name).await else { return Ok(Reach::Allowed) };
            let mut owners: Vec<i64> = state.auth.volume_owner(&volume.name).await?.into_iter().collect();
            if owners.is_empty() && volume.anonymous {
                for container in &volume.used_by {
                    owners.extend(state.auth.container_owner(container).await?);
                }
            }
            Ok(shared_or(ours(&owners), owners.is_empty()))
        }
        Object::Image(name) => {
            let Ok(image) = state.engine.inspect_image(name).await else { return Ok(Reach::Allowed) };
            let owners = state.auth.image_owners(&image.id).await?;
            Ok(shared_or(ours(&owners), owners.is_empty()))
        }
    }
}

fn shared_or(ours: bool, shared: bool) -> Reach {
    if ours {
        Reach::Allowed
    } else if shared {
        Reach::ReadOnly
    } else {
        Reach::Hidden
    }
}

/// Refuses the call unless `caller` may `use` `object`: another team's object is 404, a
/// shared one may be read but not changed (403).
pub async fn check(state: &AppState, caller: &Caller, object: &Object, using: Use) -> Result<(), ApiError> {
    match (reach(state, caller, object).await?, using) {
        (Reach::Allowed, _) | (Reach::ReadOnly, Use::Read) => Ok(()),
        (Reach::Hidden, _) => Err(object.not_found()),
        (Reach::ReadOnly, Use::Change) => Err(ApiError::forbidden(match object {
            Object::Image(n) => format!("image {n} is shared (no team owns it): only admins change it"),
            Object::Volume(n) => format!("volume {n} is shared (no team owns it): only admins remove it"),
            other => format!("permission denied: {other:?}"),
        })),
    }
}

/// Refuses the call unless `caller` has `role` and may `use` `object`.
pub async fn guard(
    state: &AppState,
    caller: &Caller,
    role: Role,
    object: Object,
    using: Use,
) -> Result<(), ApiError> {
    caller.require(role)?;
    check(state, caller, &object, using).await
}

/// The IDs of the containers or images a member may see in a list: their teams' and, for
/// images, the shared ones. `None` for admins: everything.
pub async fn visible_ids(
    state: &AppState,
    caller: &Caller,
    kind: OwnedKind,
) -> Result<Option<Visible>, ApiError> {
    if caller.is_admin() {
        return Ok(None);
    }
    let theirs = state.auth.owned(kind, &caller.team_ids()).await?;
    let owned_by_some_team = match kind {
        OwnedKind::Images => Some(state.auth.owned_by_any(kind).await?),
        OwnedKind::Containers => None,
    };
    Ok(Some(Visible { theirs, owned_by_some_team }))
}

/// The IDs a member may see (see [`visible_ids`]).
pub struct Visible {
    theirs: HashSet<String>,
    /// For images: every ID some team owns (the others are shared).
    owned_by_some_team: Option<HashSet<String>>,
}

impl Visible {
    pub fn contains(&self, id: &str) -> bool {
        self.theirs.contains(id) || self.owned_by_some_team.as_ref().is_some_and(|any| !any.contains(id))
    }
}

/// The images `caller` may not use (as a build's base, say): every image some team owns but
/// none of theirs. Shared images and their teams' are usable; admins use all.
pub async fn hidden_images(state: &AppState, caller: &Caller) -> Result<HashSet<String>, ApiError> {
    if caller.is_admin() {
        return Ok(HashSet::new());
    }
    let theirs = state.auth.owned(OwnedKind::Images, &caller.team_ids()).await?;
    let owned = state.auth.owned_by_any(OwnedKind::Images).await?;
    Ok(owned.into_iter().filter(|id| !theirs.contains(id)).collect())
}

/// Whether `caller` may see what happens to a stack (its events): it has containers, one of
/// them their team's. (A stack that is down has none, and then its name is not shown.)
pub async fn stack_visible(state: &AppState, caller: &Caller, name: &str) -> bool {
    if caller.is_admin() {
        return true;
    }
    let Ok(containers) = state.engine.stack_containers(name, true).await else { return false };
    let Ok(owned) = state.auth.owned(OwnedKind::Containers, &caller.team_ids()).await else {
        return false;
    };
    containers.iter().any(|c| owned.contains(&c.id))
}

/// What in a container's config reaches beyond the container into the host: only admins may
/// ask for it, since it is root on the node. `None` when there is nothing of the kind.
pub fn host_access(config: &ContainerConfig) -> Option<String> {
    if let Some(bind) = config.mounts.iter().find(|m| m.mount_type == MountType::Bind) {
        return Some(format!("a bind mount of the host path {:?}", bind.source));
    }
    if !config.cap_add.is_empty() {
        return Some("added capabilities (--cap-add)".into());
    }
    if config.privileged {
        return Some("a privileged container (--privileged)".into());
    }
    if !config.devices.is_empty() {
        return Some("a host device (--device)".into());
    }
    // A seccomp profile of one's own (or none) reopens what the default closes.
    if config
        .security_opt
        .iter()
        .any(|o| o.starts_with("seccomp") && !matches!(o.as_str(), "seccomp=builtin"))
    {
        return Some("a seccomp profile other than the default (--security-opt seccomp=...)".into());
    }
    if config.network.as_deref() == Some("host") {
        return Some("the host's network (--network host)".into());
    }
    None
}

/// Refuses what a member may not ask of a container: reaching into the host, or using another
/// team's image, volume or network namespace (`--network container:NAME`).
pub async fn check_container_config(
    state: &AppState,
    caller: &Caller,
    config: &ContainerConfig,
) -> Result<(), ApiError> {
    if caller.is_admin() {
        return Ok(());
    }
    if let Some(what) = host_access(config) {
        return Err(admin_only(&what));
    }
    let mut used = Vec::new();
    if let Some(other) = config.network.as_deref().and_then(|n| n.strip_prefix("container:")) {
        used.push(Object::Container(other.to_string()));
    }
    used.push(Object::Image(config.image.clone()));
    used.extend(
        config
            .mounts
            .iter()
            .filter(|m| m.mount_type == MountType::Volume && !m.source.is_empty())
            .map(|m| Object::Volume(m.source.clone())),
    );
    for object in &used {
        check(state, caller, object, Use::Read).await?;
    }
    Ok(())
}

/// The refusal of something only admins may do.
pub fn admin_only(what: &str) -> ApiError {
    ApiError::forbidden(format!("permission denied: {what} needs the admin role"))
}

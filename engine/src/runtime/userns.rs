//! User namespaces (`berth serve --userns-remap`): root in a container is an unprivileged id
//! on the host, from the subordinate id ranges of a user in /etc/subuid and /etc/subgid, as
//! dockerd's `--userns-remap` gives it.
//!
//! The mapping goes into the runtime spec (`linux.uidMappings`/`gidMappings` and a user
//! namespace), so runc and the built-in runtime apply the same one. The image's layers are
//! shared, not copied: the overlay stands on idmapped mounts of them (see
//! [`crate::snapshot`]), for which [`namespace_fd`] makes a user namespace with the mapping.

use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{
    LinuxIdMapping, LinuxIdMappingBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, Spec,
};
use serde::{Deserialize, Serialize};

use berth_types::container::ContainerConfig;
use berth_types::volume::MountType;

use super::spec::UserMount;
use crate::error::{Error, IoContext, Result};

/// The user `--userns-remap default` maps to (dockerd's is `dockremap`).
pub const DEFAULT_USER: &str = "berth";

/// How many ids a range made for [`DEFAULT_USER`] holds (dockerd's size).
const DEFAULT_RANGE: u32 = 65536;

/// Where the search for a free range starts (useradd's SUB_UID_MIN).
const FIRST_SUBORDINATE: u32 = 100000;

/// One contiguous range: `size` ids from `container` in the container are `host`... on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRange {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

/// A remapping of user and group ids, container side to host side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
}

impl IdMap {
    /// The host uid and gid of the container's root.
    pub fn root(&self) -> (u32, u32) {
        (to_host(&self.uids, 0).unwrap_or(u32::MAX), to_host(&self.gids, 0).unwrap_or(u32::MAX))
    }

    /// The host id of container uid `uid`, if mapped.
    pub fn host_uid(&self, uid: u32) -> Option<u32> {
        to_host(&self.uids, uid)
    }

    /// The host id of container gid `gid`, if mapped.
    pub fn host_gid(&self, gid: u32) -> Option<u32> {
        to_host(&self.gids, gid)
    }

    /// The container's uid of host uid `uid`; one outside the mapping is the overflow id, as the
    /// kernel shows it in the namespace.
    pub fn container_uid(&self, uid: u32) -> u32 {
        from_host(&self.uids, uid).unwrap_or(OVERFLOW_ID)
    }

    /// The container's gid of host gid `gid` (the overflow id outside the mapping).
    pub fn container_gid(&self, gid: u32) -> u32 {
        from_host(&self.gids, gid).unwrap_or(OVERFLOW_ID)
    }

    /// `/proc/PID/uid_map`'s text for the uid ranges.
    pub fn uid_map_text(&self) -> String {
        map_text(&self.uids)
    }

    /// `/proc/PID/gid_map`'s text for the gid ranges.
    pub fn gid_map_text(&self) -> String {
        map_text(&self.gids)
    }

    /// A short name for the mapping, as dockerd names its per-remapping directories
    /// (`100000.100000`).
    pub fn name(&self) -> String {
        let (u, g) = self.root();
        format!("{u}.{g}")
    }
}

/// What an id outside a user namespace's mapping is seen as inside (`/proc/sys/kernel/overflowuid`).
const OVERFLOW_ID: u32 = 65534;

fn from_host(ranges: &[IdRange], id: u32) -> Option<u32> {
    ranges.iter().find(|r| id >= r.host && id - r.host < r.size).map(|r| r.container + (id - r.host))
}

fn to_host(ranges: &[IdRange], id: u32) -> Option<u32> {
    ranges
        .iter()
        .find(|r| id >= r.container && id - r.container < r.size)
        .map(|r| r.host + (id - r.container))
}

fn map_text(ranges: &[IdRange]) -> String {
    ranges.iter().map(|r| format!("{} {} {}\n", r.container, r.host, r.size)).collect()
}

/// The mapping `--userns-remap SPEC` asks for: `default` (the `berth` user, made with its
/// ranges when missing), or `USER[:GROUP]` by name or id, with every range the user (group)
/// has in /etc/subuid (/etc/subgid), one after the other from container id 0, as dockerd
/// maps them.
pub fn remap(spec: &str) -> Result<IdMap> {
    remap_with(spec, Path::new("/etc"))
}

fn remap_with(spec: &str, etc: &Path) -> Result<IdMap> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err(Error::InvalidInput("--userns-remap needs a user name, or \"default\"".into()));
    }
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u.to_string(), Some(g.to_string())),
        None => (spec.to_string(), None),
    };
    let user = if user == "default" {
        ensure_default_user(etc)?;
        DEFAULT_USER.to_string()
    } else {
        user
    };
    let passwd = fs::read_to_string(etc.join("passwd")).unwrap_or_default();
    let (user_name, uid) = lookup(&passwd, &user)
        .ok_or_else(|| Error::InvalidInput(format!("Could not find user {user:?} for --userns-remap")))?;
    let group = group.unwrap_or_else(|| user_name.clone());
    let groups = fs::read_to_string(etc.join("group")).unwrap_or_default();
    let (group_name, gid) = match lookup(&groups, &group) {
        Some(found) => found,
        // A user without a group of its own name: its ranges in /etc/subgid go by the user's name.
        None if group == user_name => (user_name.clone(), uid),
        None => {
            return Err(Error::InvalidInput(format!("Could not find group {group:?} for --userns-remap")))
        }
    };
    let uids = ranges(&etc.join("subuid"), &user_name, uid)?;
    let gids = ranges(&etc.join("subgid"), &group_name, gid)?;
    if uids.is_empty() {
        return Err(Error::InvalidInput(format!(
            "No subuid ranges found for user {user_name:?} in {}",
            etc.join("subuid").display()
        )));
    }
    if gids.is_empty() {
        return Err(Error::InvalidInput(format!(
            "No subgid ranges found for group {group_name:?} in {}",
            etc.join("subgid").display()
        )));
    }
    Ok(IdMap { uids, gids })
}

/// (name, id) of the entry in a passwd or group file named `who` (a name or a number).
fn lookup(file: &str, who: &str) -> Option<(String, u32)> {
    file.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id: u32 = f.nth(1)?.parse().ok()?;
            Some((name.to_string(), id))
        })
        .find(|(name, id)| name == who || who.parse::<u32>().ok() == Some(*id))
}

/// The ranges of `name` (or of its id) in a subordinate id file, placed one after the other
/// from container id 0.
fn ranges(path: &Path, name: &str, id: u32) -> Result<Vec<IdRange>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    let mut out = Vec::new();
    let mut next = 0u32;
    for (owner, start, count) in entries(&text) {
        if owner == name || owner.parse::<u32>().ok() == Some(id) {
            out.push(IdRange { container: next, host: start, size: count });
            next = next.saturating_add(count);
        }
    }
    Ok(out)
}

/// `owner:start:count` lines of a subordinate id file.
fn entries(text: &str) -> Vec<(&str, u32, u32)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let owner = f.next()?;
            let start = f.next()?.parse().ok()?;
            let count = f.next()?.parse().ok()?;
            Some((owner, start, count))
        })
        .collect()
}

/// Makes the `berth` system user when it is missing (useradd, as dockerd makes `dockremap`),
/// and gives it a range of 65536 ids in /etc/subuid and /etc/subgid where it has none: the
/// first free one from 100000.
fn ensure_default_user(etc: &Path) -> Result<()> {
    let passwd = fs::read_to_string(etc.join("passwd")).unwrap_or_default();
    if lookup(&passwd, DEFAULT_USER).is_none() {
        if etc != Path::new("/etc") {
            return Err(Error::InvalidInput(format!("no user {DEFAULT_USER} in {}", etc.display())));
        }
        let out = std::process::Command::new("useradd")
            .args(["--system", "--no-create-home", "--shell", "/bin/false", "--user-group", DEFAULT_USER])
            .output()
            .map_err(|e| Error::io("running useradd to create the berth user", e))?;
        if !out.status.success() {
            return Err(Error::Runtime(format!(
                "useradd {DEFAULT_USER} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    for file in ["subuid", "subgid"] {
        add_range_if_missing(&etc.join(file), DEFAULT_USER)?;
    }
    Ok(())
}

fn add_range_if_missing(path: &Path, name: &str) -> Result<()> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    let taken = entries(&text);
    if taken.iter().any(|(owner, _, _)| *owner == name) {
        return Ok(());
    }
    let mut start = FIRST_SUBORDINATE;
    // The first start past every range it would overlap.
    loop {
        let end = start as u64 + DEFAULT_RANGE as u64;
        match taken.iter().find(|(_, s, c)| (*s as u64) < end && (start as u64) < *s as u64 + *c as u64) {
            Some((_, s, c)) => {
                start = s.checked_add(*c).ok_or_else(|| {
                    Error::Runtime(format!("no free subordinate id range in {}", path.display()))
                })?
            }
            None => break,
        }
    }
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .context(|| format!("opening {}", path.display()))?;
    let sep = if text.is_empty() || text.ends_with('\n') { "" } else { "\n" };
    writeln!(file, "{sep}{name}:{start}:{DEFAULT_RANGE}").context(|| format!("writing {}", path.display()))
}

/// `spec` with a new user namespace and `map` in it: the container's processes run as the
/// mapped ids.
pub fn apply(spec: &mut Spec, map: &IdMap) -> Result<()> {
    let linux = spec
        .linux_mut()
        .as_mut()
        .ok_or_else(|| Error::InvalidInput("runtime spec has no linux section".into()))?;
    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    if !namespaces.iter().any(|n| n.typ() == LinuxNamespaceType::User) {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::User)
                .build()
                .map_err(|e| Error::InvalidInput(format!("user namespace: {e}")))?,
        );
    }
    // sysfs may be mounted only by the owner of the network namespace, which a joined one (the
    // daemon's bridge endpoint, `--network host`, `container:`) is not: the host's /sys,
    // read-only, instead (what runc does for a rootless container).
    let joined_netns =
        namespaces.iter().any(|n| n.typ() == LinuxNamespaceType::Network && n.path().is_some());
    linux.set_namespaces(Some(namespaces));
    if joined_netns {
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        for m in mounts.iter_mut().filter(|m| m.typ().as_deref() == Some("sysfs")) {
            m.set_typ(Some("bind".into()));
            m.set_source(Some("/sys".into()));
            m.set_options(Some(
                ["rbind", "nosuid", "noexec", "nodev", "ro"].iter().map(|o| o.to_string()).collect(),
            ));
        }
        spec.set_mounts(Some(mounts));
    }
    let linux = spec.linux_mut().as_mut().expect("checked above");
    let oci = |ranges: &[IdRange]| -> Result<Vec<LinuxIdMapping>> {
        ranges
            .iter()
            .map(|r| {
                LinuxIdMappingBuilder::default()
                    .container_id(r.container)
                    .host_id(r.host)
                    .size(r.size)
                    .build()
                    .map_err(|e| Error::InvalidInput(format!("id mapping: {e}")))
            })
            .collect()
    };
    linux.set_uid_mappings(Some(oci(&map.uids)?));
    linux.set_gid_mappings(Some(oci(&map.gids)?));
    Ok(())
}

/// The mapping a container gets: the daemon's (`remap`) unless it asks for the host's user
/// namespace (`--userns=host`). As dockerd, a privileged container must ask for it.
pub fn for_container(remap: Option<&IdMap>, config: &ContainerConfig) -> Result<Option<IdMap>> {
    let host = match config.userns_mode.as_deref() {
        None | Some("") => false,
        Some("host") => true,
        Some(other) => return Err(Error::InvalidInput(format!("invalid USER mode: {other}"))),
    };
    let Some(map) = remap.filter(|_| !host) else { return Ok(None) };
    if config.privileged {
        return Err(Error::InvalidInput(
            "privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode".into(),
        ));
    }
    Ok(Some(map.clone()))
}

/// The directories of the daemon's root on the way to a container's files (its root file
/// system, /etc files, named volumes) that an external runtime reaches as the container's root:
/// runc resolves the rootfs and the bind sources after it has entered the user namespace.
const TRAVERSED_DIRS: [&str; 3] = ["", "containers", "volumes"];

/// Opens the way through the daemon's root `root` for the remapped root of `map` (as dockerd
/// does under remapping): those directories become 0710 with the remapped root's group, so it
/// may pass through them but not list them, and no one else gains anything. Without a
/// remapping, what an earlier remapping opened is closed again (0700, root's group). Every
/// directory above `root` must let the remapped root through as well; it is refused with
/// dockerd's words otherwise.
pub fn open_daemon_dirs(map: Option<&IdMap>, root: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for name in TRAVERSED_DIRS {
        let dir = root.join(name);
        let meta = fs::metadata(&dir).context(|| format!("reading {}", dir.display()))?;
        let (gid, mode) = match map {
            Some(map) => (map.root().1, 0o710),
            None if meta.mode() & 0o7777 == 0o710 && meta.gid() != 0 => (0, 0o700),
            None => continue,
        };
        std::os::unix::fs::chown(&dir, Some(0), Some(gid))
            .context(|| format!("giving {} to the remapped root's group", dir.display()))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
            .context(|| format!("setting the mode of {}", dir.display()))?;
    }
    let Some(map) = map else { return Ok(()) };
    let (uid, gid) = map.root();
    let root = fs::canonicalize(root).context(|| format!("resolving {}", root.display()))?;
    for dir in root.ancestors().skip(1) {
        let meta = fs::metadata(dir).context(|| format!("reading {}", dir.display()))?;
        if !traversable(meta.mode(), meta.uid(), meta.gid(), uid, gid) {
            return Err(Error::InvalidInput(format!(
                "a subdirectory in your graphroot path ({}) restricts access to the remapped root uid/gid; please fix by allowing 'o+x' permissions on existing directories",
                root.display()
            )));
        }
    }
    Ok(())
}

/// Whether a directory of `mode`, owned by `owner`:`group`, lets `uid`:`gid` search it.
fn traversable(mode: u32, owner: u32, group: u32, uid: u32, gid: u32) -> bool {
    if owner == uid {
        mode & 0o100 != 0
    } else if group == gid {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    }
}

/// Gives a remapped container's directory `dir` (its rootfs, /etc files) to the remapped root's
/// group, 0710: runc passes through it as the container's root.
pub fn open_container_dir(map: &IdMap, dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::os::unix::fs::chown(dir, Some(0), Some(map.root().1))
        .context(|| format!("giving {} to the remapped root's group", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o710))
        .context(|| format!("setting the mode of {}", dir.display()))
}

/// Gives the mapped root what it must own, as dockerd does under remapping: the files berth
/// writes for the container in its directory `container_dir` (hosts, resolv.conf, hostname),
/// and a named volume's directory while it is still the host root's (a volume made for this
/// container). Binds keep their host owners.
pub fn give_files(map: &IdMap, spec: &Spec, container_dir: &Path, mounts: &[UserMount]) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let (uid, gid) = map.root();
    let chown = |path: &Path| {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
            .context(|| format!("giving {} to the container's root", path.display()))
    };
    for m in spec.mounts().as_deref().unwrap_or_default() {
        if let Some(source) = m.source() {
            if source.starts_with(container_dir) && source.is_file() {
                chown(source)?;
            }
        }
    }
    for m in mounts.iter().filter(|m| m.kind == MountType::Volume) {
        if fs::metadata(&m.source).is_ok_and(|meta| meta.uid() == 0 && meta.gid() == 0) {
            chown(&m.source)?;
        }
    }
    Ok(())
}

/// The mapping in a runtime spec, when it asks for a new user namespace.
pub fn from_spec(spec: &Spec) -> Option<IdMap> {
    let linux = spec.linux().as_ref()?;
    let new_userns = linux
        .namespaces()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    if !new_userns {
        return None;
    }
    let ranges = |m: &Option<Vec<LinuxIdMapping>>| -> Vec<IdRange> {
        m.as_deref()
            .unwrap_or_default()
            .iter()
            .map(|m| IdRange { container: m.container_id(), host: m.host_id(), size: m.size() })
            .collect()
    };
    Some(IdMap { uids: ranges(linux.uid_mappings()), gids: ranges(linux.gid_mappings()) })
}

/// A user namespace holding `map`, as a descriptor (for idmapped mounts): a child is made in a
/// new user namespace, the mapping written for it, its namespace opened, and the child ended.
pub fn namespace_fd(map: &IdMap) -> Result<OwnedFd> {
    let (wait_read, wait_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::io("creating a pipe", e.into()))?;
    // SAFETY: clone without CLONE_VM behaves like fork; the child only blocks on a read of a
    // pipe and exits, without allocating or touching locks.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid < 0 {
        return Err(Error::io("creating a user namespace", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        let mut byte = 0u8;
        // SAFETY: closing our copy of the write end (so that the parent's close is EOF here),
        // reading into a local; _exit runs no destructor.
        unsafe {
            libc::close(wait_write.as_raw_fd());
            libc::read(wait_read.as_raw_fd(), (&mut byte as *mut u8).cast(), 1);
            libc::_exit(0);
        }
    }
    let pid = pid as i32;
    drop(wait_read);
    let result = (|| -> Result<OwnedFd> {
        write_maps(pid, map)?;
        let path = format!("/proc/{pid}/ns/user");
        Ok(fs::File::open(&path).context(|| format!("opening {path}"))?.into())
    })();
    drop(wait_write);
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    result
}

/// Writes `map` into the user namespace of `pid` (a child of ours that waits for it).
pub(crate) fn write_maps(pid: i32, map: &IdMap) -> Result<()> {
    for (file, text) in [("uid_map", map.uid_map_text()), ("gid_map", map.gid_map_text())] {
        let path = format!("/proc/{pid}/{file}");
        fs::write(&path, text.as_bytes()).context(|| format!("writing {path}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_joined_network_namespace_gets_the_hosts_sys_read_only() {
        let map = IdMap {
            uids: vec![IdRange { container: 0, host: 100000, size: 65536 }],
            gids: vec![IdRange { container: 0, host: 100000, size: 65536 }],
        };
        let sys = |spec: &Spec| -> (Option<String>, Option<String>) {
            let m = spec
                .mounts()
                .as_ref()
                .unwrap()
                .iter()
                .find(|m| m.destination() == Path::new("/sys"))
                .unwrap();
            (m.typ().clone(), m.source().as_ref().map(|s| s.display().to_string()))
        };
        let mut own = Spec::default();
        apply(&mut own, &map).unwrap();
        assert_eq!(sys(&own).0.as_deref(), Some("sysfs"));
        assert_eq!(from_spec(&own), Some(map.clone()));
        let mut joined = Spec::default();
        let linux = joined.linux_mut().as_mut().unwrap();
        let mut namespaces = linux.namespaces().clone().unwrap();
        for n in namespaces.iter_mut().filter(|n| n.typ() == LinuxNamespaceType::Network) {
            n.set_path(Some("/run/berth/netns/x".into()));
        }
        linux.set_namespaces(Some(namespaces));
        apply(&mut joined, &map).unwrap();
        assert_eq!(sys(&joined), (Some("bind".into()), Some("/sys".into())));
    }

    #[test]
    fn traversal_goes_by_owner_then_group_then_others() {
        assert!(traversable(0o711, 0, 0, 100000, 100000));
        assert!(!traversable(0o700, 0, 0, 100000, 100000));
        assert!(traversable(0o710, 0, 100000, 100000, 100000));
        // The owner's bits decide for the owner, even when others may.
        assert!(!traversable(0o011, 100000, 0, 100000, 100000));
        assert!(!traversable(0o701, 0, 100000, 100000, 100000));
    }

    #[test]
    fn daemon_dirs_open_for_the_remapped_root_and_close_again() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o711)).unwrap();
        let root = dir.path().join("root");
        for name in TRAVERSED_DIRS {
            fs::create_dir_all(root.join(name)).unwrap();
            fs::set_permissions(root.join(name), fs::Permissions::from_mode(0o700)).unwrap();
        }
        let map = IdMap {
            uids: vec![IdRange { container: 0, host: 100000, size: 65536 }],
            gids: vec![IdRange { container: 0, host: 100000, size: 65536 }],
        };
        let modes = || -> Vec<(u32, u32)> {
            TRAVERSED_DIRS
                .iter()
                .map(|n| fs::metadata(root.join(n)).unwrap())
                .map(|m| (m.mode() & 0o7777, m.gid()))
                .collect()
        };
        if nix::unistd::geteuid().is_root() {
            open_daemon_dirs(Some(&map), &root).unwrap();
            assert_eq!(modes(), [(0o710, 100000); 3]);
            open_daemon_dirs(None, &root).unwrap();
            assert_eq!(modes(), [(0o700, 0); 3]);
            // A parent the remapped root cannot pass: refused, as dockerd does.
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
            let e = open_daemon_dirs(Some(&map), &root).unwrap_err().to_string();
            assert!(e.contains("restricts access to the remapped root uid/gid"), "{e}");
        }
    }

    #[test]
    fn ranges_from_the_subordinate_files() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path();
        fs::write(etc.join("passwd"), "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n")
            .unwrap();
        fs::write(etc.join("group"), "root:x:0:\nalice:x:1000:\nstaff:x:50:\n").unwrap();
        fs::write(etc.join("subuid"), "alice:100000:65536\nbob:165536:65536\n1000:300000:10\n").unwrap();
        fs::write(etc.join("subgid"), "alice:100000:65536\nstaff:200000:1000\n").unwrap();
        let map = remap_with("alice", etc).unwrap();
        assert_eq!(
            map.uids,
            vec![
                IdRange { container: 0, host: 100000, size: 65536 },
                IdRange { container: 65536, host: 300000, size: 10 }
            ]
        );
        assert_eq!(map.gids, vec![IdRange { container: 0, host: 100000, size: 65536 }]);
        assert_eq!(map.root(), (100000, 100000));
        assert_eq!(map.uid_map_text(), "0 100000 65536\n65536 300000 10\n");
        assert_eq!(map.host_uid(65537), Some(300001));
        assert_eq!(map.host_uid(70000), None);
        let by_id = remap_with("1000:staff", etc).unwrap();
        assert_eq!(by_id.gids, vec![IdRange { container: 0, host: 200000, size: 1000 }]);
        assert!(remap_with("carol", etc).unwrap_err().to_string().contains("Could not find user"));
        fs::write(etc.join("passwd"), "root:x:0:0::/root:/bin/sh\nnoranges:x:7:7::/:/bin/sh\n").unwrap();
        assert!(remap_with("noranges", etc).unwrap_err().to_string().contains("No subuid ranges"));
    }

    #[test]
    fn a_new_range_goes_past_the_taken_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subuid");
        fs::write(&path, "alice:100000:65536\nbob:200000:10").unwrap();
        add_range_if_missing(&path, "berth").unwrap();
        add_range_if_missing(&path, "berth").unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "alice:100000:65536\nbob:200000:10\nberth:200010:65536\n"
        );
    }
}

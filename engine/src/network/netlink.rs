//! Links, addresses and routes over rtnetlink, and network namespaces pinned by a bind mount.
//!
//! Every operation runs on a short-lived thread of its own with a current-thread tokio runtime:
//! a netlink socket belongs to the network namespace of the thread that opened it, and entering
//! a container's namespace (`setns`) changes the calling thread, so no thread that runs anything
//! else may do it.

use std::fs::{self, File};
use std::future::Future;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder};

use crate::error::{Error, IoContext, Result};

/// Which network namespace a netlink operation runs in.
pub(crate) enum Netns<'a> {
    /// The daemon's own.
    Current,
    /// The namespace pinned (or a process's `ns/net`) at this path.
    Join(&'a Path),
    /// A new namespace, pinned at this path by a bind mount once made.
    New(&'a Path),
}

/// Runs `f` with a netlink handle in `netns` (see the module's comment on threads).
pub(crate) fn run<T, F, Fut>(netns: Netns<'_>, f: F) -> Result<T>
where
    T: Send,
    F: FnOnce(Handle) -> Fut + Send,
    Fut: Future<Output = Result<T>>,
{
    let join = match &netns {
        Netns::Join(path) => {
            Some(File::open(path).context(|| format!("opening network namespace {}", path.display()))?)
        }
        _ => None,
    };
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                match (&netns, &join) {
                    (Netns::Join(_), Some(file)) => {
                        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
                            .map_err(|e| Error::Runtime(format!("entering a network namespace: {e}")))?
                    }
                    (Netns::New(pin), _) => {
                        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                            .map_err(|e| Error::Runtime(format!("creating a network namespace: {e}")))?;
                        pin_current(pin)?;
                    }
                    _ => {}
                }
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context(|| "starting a netlink runtime".into())?;
                runtime.block_on(async move {
                    let (connection, handle, _) =
                        rtnetlink::new_connection().context(|| "opening a netlink socket".into())?;
                    tokio::spawn(connection);
                    f(handle).await
                })
            })
            .join()
            .unwrap_or_else(|_| Err(Error::Runtime("a netlink thread panicked".into())))
    })
}

/// Pins the calling thread's network namespace at `pin` (an empty file bind-mounted over).
fn pin_current(pin: &Path) -> Result<()> {
    pin_namespace(Path::new(&format!("/proc/self/task/{}/ns/net", nix::unistd::gettid())), pin)
}

/// Pins the network namespace at `source` (a process's `ns/net`) at `pin`.
pub(crate) fn pin_namespace(source: &Path, pin: &Path) -> Result<()> {
    if let Some(dir) = pin.parent() {
        fs::create_dir_all(dir).context(|| format!("creating {}", dir.display()))?;
    }
    File::create(pin).context(|| format!("creating {}", pin.display()))?;
    nix::mount::mount(Some(source), pin, None::<&str>, nix::mount::MsFlags::MS_BIND, None::<&str>).map_err(
        |e| {
            let _ = fs::remove_file(pin);
            Error::Runtime(format!("pinning a network namespace at {}: {e}", pin.display()))
        },
    )
}

/// Unmounts and removes a namespace pin; a missing one is fine. The namespace goes with its
/// last process and pin, and its veth ends with it.
pub(crate) fn remove_pin(pin: &Path) -> Result<()> {
    match nix::mount::umount2(pin, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(Error::Runtime(format!("unmounting {}: {e}", pin.display()))),
    }
    match fs::remove_file(pin) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("removing {}", pin.display()), e)),
    }
}

/// Whether `pin` is a pinned network namespace (a bind mount of an nsfs file).
pub(crate) fn is_pinned(pin: &Path) -> bool {
    // An nsfs file has the magic of nsfs; the empty file under it is on the run directory's fs.
    nix::sys::statfs::statfs(pin).map(|s| s.filesystem_type().0 == 0x6e736673).unwrap_or(false)
}

fn netlink_error(what: impl std::fmt::Display, e: rtnetlink::Error) -> Error {
    Error::Runtime(format!("{what}: {}", describe(&e)))
}

/// The errno of a netlink error, when it is one.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

fn describe(e: &rtnetlink::Error) -> String {
    match errno(e) {
        Some(code) => std::io::Error::from_raw_os_error(code).to_string(),
        None => e.to_string(),
    }
}

/// The index of link `name`, `None` if there is none.
pub(crate) async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(Some(link.header.index)),
        Ok(None) => Ok(None),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(netlink_error(format_args!("looking up link {name}"), e)),
    }
}

/// Adds `address/prefix` to link `index`; an address it already has is fine.
async fn add_address(handle: &Handle, index: u32, address: Ipv4Addr, prefix: u8) -> Result<()> {
    match handle.address().add(index, address.into(), prefix).execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
        Err(e) => Err(netlink_error(format_args!("adding address {address}/{prefix}"), e)),
    }
}

async fn set_up(handle: &Handle, index: u32) -> Result<()> {
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| netlink_error(format_args!("setting link {index} up"), e))
}

/// Creates bridge `name` with `gateway/prefix` on it and sets it up; an existing one is kept.
pub(crate) async fn ensure_bridge(handle: &Handle, name: &str, gateway: Ipv4Addr, prefix: u8) -> Result<()> {
    let index = match link_index(handle, name).await? {
        Some(index) => index,
        None => {
            match handle.link().add(LinkBridge::new(name).build()).execute().await {
                Ok(()) => {}
                Err(e) if errno(&e) == Some(libc::EEXIST) => {}
                Err(e) => return Err(netlink_error(format_args!("creating bridge {name}"), e)),
            }
            link_index(handle, name)
                .await?
                .ok_or_else(|| Error::Runtime(format!("bridge {name} vanished after it was created")))?
        }
    };
    add_address(handle, index, gateway, prefix).await?;
    set_up(handle, index).await
}

/// Deletes link `name`; a missing one is fine.
pub(crate) async fn delete_link(handle: &Handle, name: &str) -> Result<()> {
    let Some(index) = link_index(handle, name).await? else { return Ok(()) };
    match handle.link().del(index).execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(()),
        Err(e) => Err(netlink_error(format_args!("deleting link {name}"), e)),
    }
}

/// Creates the veth pair `host_name` (on `bridge`, up) and `ifname` made directly inside the
/// network namespace open as `netns`, with `mac`.
pub(crate) async fn add_veth(
    handle: &Handle,
    host_name: &str,
    ifname: &str,
    netns: &File,
    mac: [u8; 6],
    bridge: &str,
) -> Result<()> {
    let bridge_index = link_index(handle, bridge)
        .await?
        .ok_or_else(|| Error::Runtime(format!("bridge {bridge} does not exist")))?;
    let peer = LinkUnspec::new_with_name(ifname).address(mac.to_vec()).setns_by_fd(netns.as_raw_fd()).build();
    let message =
        LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(rtnetlink::packet_route::link::InfoKind::Veth)
            .name(host_name.to_string())
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
    handle
        .link()
        .add(message)
        .execute()
        .await
        .map_err(|e| netlink_error(format_args!("creating veth pair {host_name}"), e))?;
    let index = link_index(handle, host_name)
        .await?
        .ok_or_else(|| Error::Runtime(format!("veth {host_name} vanished after it was created")))?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).controller(bridge_index).up().build())
        .execute()
        .await
        .map_err(|e| netlink_error(format_args!("attaching {host_name} to {bridge}"), e))
}

/// Inside a container's namespace: `lo` up, and when given, `ifname` with its address up and
/// (for the first network) the default route through the gateway.
pub(crate) async fn configure_inside(
    handle: &Handle,
    iface: Option<(&str, Ipv4Addr, u8, Option<Ipv4Addr>)>,
) -> Result<()> {
    if let Some(lo) = link_index(handle, "lo").await? {
        set_up(handle, lo).await?;
    }
    let Some((ifname, address, prefix, gateway)) = iface else { return Ok(()) };
    let index = link_index(handle, ifname)
        .await?
        .ok_or_else(|| Error::Runtime(format!("{ifname} is missing in the container's namespace")))?;
    add_address(handle, index, address, prefix).await?;
    set_up(handle, index).await?;
    if let Some(gateway) = gateway {
        let route = RouteMessageBuilder::<Ipv4Addr>::new().gateway(gateway).output_interface(index).build();
        match handle.route().add(route).execute().await {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(libc::EEXIST) => {}
            Err(e) => return Err(netlink_error(format_args!("adding the default route via {gateway}"), e)),
        }
    }
    Ok(())
}

/// IPv4 networks configured on the current namespace's interfaces (to pick free subnets).
pub(crate) async fn ipv4_networks(handle: &Handle) -> Result<Vec<ipnet::Ipv4Net>> {
    use rtnetlink::packet_route::address::AddressAttribute;
    let mut nets = Vec::new();
    let mut addresses = handle.address().get().execute();
    while let Some(message) = addresses.try_next().await.map_err(|e| netlink_error("listing addresses", e))? {
        for attribute in &message.attributes {
            if let AddressAttribute::Address(std::net::IpAddr::V4(ip)) = attribute {
                if let Ok(net) = ipnet::Ipv4Net::new(*ip, message.header.prefix_len) {
                    nets.push(net.trunc());
                }
            }
        }
    }
    Ok(nets)
}

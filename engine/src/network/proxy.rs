//! Published ports: one userland proxy process per container (`berth port-proxy`, as Docker's
//! docker-proxy), which survives a restart of the daemon like the monitor does.
//!
//! The daemon binds the host side itself, so that a port in use fails the start with Docker's
//! error and a port the kernel picks is known at once; the proxy inherits the bound sockets
//! (fds 3, 4, ...) and forwards to the container's address: TCP with splice(2) through a pipe
//! (no copy through user space), UDP per client with a socket of its own.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_types::network::{PortBinding, PublishedPort};

use crate::error::{Error, IoContext, Result};
use crate::EngineInner;

/// The subcommand of the engine's program that runs a proxy (`berth port-proxy ...`).
pub const SUBCOMMAND: &str = "port-proxy";
/// How long a connection to the container may take to be accepted.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a UDP client's flow is kept without traffic (Docker's proxy uses 90 s).
const UDP_IDLE: Duration = Duration::from_secs(90);

/// A bound host socket and where it forwards to.
enum Bound {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

impl Bound {
    fn fd(&self) -> RawFd {
        match self {
            Bound::Tcp(l) => l.as_raw_fd(),
            Bound::Udp(s) => s.as_raw_fd(),
        }
    }
}

/// Binds every port of `ports` and starts the proxy forwarding them to `target`. Returns what
/// was published (with the ports the kernel picked) and the proxy's PID.
pub(crate) fn start(
    inner: &EngineInner,
    dir: &Path,
    ports: &[PortBinding],
    target: Ipv4Addr,
) -> Result<(Vec<PublishedPort>, i32)> {
    let mut bound = Vec::new();
    let mut published = Vec::new();
    for port in ports {
        let host_ip: Ipv4Addr = if port.host_ip.is_empty() {
            Ipv4Addr::UNSPECIFIED
        } else {
            port.host_ip
                .parse()
                .map_err(|_| Error::InvalidInput(format!("invalid IP address: {}", port.host_ip)))?
        };
        let address = SocketAddrV4::new(host_ip, port.host_port);
        let in_use = |e: std::io::Error| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                Error::Conflict(format!(
                    "Bind for {host_ip}:{} failed: port is already allocated",
                    port.host_port
                ))
            } else {
                Error::io(format!("binding {address}/{}", port.protocol), e)
            }
        };
        let socket = if port.protocol == "udp" {
            Bound::Udp(UdpSocket::bind(address).map_err(in_use)?)
        } else {
            Bound::Tcp(TcpListener::bind(address).map_err(in_use)?)
        };
        let local = match &socket {
            Bound::Tcp(l) => l.local_addr(),
            Bound::Udp(s) => s.local_addr(),
        }
        .context(|| format!("reading the address bound for {address}"))?;
        published.push(PublishedPort {
            host_ip: host_ip.to_string(),
            host_port: local.port(),
            container_port: port.container_port,
            protocol: port.protocol.clone(),
        });
        bound.push(socket);
    }
    let pid = spawn(inner, dir, &bound, &published, target)?;
    Ok((published, pid))
}

fn spawn(
    inner: &EngineInner,
    dir: &Path,
    bound: &[Bound],
    published: &[PublishedPort],
    target: Ipv4Addr,
) -> Result<i32> {
    let n = bound.len() as RawFd;
    // Copies above the fds the child's sockets go to, so that no dup2 overwrites another.
    let mut high = Vec::new();
    for socket in bound {
        // SAFETY: F_DUPFD_CLOEXEC on an open descriptor; the result is owned below.
        let fd = unsafe { libc::fcntl(socket.fd(), libc::F_DUPFD_CLOEXEC, 3 + n) };
        if fd < 0 {
            return Err(Error::io("duplicating a published port's socket", std::io::Error::last_os_error()));
        }
        // SAFETY: a new descriptor nothing else owns.
        high.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    let raw: Vec<RawFd> = high.iter().map(|f| f.as_raw_fd()).collect();
    let mut command = Command::new(&inner.config.monitor_exe);
    command.arg(SUBCOMMAND).arg(dir);
    for (i, port) in published.iter().enumerate() {
        command.arg(format!("{}:{}:{}:{}", port.protocol, 3 + i, target, port.container_port));
    }
    let log = OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.join("port-proxy.log"))
        .context(|| format!("opening {}", dir.join("port-proxy.log").display()))?;
    command.current_dir("/").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            for (i, fd) in raw.iter().enumerate() {
                if libc::dup2(*fd, 3 + i as RawFd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let exe = inner.config.monitor_exe.display().to_string();
    let mut child = command.spawn().context(|| format!("starting the port proxy {exe}"))?;
    drop(high);
    // It forks into its own session and prints the PID of the process that stays.
    let mut answer = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut answer);
    }
    let status = child.wait().context(|| format!("waiting for the port proxy {exe}"))?;
    match answer.trim().parse::<i32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => Err(Error::Runtime(format!(
            "the port proxy exited before it was ready ({status}); see {}",
            dir.join("port-proxy.log").display()
        ))),
    }
}

/// Whether `pid` is the port proxy of the container in `dir` (not a process that reused the PID).
pub(crate) fn is_running(pid: i32, dir: &Path) -> bool {
    if pid <= 0 {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    args.get(1) == Some(&SUBCOMMAND.as_bytes()) && args.get(2) == Some(&dir.as_os_str().as_encoded_bytes())
}

/// Kills the proxy by its PID and waits (briefly) until it is gone.
pub(crate) fn stop(pid: i32, dir: &Path) {
    if !is_running(pid, dir) {
        return;
    }
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(2);
    while is_running(pid, dir) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `berth port-proxy <container dir> <proto>:<fd>:<ip>:<port>...`: daemonises, prints its PID
/// on stdout, and forwards until killed. Returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    let mut forwards = Vec::new();
    for arg in args.iter().skip(1) {
        let parts: Vec<&str> = arg.split(':').collect();
        let parsed = match parts.as_slice() {
            [proto, fd, ip, port] => (|| {
                let fd: RawFd = fd.parse().ok()?;
                let target = SocketAddr::new(ip.parse().ok()?, port.parse().ok()?);
                Some((proto.to_string(), fd, target))
            })(),
            _ => None,
        };
        match parsed {
            Some(f) if f.1 >= 3 => forwards.push(f),
            _ => {
                eprintln!("port-proxy: bad forward {arg:?} (want proto:fd:ip:port)");
                return 2;
            }
        }
    }
    // Its own session, detached from the daemon: it outlives a restart of the daemon.
    let _ = nix::unistd::setsid();
    // SAFETY: the process has one thread here.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            println!("{child}");
            return 0;
        }
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(e) => {
            eprintln!("port-proxy: fork: {e}");
            return 1;
        }
    }
    // Stdout is the daemon's pipe: closing it tells the daemon the PID is all there is.
    if let Ok(null) = File::options().write(true).open("/dev/null") {
        // SAFETY: dup2 onto stdout with an open descriptor.
        unsafe { libc::dup2(null.as_raw_fd(), 1) };
    }
    let mut threads = Vec::new();
    for (proto, fd, target) in forwards {
        // SAFETY: the daemon passed these descriptors, bound sockets of that protocol.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        threads.push(std::thread::spawn(move || {
            if proto == "udp" {
                serve_udp(UdpSocket::from(owned), target)
            } else {
                serve_tcp(TcpListener::from(owned), target)
            }
        }));
    }
    for thread in threads {
        let _ = thread.join();
    }
    0
}

fn serve_tcp(listener: TcpListener, target: SocketAddr) {
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        std::thread::spawn(move || {
            let Ok(server) = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) else { return };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else { return };
            let upstream = std::thread::spawn(move || pump(&client2, &server2));
            pump(&server, &client);
            let _ = upstream.join();
        });
    }
}

/// Moves bytes from `from` to `to` with splice(2) through a pipe until `from` ends, then ends
/// the write side of `to`.
fn pump(from: &TcpStream, to: &TcpStream) {
    use nix::fcntl::{splice, SpliceFFlags};
    const CHUNK: usize = 1 << 16;
    let Ok((pipe_read, pipe_write)) = nix::unistd::pipe() else { return };
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_MORE;
    'outer: loop {
        let n = match splice(from.as_fd(), None, pipe_write.as_fd(), None, CHUNK, flags) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut left = n;
        while left > 0 {
            match splice(pipe_read.as_fd(), None, to.as_fd(), None, left, flags) {
                Ok(0) | Err(_) => break 'outer,
                Ok(m) => left -= m,
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// UDP clients and their sockets towards the container, with when each was last heard.
type Flows = Arc<Mutex<std::collections::HashMap<SocketAddr, (Arc<UdpSocket>, Instant)>>>;

fn serve_udp(socket: UdpSocket, target: SocketAddr) {
    let socket = Arc::new(socket);
    // One socket towards the container per client, so that replies find their client.
    let flows: Flows = Default::default();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, client)) = socket.recv_from(&mut buf) else { continue };
        let flow = {
            let mut table = flows.lock().unwrap_or_else(|p| p.into_inner());
            table.retain(|_, (_, seen)| seen.elapsed() < UDP_IDLE);
            if let Some((flow, seen)) = table.get_mut(&client) {
                *seen = Instant::now();
                Some(flow.clone())
            } else {
                let Ok(flow) = UdpSocket::bind(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0)) else {
                    continue;
                };
                if flow.connect(target).is_err() {
                    continue;
                }
                let _ = flow.set_read_timeout(Some(UDP_IDLE));
                let flow = Arc::new(flow);
                table.insert(client, (flow.clone(), Instant::now()));
                let (reply, back, flows2) = (flow.clone(), socket.clone(), flows.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 65536];
                    while let Ok(n) = reply.recv(&mut buf) {
                        let _ = back.send_to(&buf[..n], client);
                    }
                    flows2.lock().unwrap_or_else(|p| p.into_inner()).remove(&client);
                });
                Some(flow)
            }
        };
        if let Some(flow) = flow {
            let _ = flow.send(&buf[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// The forwarding loops on 127.0.0.1, in-process: a "container" server behind each.
    #[test]
    fn tcp_and_udp_are_forwarded_both_ways() {
        // TCP: an echo server, the proxy's listener in front of it.
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = server.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut c, _) = server.accept().unwrap();
            let mut data = Vec::new();
            c.read_to_end(&mut data).unwrap();
            c.write_all(&data).unwrap();
        });
        let front = TcpListener::bind("127.0.0.1:0").unwrap();
        let front_addr = front.local_addr().unwrap();
        std::thread::spawn(move || serve_tcp(front, target));
        let mut client = TcpStream::connect(front_addr).unwrap();
        let payload: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        client.write_all(&payload).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        client.read_to_end(&mut back).unwrap();
        assert_eq!(back, payload);

        // UDP: an echo server answering each datagram, the proxy's socket in front of it.
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let target = server.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            for _ in 0..2 {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                server.send_to(&buf[..n], from).unwrap();
            }
        });
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let front_addr = front.local_addr().unwrap();
        std::thread::spawn(move || serve_udp(front, target));
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 1500];
        for message in [&b"ping"[..], &b"again"[..]] {
            client.send_to(message, front_addr).unwrap();
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (message, front_addr));
        }
    }
}

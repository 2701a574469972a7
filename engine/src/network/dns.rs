//! The embedded DNS server of a user network: UDP and TCP port 53 on the network's gateway
//! address. It answers A queries for the names, aliases and 12-digit ID prefixes of the
//! containers attached to that network, and forwards other names to the host's resolvers.
//!
//! A container on several user networks has one resolver (its first network's gateway), yet
//! resolves the names of all its networks, as with Docker: the server knows the asking
//! container by the source address of the query (its address on this network) and answers
//! from every user network that container is on, and from no other.
//!
//! Plain threads rather than tasks: the engine is opened outside a tokio runtime too (tests,
//! `open_blocking`), and a server per network is a handful of blocked threads.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};

use super::NetworkRecord;
use crate::error::{Error, Result};
use crate::EngineInner;

/// How long answers may be cached: containers come and go.
const TTL: u32 = 10;
/// How long a forwarded query may take.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);

/// A running server; dropping it stops its threads.
pub(crate) struct DnsServer {
    stop: Arc<AtomicBool>,
    address: SocketAddr,
}

impl DnsServer {
    /// Listens on the network's gateway, port 53 (the bridge must have the address already).
    pub(crate) fn start(inner: Weak<EngineInner>, record: &NetworkRecord) -> Result<DnsServer> {
        let address = SocketAddr::new(IpAddr::V4(record.gateway), 53);
        let bind_error = |e: std::io::Error| {
            Error::io(format!("starting the DNS server of network {} on {address}", record.name), e)
        };
        let udp = UdpSocket::bind(address).map_err(bind_error)?;
        let tcp = TcpListener::bind(address).map_err(bind_error)?;
        let stop = Arc::new(AtomicBool::new(false));
        let upstream = host_resolvers();
        let network_id = record.id.clone();
        {
            let (stop, inner, network_id, upstream) =
                (stop.clone(), inner.clone(), network_id.clone(), upstream.clone());
            std::thread::Builder::new()
                .name("dns-udp".into())
                .spawn(move || serve_udp(udp, stop, inner, network_id, upstream))
                .map_err(|e| Error::io("starting a DNS thread", e))?;
        }
        {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("dns-tcp".into())
                .spawn(move || serve_tcp(tcp, stop, inner, network_id, upstream))
                .map_err(|e| Error::io("starting a DNS thread", e))?;
        }
        Ok(DnsServer { stop, address })
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocked receive and accept so they see the flag and close the sockets.
        if let Ok(socket) = UdpSocket::bind((self.address.ip(), 0)) {
            let _ = socket.send_to(&[0], self.address);
        }
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_millis(200));
    }
}

/// The host's nameservers (its `/etc/resolv.conf`), for names that are not containers'.
fn host_resolvers() -> Vec<SocketAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

fn serve_udp(
    socket: UdpSocket,
    stop: Arc<AtomicBool>,
    inner: Weak<EngineInner>,
    network_id: String,
    upstream: Vec<SocketAddr>,
) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let Ok((n, peer)) = socket.recv_from(&mut buf) else { continue };
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Some(inner) = inner.upgrade() else { break };
        if let Some(answer) = answer(&inner, &network_id, peer.ip(), &buf[..n], &upstream) {
            let _ = socket.send_to(&answer, peer);
        }
    }
}

fn serve_tcp(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    inner: Weak<EngineInner>,
    network_id: String,
    upstream: Vec<SocketAddr>,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(mut stream) = stream else { continue };
        let Ok(peer) = stream.peer_addr() else { continue };
        let (inner, network_id, upstream) = (inner.clone(), network_id.clone(), upstream.clone());
        std::thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            // Length-prefixed messages until the client closes (RFC 7766).
            loop {
                let mut len = [0u8; 2];
                if stream.read_exact(&mut len).is_err() {
                    return;
                }
                let mut query = vec![0u8; u16::from_be_bytes(len) as usize];
                if stream.read_exact(&mut query).is_err() {
                    return;
                }
                let Some(inner) = inner.upgrade() else { return };
                let Some(answer) = answer(&inner, &network_id, peer.ip(), &query, &upstream) else {
                    return;
                };
                let mut out = (answer.len() as u16).to_be_bytes().to_vec();
                out.extend_from_slice(&answer);
                if stream.write_all(&out).is_err() {
                    return;
                }
            }
        });
    }
}

/// The reply to one query message from `peer`; `None` for what is not a query.
fn answer(
    inner: &EngineInner,
    network_id: &str,
    peer: IpAddr,
    query: &[u8],
    upstream: &[SocketAddr],
) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    if request.message_type() != MessageType::Query {
        return None;
    }
    let mut response = Message::new();
    response
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(true)
        .add_queries(request.queries().to_vec());
    let question = request.queries().first()?;
    let name = question.name().to_utf8();
    let asker = match peer {
        IpAddr::V4(ip) => Some(ip),
        IpAddr::V6(ip) => ip.to_ipv4_mapped(),
    };
    match super::endpoint::lookup(inner, network_id, asker, &name) {
        Some(ip) => {
            response.set_authoritative(true);
            if question.query_type() == RecordType::A {
                response.add_answer(Record::from_rdata(question.name().clone(), TTL, RData::A(A(ip))));
            }
            // Other types of a container's name: no data, as Docker answers AAAA.
        }
        None => match forward(query, upstream) {
            Some(reply) => return Some(reply),
            None => {
                response.set_response_code(if upstream.is_empty() {
                    ResponseCode::NXDomain
                } else {
                    ResponseCode::ServFail
                });
            }
        },
    }
    response.to_vec().ok()
}

/// Asks the host's resolvers in turn; the first reply is the answer.
fn forward(query: &[u8], upstream: &[SocketAddr]) -> Option<Vec<u8>> {
    for server in upstream {
        let bind: SocketAddr = if server.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let Ok(socket) = UdpSocket::bind(bind) else { continue };
        let _ = socket.set_read_timeout(Some(FORWARD_TIMEOUT));
        if socket.connect(server).is_err() || socket.send(query).is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok(n) = socket.recv(&mut buf) {
            buf.truncate(n);
            return Some(buf);
        }
    }
    None
}

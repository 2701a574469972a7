//! Traffic counters of a container's network interfaces, for `stats` (Docker's `networks`).

use std::collections::BTreeMap;
use std::fs;

use berth_types::NetworkIo;

/// The counters of every interface but the loopback in the network namespace of process
/// `pid`; none when that namespace is the daemon's own (a container on the host's network:
/// Docker reports no networks then either) or the process is gone.
pub(crate) fn of_process(pid: i32) -> BTreeMap<String, NetworkIo> {
    let own = fs::read_link("/proc/self/ns/net").ok();
    match fs::read_link(format!("/proc/{pid}/ns/net")) {
        Ok(ns) if Some(&ns) != own.as_ref() => {}
        _ => return BTreeMap::new(),
    }
    fs::read_to_string(format!("/proc/{pid}/net/dev")).map(|text| parse_net_dev(&text)).unwrap_or_default()
}

/// `/proc/net/dev`: two header lines, then `name: rx_bytes rx_packets rx_errs rx_drop fifo frame
/// compressed multicast tx_bytes tx_packets tx_errs tx_drop ...` per interface.
fn parse_net_dev(text: &str) -> BTreeMap<String, NetworkIo> {
    let mut interfaces = BTreeMap::new();
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else { continue };
        let name = name.trim();
        let n: Vec<u64> = counters.split_whitespace().map(|v| v.parse().unwrap_or(0)).collect();
        if name == "lo" || n.len() < 12 {
            continue;
        }
        let io = NetworkIo {
            rx_bytes: n[0],
            rx_packets: n[1],
            rx_errors: n[2],
            rx_dropped: n[3],
            tx_bytes: n[8],
            tx_packets: n[9],
            tx_errors: n[10],
            tx_dropped: n[11],
        };
        interfaces.insert(name.to_string(), io);
    }
    interfaces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_is_read_without_the_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0
  eth0:    1046      11    1    2    0     0          0         0      586       7    3    4    0     0       0          0
bad
";
        let got = parse_net_dev(text);
        assert_eq!(got.len(), 1);
        assert_eq!(
            got["eth0"],
            NetworkIo {
                rx_bytes: 1046,
                rx_packets: 11,
                rx_errors: 1,
                rx_dropped: 2,
                tx_bytes: 586,
                tx_packets: 7,
                tx_errors: 3,
                tx_dropped: 4
            }
        );
    }

    #[test]
    fn the_daemons_own_namespace_reports_no_networks() {
        assert!(of_process(std::process::id() as i32).is_empty());
        assert!(of_process(i32::MAX).is_empty());
    }
}

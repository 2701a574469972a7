//! Networks and published ports end to end. Every daemon here runs in a network namespace the
//! test made ([`Daemon::start_in_netns`]): only `lo`, no route out, so no packet leaves it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use berth_tests::Daemon;

const HTTPD: &str =
    "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && exec httpd -f -p 80 -h /www";

fn daemon() -> Daemon {
    let daemon = Daemon::start_in_netns();
    daemon.import_busybox("busybox:latest");
    daemon
}

/// Starts a detached busybox httpd answering `hello-from-<hostname>` on port 80.
fn httpd(daemon: &Daemon, extra: &[&str]) -> String {
    let mut args = vec!["run", "-d"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sh", "-c", HTTPD]);
    daemon.berth(&args).ok().stdout.trim().to_string()
}

/// Interface names in the network namespace of process `pid`.
fn interfaces_of(pid: u32) -> Vec<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).expect("net/dev");
    parse_net_dev(&text)
}

fn parse_net_dev(text: &str) -> Vec<String> {
    let mut names: Vec<String> =
        text.lines().skip(2).filter_map(|l| l.split(':').next()).map(|n| n.trim().to_string()).collect();
    names.sort();
    names
}

/// `GET /` over TCP to 127.0.0.1:`port` from inside the daemon's namespace, retried for a while
/// (the server in the container may still be starting).
fn get_local(daemon: &Daemon, port: u16) -> String {
    daemon.in_netns(|| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let attempt = (|| -> std::io::Result<String> {
                let mut s = TcpStream::connect(("127.0.0.1", port))?;
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
                let mut text = String::new();
                s.read_to_string(&mut text)?;
                Ok(text)
            })();
            match attempt {
                Ok(text) if text.contains("hello-from") => return text,
                other if Instant::now() > deadline => panic!("no answer on 127.0.0.1:{port}: {other:?}"),
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    })
}

/// Processes whose command line mentions `needle` (port proxies of a container directory).
fn processes_with(needle: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

fn veths(daemon: &Daemon) -> Vec<String> {
    interfaces_of(daemon.pid().unwrap()).into_iter().filter(|n| n.starts_with("veth")).collect()
}

/// The veth pairs once `want` of them are left: a released namespace's pairs go with the
/// namespace, which the kernel tears down in the background (waits at most 10 s).
fn veths_settled(daemon: &Daemon, want: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = veths(daemon);
        if now.len() == want || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn netns_pins(daemon: &Daemon) -> Vec<String> {
    match std::fs::read_dir(daemon.run_dir().join("netns")) {
        Ok(entries) => entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    }
}

/// A wget in a throwaway container on `network`; its output, or the failure.
fn wget(daemon: &Daemon, network: &str, url: &str) -> berth_tests::Output {
    // busybox's own `wget -T` crashes (SIGSEGV) in this busybox build: `timeout` bounds it
    // instead, under a shell that stays PID 1 (which ignores SIGTERM), hence the `||`.
    let script = format!("timeout 5 wget -q -O - {url} || exit 1");
    daemon.berth(&["run", "--rm", "--network", network, "busybox", "sh", "-c", &script])
}

#[test]
fn containers_on_a_user_network_reach_each_other_by_name_and_alias() {
    let daemon = daemon();
    daemon.berth(&["network", "create", "front"]).ok();
    httpd(&daemon, &["--name", "web", "--network", "front", "--network-alias", "site"]);
    let by_name = wget(&daemon, "front", "http://web/").ok();
    assert!(by_name.stdout.contains("hello-from-"), "{}", by_name.stdout);
    let by_alias = wget(&daemon, "front", "http://site/").ok();
    assert!(by_alias.stdout.contains("hello-from-"), "{}", by_alias.stdout);
    // TCP with nc too: the client sends, the server container answers.
    daemon
        .berth(&[
            "run",
            "-d",
            "--name",
            "echo",
            "--network",
            "front",
            "busybox",
            "sh",
            "-c",
            "echo pong | nc -l -p 7000",
        ])
        .ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = daemon.berth(&[
            "run",
            "--rm",
            "--network",
            "front",
            "busybox",
            "sh",
            "-c",
            "nc echo 7000 </dev/null",
        ]);
        if out.stdout.contains("pong") {
            break;
        }
        assert!(Instant::now() < deadline, "nc to echo:7000 never answered: {} {}", out.stdout, out.stderr);
        std::thread::sleep(Duration::from_millis(200));
    }
    // Inspect shows the endpoint with its address on the network's subnet.
    let inspect = daemon.berth(&["network", "inspect", "front"]).ok();
    let networks: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    let containers = networks[0]["containers"].as_object().unwrap();
    assert!(containers.values().any(|c| c["name"] == "web" && c["aliases"][0] == "site"), "{inspect:?}");
    // A name no container has is not resolved (and nothing is forwarded out of the namespace).
    wget(&daemon, "front", "http://nobody-here/").fails_with("");
}

#[test]
fn two_networks_are_isolated() {
    let daemon = daemon();
    daemon.berth(&["network", "create", "red"]).ok();
    daemon.berth(&["network", "create", "blue"]).ok();
    httpd(&daemon, &["--name", "redweb", "--network", "red"]);
    let inspect = daemon.berth(&["inspect", "redweb"]).ok();
    let value: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    let address =
        value[0]["network_settings"]["networks"]["red"]["ipv4_address"].as_str().unwrap().to_string();
    let ip = address.split('/').next().unwrap();
    // On its own network it answers by address...
    wget(&daemon, "red", &format!("http://{ip}/")).ok();
    // ...from the other network neither the address nor the name gets there.
    wget(&daemon, "blue", &format!("http://{ip}/")).fails_with("");
    wget(&daemon, "blue", "http://redweb/").fails_with("");
}

#[test]
fn network_modes_none_host_and_container() {
    let daemon = daemon();
    let none = daemon.berth(&["run", "--rm", "--network", "none", "busybox", "cat", "/proc/net/dev"]).ok();
    assert_eq!(parse_net_dev(&none.stdout), ["lo"]);
    let host = daemon.berth(&["run", "--rm", "--network", "host", "busybox", "cat", "/proc/net/dev"]).ok();
    assert_eq!(parse_net_dev(&host.stdout), interfaces_of(daemon.pid().unwrap()));
    assert!(parse_net_dev(&host.stdout).contains(&"berth0".to_string()), "{}", host.stdout);
    // The default bridge: eth0 and lo.
    let bridge = daemon.berth(&["run", "--rm", "busybox", "cat", "/proc/net/dev"]).ok();
    assert_eq!(parse_net_dev(&bridge.stdout), ["eth0", "lo"]);
    // container:NAME shares the other container's namespace: its server is on our 127.0.0.1.
    httpd(&daemon, &["--name", "web"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = wget(&daemon, "container:web", "http://127.0.0.1/");
        if out.code == 0 {
            assert!(out.stdout.contains("hello-from-"), "{}", out.stdout);
            break;
        }
        assert!(Instant::now() < deadline, "no answer through container:web: {}", out.stderr);
        std::thread::sleep(Duration::from_millis(200));
    }
    // A stopped container has no namespace to join.
    daemon.berth(&["create", "--name", "idle", "busybox"]).ok();
    daemon
        .berth(&["run", "--rm", "--network", "container:idle", "busybox", "true"])
        .fails_with("non running container");
}

#[test]
fn published_ports_answer_on_loopback_and_port_shows_them() {
    let daemon = daemon();
    let fixed = daemon.in_netns(|| TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
    httpd(&daemon, &["--name", "fixed", "-p", &format!("127.0.0.1:{fixed}:80")]);
    assert!(get_local(&daemon, fixed).contains("hello-from-"));
    let port = daemon.berth(&["port", "fixed"]).ok();
    assert_eq!(port.stdout.trim(), format!("80/tcp -> 127.0.0.1:{fixed}"));

    // `-p 80`: the kernel picks the host port; `port` tells which.
    httpd(&daemon, &["--name", "picked", "-p", "80"]);
    let shown = daemon.berth(&["port", "picked", "80"]).ok();
    let host_port: u16 = shown.stdout.trim().rsplit(':').next().unwrap().parse().unwrap();
    assert!(shown.stdout.starts_with("0.0.0.0:"), "{}", shown.stdout);
    assert!(get_local(&daemon, host_port).contains("hello-from-"));
    let ps = daemon.berth(&["ps"]).ok();
    assert!(ps.stdout.contains(&format!("0.0.0.0:{host_port}->80/tcp")), "{}", ps.stdout);
    daemon.berth(&["port", "picked", "81"]).fails_with("No public port '81/tcp' published for picked");

    // `-P` publishes the exposed ports (here `--expose`) on ports the kernel picks.
    httpd(&daemon, &["--name", "all", "-P", "--expose", "80"]);
    let shown = daemon.berth(&["port", "all"]).ok();
    let host_port: u16 = shown.stdout.trim().rsplit(':').next().unwrap().parse().unwrap();
    assert!(shown.stdout.starts_with("80/tcp -> 0.0.0.0:"), "{}", shown.stdout);
    assert!(get_local(&daemon, host_port).contains("hello-from-"));
}

#[test]
fn a_port_in_use_fails_the_start_and_leaves_nothing_running() {
    let daemon = daemon();
    let (listener, port) = daemon.in_netns(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        (l, port)
    });
    let out = daemon.berth(&[
        "run",
        "-d",
        "--name",
        "clash",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "busybox",
        "sleep",
        "60",
    ]);
    out.fails_with(&format!("Bind for 127.0.0.1:{port} failed: port is already allocated"));
    let ps = daemon.berth(&["ps", "-q"]).ok();
    assert!(ps.stdout.trim().is_empty(), "a container runs: {}", ps.stdout);
    assert_eq!(veths_settled(&daemon, 0), Vec::<String>::new());
    assert!(netns_pins(&daemon).is_empty(), "{:?}", netns_pins(&daemon));
    assert!(processes_with("port-proxy").iter().all(|pid| {
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        !String::from_utf8_lossy(&cmd).contains(&daemon.root().display().to_string())
    }));
    drop(listener);
    // Once the port is free the same container starts.
    daemon.berth(&["start", "clash"]).ok();
}

#[test]
fn stop_rm_and_network_rm_leave_no_veth_pin_proxy_or_bridge() {
    let daemon = daemon();
    let created = daemon.berth(&["network", "create", "tmpnet"]).ok();
    let bridge = format!("br-{}", &created.stdout.trim()[..12]);
    assert!(interfaces_of(daemon.pid().unwrap()).contains(&bridge));
    let id = httpd(&daemon, &["--name", "busy", "--network", "tmpnet", "-p", "80"]);
    let dir = daemon.root().join("containers").join(&id);
    assert_eq!(veths_settled(&daemon, 1).len(), 1);
    assert_eq!(netns_pins(&daemon), std::slice::from_ref(&id));
    // Its port proxy runs (named by the container's directory).
    assert!(!processes_with(&format!("port-proxy\0{}", dir.display())).is_empty());
    // In use: refused.
    daemon.berth(&["network", "rm", "tmpnet"]).fails_with("has active endpoints");

    daemon.berth(&["stop", "-t", "1", "busy"]).ok();
    assert_eq!(veths_settled(&daemon, 0), Vec::<String>::new());
    assert!(netns_pins(&daemon).is_empty(), "{:?}", netns_pins(&daemon));
    let proxies: Vec<i32> = processes_with("port-proxy")
        .into_iter()
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmd).contains(&id)
        })
        .collect();
    assert!(proxies.is_empty(), "port proxies left: {proxies:?}");

    // Started again it gets its network back; rm -f releases it as well.
    daemon.berth(&["start", "busy"]).ok();
    assert_eq!(veths_settled(&daemon, 1).len(), 1);
    daemon.berth(&["rm", "-f", "busy"]).ok();
    assert_eq!(veths_settled(&daemon, 0), Vec::<String>::new());
    assert!(netns_pins(&daemon).is_empty(), "{:?}", netns_pins(&daemon));

    daemon.berth(&["network", "rm", "tmpnet"]).ok();
    assert!(!interfaces_of(daemon.pid().unwrap()).contains(&bridge));
    daemon.berth(&["network", "inspect", "tmpnet"]).fails_with("network tmpnet not found");
    daemon.berth(&["network", "rm", "bridge"]).fails_with("pre-defined network");
}

#[test]
fn connect_disconnect_and_prune() {
    let daemon = daemon();
    daemon.berth(&["network", "create", "one"]).ok();
    daemon.berth(&["network", "create", "two"]).ok();
    daemon.berth(&["network", "create", "unused"]).ok();
    httpd(&daemon, &["--name", "web", "--network", "one"]);
    // Not on `two` yet: its name does not resolve there.
    wget(&daemon, "two", "http://web/").fails_with("");
    daemon.berth(&["network", "connect", "--alias", "www", "two", "web"]).ok();
    let out = wget(&daemon, "two", "http://www/").ok();
    assert!(out.stdout.contains("hello-from-"));
    daemon.berth(&["network", "connect", "two", "web"]).fails_with("already exists");
    daemon.berth(&["network", "disconnect", "two", "web"]).ok();
    wget(&daemon, "two", "http://www/").fails_with("");
    assert_eq!(veths_settled(&daemon, 1).len(), 1);
    let pruned = daemon.berth(&["network", "prune", "-f"]).ok();
    assert!(pruned.stdout.contains("unused") && pruned.stdout.contains("two"), "{}", pruned.stdout);
    assert!(!pruned.stdout.contains("one"), "{}", pruned.stdout);
    let ls = daemon.berth(&["network", "ls", "--format", "{{.Name}}"]).ok();
    assert_eq!(ls.lines(), ["bridge", "host", "none", "one"]);
}

#[test]
fn bad_network_requests_are_refused() {
    let daemon = daemon();
    daemon
        .berth(&["run", "--rm", "--network", "nowhere", "busybox", "true"])
        .fails_with("network nowhere not found");
    daemon.berth(&["network", "create", "a b"]).fails_with("invalid network name");
    daemon.berth(&["network", "create", "--subnet", "10.99.0.0/16", "n1"]).ok();
    daemon.berth(&["network", "create", "--subnet", "10.99.1.0/24", "n2"]).fails_with("overlaps");
    daemon.berth(&["network", "create", "n1"]).fails_with("already exists");
    daemon
        .berth(&["run", "--rm", "--network", "n1", "--ip", "10.98.0.5", "busybox", "true"])
        .fails_with("subnet");
    daemon
        .berth(&["run", "--rm", "--network-alias", "x", "busybox", "true"])
        .fails_with("user-defined networks");
    daemon.berth(&["run", "--rm", "-p", "80/sctp", "busybox", "true"]).fails_with("invalid proto");
    // A fixed address is used as asked.
    let out = daemon
        .berth(&[
            "run",
            "--rm",
            "--network",
            "n1",
            "--ip",
            "10.99.0.77",
            "busybox",
            "sh",
            "-c",
            "ip -4 addr show eth0",
        ])
        .ok();
    assert!(out.stdout.contains("10.99.0.77/16"), "{}", out.stdout);
}

#[test]
fn networking_survives_a_daemon_restart() {
    let mut daemon = daemon();
    daemon.berth(&["network", "create", "keep"]).ok();
    httpd(&daemon, &["--name", "web", "--network", "keep", "-p", "80"]);
    let port: u16 =
        daemon.berth(&["port", "web", "80"]).ok().stdout.trim().rsplit(':').next().unwrap().parse().unwrap();
    assert!(get_local(&daemon, port).contains("hello-from-"));
    daemon.restart();
    // The port proxy outlived the daemon; the network's DNS server is back.
    assert!(get_local(&daemon, port).contains("hello-from-"));
    let out = wget(&daemon, "keep", "http://web/").ok();
    assert!(out.stdout.contains("hello-from-"), "{}", out.stdout);
    let ps = daemon.berth(&["ps"]).ok();
    assert!(ps.stdout.contains(&format!("0.0.0.0:{port}->80/tcp")), "{}", ps.stdout);
    daemon.berth(&["rm", "-f", "web"]).ok();
    assert_eq!(veths_settled(&daemon, 0), Vec::<String>::new());
    assert!(netns_pins(&daemon).is_empty(), "{:?}", netns_pins(&daemon));
    daemon.berth(&["network", "rm", "keep"]).ok();
}

#[test]
fn a_network_whose_dns_port_is_taken_still_works_and_says_so() {
    let daemon = daemon();
    // Something on the namespace's wildcard address holds port 53 (as a host's dnsmasq may).
    let taken = daemon.in_netns(|| std::net::UdpSocket::bind("0.0.0.0:53").unwrap());
    let created = daemon.berth(&["network", "create", "nodns"]).ok();
    assert!(created.stderr.contains("will not resolve each other's names"), "{}", created.stderr);
    httpd(&daemon, &["--name", "web", "--network", "nodns"]);
    let inspect = daemon
        .berth(&["inspect", "-f", "{{json .network_settings.networks.nodns.ipv4_address}}", "web"])
        .ok();
    let ip = inspect.stdout.trim().trim_matches('"').split('/').next().unwrap().to_string();
    let out = wget(&daemon, "nodns", &format!("http://{ip}/")).ok();
    assert!(out.stdout.contains("hello-from-"), "{}", out.stdout);
    drop(taken);
}

/// `wget` of `url` run in the running container `name`; its output, or the failure.
fn wget_in(daemon: &Daemon, name: &str, url: &str) -> berth_tests::Output {
    // See `wget` for the `timeout` and the `||`.
    let script = format!("timeout 5 wget -q -O - {url} || exit 1");
    daemon.berth(&["exec", name, "sh", "-c", &script])
}

#[test]
fn a_container_on_two_networks_resolves_the_names_of_both_and_of_no_other() {
    let daemon = daemon();
    for network in ["one", "two", "three"] {
        daemon.berth(&["network", "create", network]).ok();
    }
    httpd(&daemon, &["--name", "web1", "--network", "one"]);
    httpd(&daemon, &["--name", "web2", "--network", "two", "--network-alias", "site2"]);
    httpd(&daemon, &["--name", "web3", "--network", "three"]);
    daemon.berth(&["run", "-d", "--name", "client", "--network", "one", "busybox", "sleep", "300"]).ok();
    // Only its first network so far: its resolver (the gateway of `one`) knows web1 alone.
    let out = wget_in(&daemon, "client", "http://web1/").ok();
    assert!(out.stdout.contains("hello-from-"), "{}", out.stdout);
    wget_in(&daemon, "client", "http://web2/").fails_with("");

    // Connected to `two` while it runs: the same resolver now answers for `two` too, names
    // and aliases, with the addresses on `two` (which the client reaches through eth1).
    daemon.berth(&["network", "connect", "two", "client"]).ok();
    let resolv = daemon.berth(&["exec", "client", "cat", "/etc/resolv.conf"]).ok();
    assert_eq!(resolv.stdout.matches("nameserver").count(), 1, "{}", resolv.stdout);
    for url in ["http://web2/", "http://site2/", "http://web1/"] {
        let out = wget_in(&daemon, "client", url).ok();
        assert!(out.stdout.contains("hello-from-"), "{url}: {}", out.stdout);
    }
    // Isolation stays: `three` is not the client's, and a container on `one` alone does not
    // get `two`'s names because some other container on `one` is also on `two`.
    wget_in(&daemon, "client", "http://web3/").fails_with("");
    wget(&daemon, "one", "http://web2/").fails_with("");
    wget(&daemon, "two", "http://web1/").fails_with("");

    // Disconnected: `two`'s names are gone again.
    daemon.berth(&["network", "disconnect", "two", "client"]).ok();
    wget_in(&daemon, "client", "http://site2/").fails_with("");
    daemon.remove_all_containers();
}

/// The "outside" of a daemon's namespace: another network namespace (held by a `sleep` the
/// test started) joined to the daemon's by a veth pair, the daemon's end 198.51.100.1/24 (its
/// "outer address"), the outside's 198.51.100.2. It all goes with the `sleep`: the namespace,
/// and with it the veth pair.
struct Outside {
    holder: std::process::Child,
}

const OUTER: &str = "198.51.100.1";
const OUTSIDE: &str = "198.51.100.2";

impl Outside {
    fn new(daemon: &Daemon) -> Outside {
        let holder = std::process::Command::new("unshare").args(["--net", "sleep", "600"]).spawn().unwrap();
        let outside = Outside { holder };
        let pid = outside.holder.id();
        let own = std::fs::read_link("/proc/self/ns/net").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_link(format!("/proc/{pid}/ns/net")).ok().is_none_or(|ns| ns == own) {
            assert!(Instant::now() < deadline, "the outside namespace was never made");
            std::thread::sleep(Duration::from_millis(10));
        }
        // busybox's `ip` names the peer itself (veth0: the daemon's namespace has no other yet).
        let daemon_side = format!(
            "ip link add vout type veth && ip link set veth0 netns {pid} && \
             ip addr add {OUTER}/24 dev vout && ip link set vout up"
        );
        let outside_side =
            format!("ip link set lo up && ip addr add {OUTSIDE}/24 dev veth0 && ip link set veth0 up");
        for (target, script) in [(daemon.pid().unwrap(), daemon_side), (pid, outside_side)] {
            let status = std::process::Command::new("nsenter")
                .args(["-t", &target.to_string(), "-n", "busybox", "sh", "-c", &script])
                .status()
                .unwrap();
            assert!(status.success(), "{script}");
        }
        outside
    }

    /// A listener on the outside's address.
    fn listen(&self) -> TcpListener {
        let ns = std::fs::File::open(format!("/proc/{}/ns/net", self.holder.id())).unwrap();
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                    TcpListener::bind((OUTSIDE, 0)).unwrap()
                })
                .join()
                .unwrap()
        })
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// Accepts one connection within 10 s, says `outside-says-hi` and tells where it came from.
fn accept_one(listener: TcpListener) -> std::thread::JoinHandle<Option<std::net::IpAddr>> {
    std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((mut stream, peer)) => {
                    let _ = stream.write_all(b"outside-says-hi\n");
                    return Some(peer.ip());
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        None
    })
}

#[test]
fn outbound_traffic_is_masqueraded_and_internal_networks_stay_inside() {
    let daemon = daemon();
    let outside = Outside::new(&daemon);
    daemon.berth(&["network", "create", "out"]).ok();
    daemon.berth(&["network", "create", "--internal", "sealed"]).ok();
    for network in ["out", "bridge"] {
        let listener = outside.listen();
        let port = listener.local_addr().unwrap().port();
        let server = accept_one(listener);
        let script = format!("timeout 5 nc {OUTSIDE} {port} </dev/null || exit 1");
        let out = daemon.berth(&["run", "--rm", "--network", network, "busybox", "sh", "-c", &script]);
        let peer = server.join().unwrap();
        assert!(out.stdout.contains("outside-says-hi"), "{network}: {} {}", out.stdout, out.stderr);
        // The outside saw the daemon's outer address, not the container's.
        assert_eq!(peer.map(|p| p.to_string()).as_deref(), Some(OUTER), "{network}");
    }
    // An internal network does not get out (and nothing arrives outside).
    let listener = outside.listen();
    let port = listener.local_addr().unwrap().port();
    let script = format!("timeout 5 nc {OUTSIDE} {port} </dev/null || exit 1");
    daemon.berth(&["run", "--rm", "--network", "sealed", "busybox", "sh", "-c", &script]).fails_with("");
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "a connection from the internal network arrived");
    // The host forwards now; the rules went in with the networks.
    let forward = daemon.in_netns(|| std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap());
    assert_eq!(forward.trim(), "1");
    // Each network's rules name its bridge; `network rm` takes them away, the default
    // network's stay.
    let bridges: Vec<String> = ["out", "sealed"]
        .iter()
        .map(|n| {
            let inspect = daemon.berth(&["network", "inspect", n]).ok();
            let value: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
            value[0]["bridge"].as_str().unwrap().to_string()
        })
        .collect();
    let rules = daemon.in_netns(nft_rules);
    assert!(bridges.iter().all(|b| contains(&rules, b.as_bytes())), "{bridges:?}");
    daemon.berth(&["network", "rm", "out", "sealed"]).ok();
    let rules = daemon.in_netns(nft_rules);
    assert!(bridges.iter().all(|b| !contains(&rules, b.as_bytes())), "rules of removed networks are left");
    assert!(contains(&rules, b"berth0"), "the default network's rules are gone");
    drop(outside);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The raw netlink dump of the `ip` family's nftables rules in the calling thread's namespace
/// (what `nft list ruleset` asks for; no `nft` binary here).
fn nft_rules() -> Vec<u8> {
    const NETLINK_NETFILTER: i32 = 12;
    const NFT_MSG_GETRULE: u16 = 7;
    const NFNL_SUBSYS_NFTABLES: u16 = 10;
    const NLMSG_DONE: u16 = 3;
    // SAFETY: a plain socket, closed below; the buffers outlive the calls.
    unsafe {
        let fd = libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, NETLINK_NETFILTER);
        assert!(fd >= 0, "netlink socket: {}", std::io::Error::last_os_error());
        let mut request = Vec::new();
        request.extend_from_slice(&20u32.to_ne_bytes());
        request.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETRULE).to_ne_bytes());
        request.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
        request.extend_from_slice(&1u32.to_ne_bytes());
        request.extend_from_slice(&0u32.to_ne_bytes());
        request.extend_from_slice(&[libc::AF_INET as u8, 0, 0, 0]);
        let sent = libc::send(fd, request.as_ptr().cast(), request.len(), 0);
        assert_eq!(sent, request.len() as isize, "{}", std::io::Error::last_os_error());
        let mut all = Vec::new();
        let mut buffer = vec![0u8; 65536];
        'read: loop {
            let n = libc::recv(fd, buffer.as_mut_ptr().cast(), buffer.len(), 0);
            assert!(n > 0, "netlink recv: {}", std::io::Error::last_os_error());
            let chunk = &buffer[..n as usize];
            let mut offset = 0;
            while offset + 16 <= chunk.len() {
                let length = u32::from_ne_bytes(chunk[offset..offset + 4].try_into().unwrap()) as usize;
                let kind = u16::from_ne_bytes(chunk[offset + 4..offset + 6].try_into().unwrap());
                if kind == NLMSG_DONE || kind == libc::NLMSG_ERROR as u16 || length < 16 {
                    break 'read;
                }
                offset += (length + 3) & !3;
            }
            all.extend_from_slice(chunk);
        }
        libc::close(fd);
        all
    }
}

//! Churn: cycles of run (with a health check and a user network), exec, logs, network connect,
//! stop and remove, mixed with `--rm` runs. The daemon's open files and threads stay flat, and
//! afterwards nothing of a removed container remains: no mount, cgroup, veth, netns pin, monitor
//! process or file.
//!
//! `CHURN_CYCLES=N` sets the number of cycles (default 20: a smoke); `benches/churn.sh` runs
//! 2,000 and reports the slopes of the daemon's, the zygote's and the monitors' memory.

use std::path::Path;
use std::process::Command;

use berth_tests::Daemon;

/// What one process uses: resident memory (kB), open files, threads.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    rss_kb: u64,
    fds: u64,
    threads: u64,
}

fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count() as u64).unwrap_or(0);
    Usage { rss_kb: field("VmRSS:"), fds, threads: field("Threads:") }
}

/// The daemon's helper processes (zygote and monitors: `comm` berth-zygote / berth-monitor)
/// whose command line names the daemon's run directory.
fn helpers(run_dir: &Path, comm: &str) -> Vec<u32> {
    let needle = run_dir.display().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if name.trim() == comm && String::from_utf8_lossy(&cmdline).contains(&needle) {
            pids.push(pid);
        }
    }
    pids
}

/// Least-squares slope of `values` over `xs`, per 1,000 cycles.
fn slope_per_1000(xs: &[f64], values: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, values.iter().sum::<f64>() / n);
    let cov: f64 = xs.iter().zip(values).map(|(x, y)| (x - mx) * (y - my)).sum();
    let var: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    if var == 0.0 {
        0.0
    } else {
        cov / var * 1000.0
    }
}

/// Everything a container leaves on the host while it exists, counted.
#[derive(Debug, PartialEq, Eq)]
struct Traces {
    mounts: usize,
    cgroups: usize,
    veths: usize,
    netns_pins: usize,
    monitors: usize,
    container_dirs: usize,
    writable_layers: usize,
}

fn count_dir(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn traces(daemon: &Daemon) -> Traces {
    let root = daemon.root().display().to_string();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mounts =
        mountinfo.lines().filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&root))).count();
    // A directory per container under `berth` in every cgroup hierarchy (v1, v2 or both); other
    // daemons on the machine have their own, so only the ids this daemon logged count.
    let log = daemon.log();
    let mut cgroups = 0;
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").expect("/sys/fs/cgroup").flatten() {
        for entry in std::fs::read_dir(hierarchy.path().join("berth")).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.len() == 64 && entry.path().is_dir() && log.contains(&name) {
                cgroups += 1;
            }
        }
    }
    let veths = daemon.in_netns(|| {
        let out = Command::new("ip").args(["-o", "link", "show", "type", "veth"]).output().expect("ip link");
        String::from_utf8_lossy(&out.stdout).lines().count()
    });
    Traces {
        mounts,
        cgroups,
        veths,
        netns_pins: count_dir(&daemon.run_dir().join("netns")),
        monitors: helpers(&daemon.run_dir(), "berth-monitor").len(),
        container_dirs: count_dir(&daemon.root().join("containers")),
        writable_layers: count_dir(&daemon.root().join("snapshots/containers")),
    }
}

fn ok(daemon: &Daemon, args: &[&str]) -> String {
    let out = daemon.berth(args);
    assert_eq!(out.code, 0, "berth {}: {}{}", args.join(" "), out.stdout, out.stderr);
    out.stdout
}

#[test]
fn churn_leaves_nothing_and_stays_flat() {
    let cycles: usize = std::env::var("CHURN_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let daemon = Daemon::start_in_netns();
    daemon.import_busybox("busybox:latest");
    ok(&daemon, &["network", "create", "churn-a"]);
    ok(&daemon, &["network", "create", "churn-b"]);
    let pid = daemon.pid().expect("daemon pid");
    let before = traces(&daemon);

    let every = (cycles / 20).max(1);
    let warm_up = cycles.min(10);
    let mut xs = Vec::new();
    let (mut daemon_rss, mut zygote_rss, mut monitors_rss) = (Vec::new(), Vec::new(), Vec::new());
    let (mut fds, mut threads, mut monitors_alive) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..cycles {
        let name = format!("churn-{i}");
        ok(
            &daemon,
            &[
                "run",
                "-d",
                "--name",
                &name,
                "--network",
                "churn-a",
                "--health-cmd",
                "true",
                "--health-interval",
                "1s",
                "busybox",
                "sh",
                "-c",
                "echo started; sleep 60",
            ],
        );
        assert_eq!(ok(&daemon, &["exec", &name, "echo", "hi"]).trim(), "hi");
        ok(&daemon, &["network", "connect", "churn-b", &name]);
        assert!(ok(&daemon, &["logs", &name]).contains("started"));
        // Sampled while a container runs: its monitor counts.
        if i >= warm_up && (i - warm_up).is_multiple_of(every) {
            let alive = helpers(&daemon.run_dir(), "berth-monitor");
            let monitors: u64 = alive.iter().map(|&p| usage(p).rss_kb).sum();
            monitors_alive.push(alive.len() as f64);
            let zygote: u64 =
                helpers(&daemon.run_dir(), "berth-zygote").iter().map(|&p| usage(p).rss_kb).sum();
            let now = usage(pid);
            xs.push(i as f64);
            daemon_rss.push(now.rss_kb as f64);
            zygote_rss.push(zygote as f64);
            monitors_rss.push(monitors as f64);
            fds.push(now.fds as f64);
            threads.push(now.threads as f64);
        }
        ok(&daemon, &["stop", "-t", "1", &name]);
        ok(&daemon, &["rm", &name]);
        if i.is_multiple_of(5) {
            ok(&daemon, &["run", "--rm", "--network", "none", "busybox", "true"]);
        }
    }

    // A `--rm` container's files go after its removal is reported (deferred): give them a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut after = traces(&daemon);
    while after != before && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        after = traces(&daemon);
    }
    assert_eq!(after, before, "what removed containers left behind");
    let report = |what: &str, values: &[f64]| {
        format!(
            "{what}: first {:.0} last {:.0} max {:.0} slope {:+.1}/1000 cycles",
            values.first().copied().unwrap_or(0.0),
            values.last().copied().unwrap_or(0.0),
            values.iter().copied().fold(0.0, f64::max),
            slope_per_1000(&xs, values)
        )
    };
    eprintln!("churn: {cycles} cycles ({} samples)", xs.len());
    for (what, values) in [
        ("daemon RSS kB", &daemon_rss),
        ("daemon fds", &fds),
        ("daemon threads", &threads),
        ("zygote RSS kB", &zygote_rss),
        ("monitors' RSS kB (all alive at the sample)", &monitors_rss),
        ("monitors alive", &monitors_alive),
    ] {
        eprintln!("churn: {}", report(what, values));
    }
    // Open files: after the warm-up, a descriptor per cycle would be a leak (a few move with
    // the blocking pool and the log followers).
    if let (Some(first), Some(last)) = (fds.first(), fds.last()) {
        assert!(
            last - first <= 4.0,
            "the daemon's open files grew from {first} to {last} over {cycles} cycles"
        );
    }
}

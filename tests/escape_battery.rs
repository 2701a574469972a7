//! The escape battery: what a process in a container must not be able to do, each case run
//! under berth's built-in runtime, under runc through berth, and under Docker Engine (a private
//! dockerd) as the reference. berth must block at least everything Docker blocks.
//!
//! One row per case: a shell command run in the busybox container that exits 0 only when the
//! attempt got through. Raw system calls busybox has no tool for go through `escape-probe`
//! (tests/escape_probe.rs), bind-mounted into the container with the host's C library; every
//! attempt is harmless if it succeeds (see the probe). Nothing here runs on the host.
//!
//! To show the battery can fail, the rows that only seccomp blocks run again with
//! `--security-opt seccomp=unconfined`, and the rows that `--privileged` opens with it: there
//! they must get through, on every runtime.

use berth_tests::dockerd::Dockerd;
use berth_tests::{Daemon, Output};

/// One attempt at an escape.
struct Case {
    name: &'static str,
    /// Run by `sh -c`; `$PROBE` is the probe, `$HOSTPID` a process ID on the host.
    command: &'static str,
    /// Options of `run` the case needs (e.g. dropping NET_RAW).
    options: &'static [&'static str],
    /// Options under which the attempt must get through (the battery shows it can fail).
    opens_with: &'static [&'static [&'static str]],
}

const UNCONFINED: &[&str] = &["--security-opt", "seccomp=unconfined"];
const PRIVILEGED: &[&str] = &["--privileged"];

const CASES: &[Case] = &[
    Case {
        name: "new user namespace (unshare -U)",
        command: "unshare -U -r true",
        options: &[],
        opens_with: &[UNCONFINED, PRIVILEGED],
    },
    Case {
        name: "mount",
        command: "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m",
        options: &[],
        opens_with: &[PRIVILEGED],
    },
    Case { name: "add_key", command: "$PROBE add_key", options: &[], opens_with: &[UNCONFINED, PRIVILEGED] },
    Case { name: "keyctl", command: "$PROBE keyctl", options: &[], opens_with: &[UNCONFINED, PRIVILEGED] },
    Case { name: "bpf", command: "$PROBE bpf", options: &[], opens_with: &[PRIVILEGED] },
    Case {
        name: "perf_event_open",
        command: "$PROBE perf_event_open",
        options: &[],
        opens_with: &[PRIVILEGED],
    },
    Case { name: "kexec_load", command: "$PROBE kexec_load", options: &[], opens_with: &[] },
    Case { name: "init_module", command: "$PROBE init_module", options: &[], opens_with: &[] },
    Case {
        name: "open_by_handle_at (shocker)",
        command: "$PROBE open_by_handle_at",
        options: &[],
        opens_with: &[PRIVILEGED],
    },
    Case {
        name: "ptrace of a host process",
        command: "$PROBE ptrace $HOSTPID",
        options: &[],
        opens_with: &[],
    },
    Case {
        name: "mknod and read a block device",
        command: "mknod /tmp/loop b 7 0 && head -c1 /tmp/loop >/dev/null",
        options: &[],
        opens_with: &[],
    },
    Case {
        name: "write /proc/sysrq-trigger",
        // `h` only prints the help to the kernel log.
        command: "echo h > /proc/sysrq-trigger",
        options: &[],
        opens_with: &[],
    },
    Case {
        name: "write /proc/sys",
        // The value it has: a write that got through changes nothing.
        command: "v=$(cat /proc/sys/vm/overcommit_ratio) && echo $v > /proc/sys/vm/overcommit_ratio",
        options: &[],
        opens_with: &[],
    },
    Case {
        name: "write /sys",
        command:
            "v=$(cat /sys/module/printk/parameters/time) && echo $v > /sys/module/printk/parameters/time",
        options: &[],
        opens_with: &[],
    },
    Case {
        name: "write the cgroup filesystem",
        // A cgroup made in the hierarchy (v1: the pids one; v2: the unified one), then removed.
        command: "for d in /sys/fs/cgroup/pids /sys/fs/cgroup; do if [ -e $d/cgroup.procs ]; then \
                  mkdir $d/berth-probe && rmdir $d/berth-probe; exit $?; fi; done; exit 1",
        options: &[],
        opens_with: &[],
    },
    Case {
        name: "raw socket without NET_RAW",
        command: "$PROBE raw_socket",
        options: &["--cap-drop", "NET_RAW"],
        opens_with: &[],
    },
];

/// The runtimes a case runs under.
#[derive(Clone, Copy, PartialEq)]
enum Runtime {
    Builtin,
    Runc,
    Docker,
}

impl Runtime {
    fn name(self) -> &'static str {
        match self {
            Runtime::Builtin => "berth",
            Runtime::Runc => "berth+runc",
            Runtime::Docker => "dockerd",
        }
    }
}

struct Battery {
    berth: Daemon,
    docker: Option<Dockerd>,
    mounts: Vec<String>,
}

impl Battery {
    /// Runs `case` with `extra` options under `runtime`: whether the attempt got through (`None`
    /// when the container could not even start), and what the container printed.
    fn attempt(&self, runtime: Runtime, case: &Case, extra: &[&str]) -> (Option<bool>, String) {
        let script =
            case.command.replace("$PROBE", "/probe").replace("$HOSTPID", &std::process::id().to_string());
        let mut args: Vec<&str> = vec!["run", "--rm"];
        for m in &self.mounts {
            args.extend(["-v", m.as_str()]);
        }
        if runtime == Runtime::Runc {
            args.extend(["--runtime", "runc"]);
        }
        args.extend(case.options);
        args.extend(extra);
        args.extend(["busybox", "sh", "-c", &script]);
        let out: Output = match runtime {
            Runtime::Docker => self.docker.as_ref().expect("dockerd").docker(&args),
            _ => self.berth.berth(&args),
        };
        let text = format!("{}{}", out.stdout, out.stderr).trim().to_string();
        // Docker's and berth's exit code when the container did not start.
        let started = !(out.code == 125 && text.contains("runtime"));
        (started.then_some(out.code == 0), text)
    }
}

#[test]
fn escapes_are_blocked_as_docker_blocks_them() {
    let probe = env!("CARGO_BIN_EXE_escape-probe");
    let battery = Battery {
        berth: Daemon::with_busybox(),
        docker: Dockerd::with_busybox(),
        // The probe is a dynamically linked program: the host's C library comes with it.
        mounts: vec![
            format!("{probe}:/probe:ro"),
            "/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu:ro".into(),
            "/lib64:/lib64:ro".into(),
        ],
    };
    let mut runtimes = vec![Runtime::Builtin, Runtime::Runc];
    if battery.docker.is_some() {
        runtimes.push(Runtime::Docker);
    }
    // Sanity: the probe runs in the container at all (else every probe row "blocks").
    for &rt in &runtimes {
        let check =
            Case { name: "probe runs", command: "$PROBE 2>&1; test $? = 2", options: &[], opens_with: &[] };
        let (ran, out) = battery.attempt(rt, &check, &[]);
        assert_eq!(ran, Some(true), "the probe does not run under {}: {out}", rt.name());
    }

    let mut table = format!("{:<42}", "case");
    for rt in &runtimes {
        table.push_str(&format!(" {:<12}", rt.name()));
    }
    table.push('\n');
    let mut failures = Vec::new();
    for case in CASES {
        table.push_str(&format!("{:<42}", case.name));
        for &rt in &runtimes {
            let (through, out) = battery.attempt(rt, case, &[]);
            let cell = match through {
                Some(true) => "ESCAPED",
                Some(false) => "blocked",
                None => "no start",
            };
            table.push_str(&format!(" {cell:<12}"));
            // dockerd is the reference: a case it lets through is reported, not failed.
            if through != Some(false) && rt != Runtime::Docker {
                failures.push(format!("{} under {}: {cell}: {out}", case.name, rt.name()));
            }
        }
        table.push('\n');
        for opener in case.opens_with {
            table.push_str(&format!("{:<42}", format!("  with {}", opener.join(" "))));
            for &rt in &runtimes {
                let (through, out) = battery.attempt(rt, case, opener);
                let cell = match through {
                    Some(true) => "opens",
                    Some(false) => "blocked",
                    None => "no start",
                };
                table.push_str(&format!(" {cell:<12}"));
                // A dockerd that cannot start a privileged container (runc cannot grant a
                // capability this machine's root lacks) is reported, not failed.
                if through == Some(false) || (through.is_none() && rt != Runtime::Docker) {
                    failures.push(format!(
                        "{} under {} with {opener:?}: still blocked, so the case proves nothing: {out}",
                        case.name,
                        rt.name()
                    ));
                }
            }
            table.push('\n');
        }
    }
    println!("{table}");
    assert!(failures.is_empty(), "{table}\n{}", failures.join("\n"));

    // The same options through berth's Docker API, as the docker CLI sends them (a profile
    // file's content in SecurityOpt).
    if berth_tests::dockerd::on_path(berth_tests::dockerd::DOCKER_CLI) {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("allow-all.json");
        std::fs::write(&profile, r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}"#)
            .unwrap();
        let seccomp = format!("seccomp={}", profile.display());
        let host = battery.berth.docker_host();
        let status = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status | tr '\\t\\n' '  '";
        for (options, expected) in [
            (vec![], "NoNewPrivs: 0 Seccomp: 2"),
            (vec!["--security-opt", "no-new-privileges"], "NoNewPrivs: 1 Seccomp: 2"),
            (vec!["--security-opt", "seccomp=unconfined"], "NoNewPrivs: 0 Seccomp: 0"),
            (vec!["--privileged"], "NoNewPrivs: 0 Seccomp: 0"),
        ] {
            let mut args = vec!["run", "--rm"];
            args.extend(&options);
            args.extend(["busybox", "sh", "-c", status]);
            let out = berth_tests::dockerd::docker_at(&host, &args);
            assert_eq!(out.stdout.trim(), expected, "docker {args:?}: {}", out.stderr);
        }
        let out = berth_tests::dockerd::docker_at(
            &host,
            &["run", "--rm", "--security-opt", &seccomp, "busybox", "sh", "-c", "mkdir /tmp/x"],
        );
        assert!(out.code != 0 && out.stderr.contains("Operation not permitted"), "{out:?}");
    }
}

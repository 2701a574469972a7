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
    /// Run by `sh -c`; `$PROBE` is the probe, `$HOSTPID` a process ID on the host, `$SINK` an
    /// empty host directory, `$SECRET` a host directory holding a file `secret`, `$FD` each of
    /// the descriptor numbers 3 to 12 in turn (one attempt each), `$VOL` a volume of the case's.
    command: &'static str,
    /// Options of `run` the case needs (e.g. dropping NET_RAW); the same placeholders.
    options: &'static [&'static str],
    /// Options under which the attempt must get through (the battery shows it can fail).
    opens_with: &'static [&'static [&'static str]],
    /// How the attempt is made.
    mode: Mode,
    /// Arguments of a `run --rm` made first (e.g. a symlink planted in a volume).
    setup: &'static [&'static str],
    /// The attempt got through when something landed in `$SINK` (not by its exit code).
    sink: bool,
    /// A container that refuses to start (or an exec refused) is the attempt blocked.
    refusal_blocks: bool,
}

/// How a case's attempt is made.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// `run` the command; its exit code says whether it got through.
    Run,
    /// The container runs `sleep`; `exec OPTIONS sh -c COMMAND` is the attempt.
    Exec(&'static [&'static str]),
    /// The container runs the command (the attacker) while the test execs this into it a few
    /// times (the runtime at work); the container's exit code says whether it got through.
    Trigger(&'static str),
    /// The container runs the command and exits; then `cp` with these arguments (`$C` is the
    /// container) is the attempt.
    Copy(&'static [&'static str]),
}

const ROW: Case = Case {
    name: "",
    command: "",
    options: &[],
    opens_with: &[],
    mode: Mode::Run,
    setup: &[],
    sink: false,
    refusal_blocks: false,
};

/// Exits 0 when the working directory is outside the container's root: climbing up from it
/// does not end at the container's `/`.
const OUTSIDE_ROOT: &str = "[ \"$(stat -c %d:%i ../../../../../../../../../..)\" != \"$(stat -c %d:%i /)\" ]";

/// Exits 0 when a child of the shell has a descriptor beyond 0, 1 and 2: one the shell was
/// started with (busybox's shell keeps its own saved descriptors while it redirects, so a child
/// forked before any redirection is looked at).
const FDS_BEYOND_STDIO: &str =
    "sleep 5 & p=$!; ls /proc/$p/fd | tr '\\n' ' '; n=$(ls /proc/$p/fd | grep -cv '^[012]$'); kill $p; [ \"$n\" -gt 0 ]";

const UNCONFINED: &[&str] = &["--security-opt", "seccomp=unconfined"];
const PRIVILEGED: &[&str] = &["--privileged"];

const CASES: &[Case] = &[
    Case {
        name: "new user namespace (unshare -U)",
        command: "unshare -U -r true",
        options: &[],
        opens_with: &[UNCONFINED, PRIVILEGED],
        ..ROW
    },
    Case {
        name: "mount",
        command: "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m",
        options: &[],
        opens_with: &[PRIVILEGED],
        ..ROW
    },
    Case {
        name: "add_key",
        command: "$PROBE add_key",
        options: &[],
        opens_with: &[UNCONFINED, PRIVILEGED],
        ..ROW
    },
    Case {
        name: "keyctl",
        command: "$PROBE keyctl",
        options: &[],
        opens_with: &[UNCONFINED, PRIVILEGED],
        ..ROW
    },
    Case { name: "bpf", command: "$PROBE bpf", options: &[], opens_with: &[PRIVILEGED], ..ROW },
    Case {
        name: "perf_event_open",
        command: "$PROBE perf_event_open",
        options: &[],
        opens_with: &[PRIVILEGED],
        ..ROW
    },
    Case { name: "kexec_load", command: "$PROBE kexec_load", options: &[], opens_with: &[], ..ROW },
    Case { name: "init_module", command: "$PROBE init_module", options: &[], opens_with: &[], ..ROW },
    Case {
        name: "open_by_handle_at (shocker)",
        command: "$PROBE open_by_handle_at",
        options: &[],
        opens_with: &[PRIVILEGED],
        ..ROW
    },
    Case {
        name: "ptrace of a host process",
        command: "$PROBE ptrace $HOSTPID",
        options: &[],
        opens_with: &[],
        ..ROW
    },
    Case {
        name: "mknod and read a block device",
        command: "mknod /tmp/loop b 7 0 && head -c1 /tmp/loop >/dev/null",
        options: &[],
        opens_with: &[],
        ..ROW
    },
    Case {
        name: "write /proc/sysrq-trigger",
        // `h` only prints the help to the kernel log.
        command: "echo h > /proc/sysrq-trigger",
        options: &[],
        opens_with: &[],
        ..ROW
    },
    Case {
        name: "write /proc/sys",
        // The value it has: a write that got through changes nothing.
        command: "v=$(cat /proc/sys/vm/overcommit_ratio) && echo $v > /proc/sys/vm/overcommit_ratio",
        options: &[],
        opens_with: &[],
        ..ROW
    },
    Case {
        name: "write /sys",
        command:
            "v=$(cat /sys/module/printk/parameters/time) && echo $v > /sys/module/printk/parameters/time",
        options: &[],
        opens_with: &[],
        ..ROW
    },
    Case {
        name: "write the cgroup filesystem",
        // A cgroup made in the hierarchy (v1: the pids one; v2: the unified one), then removed.
        command: "for d in /sys/fs/cgroup/pids /sys/fs/cgroup; do if [ -e $d/cgroup.procs ]; then \
                  mkdir $d/berth-probe && rmdir $d/berth-probe; exit $?; fi; done; exit 1",
        options: &[],
        opens_with: &[],
        ..ROW
    },
    Case {
        name: "raw socket without NET_RAW",
        command: "$PROBE raw_socket",
        options: &["--cap-drop", "NET_RAW"],
        opens_with: &[],
        ..ROW
    },
    Case {
        name: "host descriptors in the container",
        // The shell's own: 0, 1 and 2 only (listed by a child, so that the shell holds no pipe).
        command: FDS_BEYOND_STDIO,
        ..ROW
    },
    Case {
        name: "host descriptors in an exec'd process",
        command: FDS_BEYOND_STDIO,
        mode: Mode::Exec(&[]),
        ..ROW
    },
    Case {
        name: "run -w /proc/self/fd/N (CVE-2024-21626)",
        command: OUTSIDE_ROOT,
        options: &["-w", "/proc/self/fd/$FD"],
        refusal_blocks: true,
        ..ROW
    },
    Case {
        name: "exec -w /proc/self/fd/N (CVE-2024-21626)",
        command: OUTSIDE_ROOT,
        mode: Mode::Exec(&["-w", "/proc/self/fd/$FD"]),
        refusal_blocks: true,
        ..ROW
    },
    Case {
        name: "write the runtime via /proc/PID/exe (CVE-2019-5736)",
        // A command whose interpreter is /proc/self/exe runs the runtime's own binary in the
        // container when it is exec'd; the probe holds it and tries to open it for writing.
        command:
            "printf '#!/proc/self/exe\\n' >/tmp/self-exe && chmod +x /tmp/self-exe && $PROBE exe_watch 4",
        mode: Mode::Trigger("/tmp/self-exe"),
        ..ROW
    },
    Case {
        name: "volume mounted through a symlink",
        command: "true",
        setup: &["-v", "$VOL:/v", "busybox", "ln", "-s", "$SINK", "/v/link"],
        options: &["-v", "$VOL:/v", "-v", "$VOL-2:/v/link/sub"],
        sink: true,
        refusal_blocks: true,
        ..ROW
    },
    Case {
        name: "bind mounted through a symlink",
        command: "true",
        setup: &["-v", "$VOL:/v", "busybox", "ln", "-s", "$SINK", "/v/link"],
        options: &["-v", "$VOL:/v", "-v", "$SECRET:/v/link/sub"],
        sink: true,
        refusal_blocks: true,
        ..ROW
    },
    Case {
        name: "cp into a container through a symlink",
        command: "ln -s $SINK /link",
        mode: Mode::Copy(&["$SECRET/secret", "$C:/link/written"]),
        sink: true,
        refusal_blocks: true,
        ..ROW
    },
    Case {
        name: "cp out of a container through a symlink",
        command: "ln -s $SECRET /link",
        mode: Mode::Copy(&["$C:/link/secret", "$SINK/read"]),
        sink: true,
        refusal_blocks: true,
        ..ROW
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
    /// `$SINK`: an empty host directory, emptied again after each attempt.
    sink: tempfile::TempDir,
    /// `$SECRET`: a host directory with a file `secret`.
    secret: tempfile::TempDir,
}

impl Battery {
    fn cli(&self, runtime: Runtime, args: &[&str]) -> Output {
        match runtime {
            Runtime::Docker => self.docker.as_ref().expect("dockerd").docker(args),
            _ => self.berth.berth(args),
        }
    }

    /// `text` with the placeholders of [`Case`] filled in (`$FD` with `fd`).
    fn fill(&self, text: &str, fd: u32, volume: &str, container: &str) -> String {
        text.replace("$PROBE", "/probe")
            .replace("$HOSTPID", &std::process::id().to_string())
            .replace("$SINK", &self.sink.path().display().to_string())
            .replace("$SECRET", &self.secret.path().display().to_string())
            .replace("$FD", &fd.to_string())
            .replace("$VOL", volume)
            .replace("$C", container)
    }

    /// `run` arguments up to the image: the probe's mounts, the runtime, `options`.
    fn run_args(&self, runtime: Runtime, options: Vec<String>) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        for m in &self.mounts {
            args.extend(["-v".into(), m.clone()]);
        }
        if runtime == Runtime::Runc {
            args.extend(["--runtime".into(), "runc".into()]);
        }
        args.extend(options);
        args
    }

    /// Runs `case` with `extra` options under `runtime`: whether the attempt got through (`None`
    /// when the container could not even start), and what the container printed. A case with
    /// `$FD` is tried with each descriptor number; it got through when one attempt did.
    fn attempt(&self, runtime: Runtime, case: &Case, extra: &[&str]) -> (Option<bool>, String) {
        let uses_fd = case.options.iter().any(|o| o.contains("$FD"))
            || matches!(case.mode, Mode::Exec(o) if o.iter().any(|o| o.contains("$FD")));
        let fds = if uses_fd { 3..=12 } else { 3..=3 };
        let mut texts = Vec::new();
        for fd in fds {
            let (through, text) = self.attempt_one(runtime, case, extra, fd);
            if through != Some(false) {
                return (through, text);
            }
            texts.push(text);
        }
        (Some(false), texts.join("\n"))
    }

    fn attempt_one(&self, runtime: Runtime, case: &Case, extra: &[&str], fd: u32) -> (Option<bool>, String) {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let volume = format!("battery-{}-{n}", std::process::id());
        let container = format!("battery-{}-{n}", std::process::id());
        let fill = |t: &str| self.fill(t, fd, &volume, &container);
        let script = fill(case.command);
        let mut options: Vec<String> = case.options.iter().map(|o| fill(o)).collect();
        options.extend(extra.iter().map(|o| o.to_string()));
        if !case.setup.is_empty() {
            let mut args = vec!["run".to_string(), "--rm".into()];
            args.extend(self.run_args(runtime, case.setup.iter().map(|o| fill(o)).collect()));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = self.cli(runtime, &args);
            assert_eq!(out.code, 0, "setup of {}: {out:?}", case.name);
        }
        let out: Output = match case.mode {
            Mode::Run => {
                let mut args = vec!["run".to_string(), "--rm".into()];
                args.extend(self.run_args(runtime, options));
                args.extend(["busybox".into(), "sh".into(), "-c".into(), script]);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                self.cli(runtime, &args)
            }
            Mode::Exec(exec_options) => {
                let mut args = vec!["run".to_string(), "-d".into(), "--name".into(), container.clone()];
                args.extend(self.run_args(runtime, options));
                args.extend(["busybox".into(), "sleep".into(), "60".into()]);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let started = self.cli(runtime, &args);
                assert_eq!(started.code, 0, "{}: {started:?}", case.name);
                let mut args = vec!["exec".to_string()];
                args.extend(exec_options.iter().map(|o| fill(o)));
                args.extend([container.clone(), "sh".into(), "-c".into(), script]);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                self.cli(runtime, &args)
            }
            Mode::Trigger(trigger) => {
                let mut args = vec!["run".to_string(), "-d".into(), "--name".into(), container.clone()];
                args.extend(self.run_args(runtime, options));
                args.extend(["busybox".into(), "sh".into(), "-c".into(), script]);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let started = self.cli(runtime, &args);
                assert_eq!(started.code, 0, "{}: {started:?}", case.name);
                std::thread::sleep(std::time::Duration::from_millis(300));
                for _ in 0..8 {
                    self.cli(runtime, &["exec", &container, trigger]);
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                let waited = self.cli(runtime, &["wait", &container]);
                let logs = self.cli(runtime, &["logs", &container]);
                let code = waited.stdout.trim().parse().unwrap_or(-1);
                Output { code, stdout: logs.stdout, stderr: logs.stderr }
            }
            Mode::Copy(cp) => {
                let mut args = vec!["run".to_string(), "--name".into(), container.clone()];
                args.extend(self.run_args(runtime, options));
                args.extend(["busybox".into(), "sh".into(), "-c".into(), script]);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let ran = self.cli(runtime, &args);
                assert_eq!(ran.code, 0, "{}: {ran:?}", case.name);
                let mut args = vec!["cp".to_string()];
                args.extend(cp.iter().map(|a| fill(a)));
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                self.cli(runtime, &args)
            }
        };
        if case.mode != Mode::Run {
            self.cli(runtime, &["rm", "-f", &container]);
        }
        if !case.setup.is_empty() || case.options.iter().any(|o| o.contains("$VOL")) {
            let second = format!("{volume}-2");
            self.cli(runtime, &["volume", "rm", "-f", &volume, &second]);
        }
        let mut text = format!("{}{}", out.stdout, out.stderr).trim().to_string();
        let landed = self.empty_sink();
        if !landed.is_empty() {
            text.push_str(&format!(" [on the host: {landed:?}]"));
        }
        if case.sink {
            return (Some(!landed.is_empty()), text);
        }
        // Docker's and berth's exit code when the container did not start.
        let started = !(out.code == 125 && text.contains("runtime"));
        if case.refusal_blocks {
            return (Some(out.code == 0), text);
        }
        (started.then_some(out.code == 0), text)
    }

    /// What landed in `$SINK`, removed (and unmounted) again.
    fn empty_sink(&self) -> Vec<String> {
        let mut landed = Vec::new();
        for entry in std::fs::read_dir(self.sink.path()).unwrap().flatten() {
            landed.push(entry.file_name().to_string_lossy().into_owned());
            berth_tests::unmount_under(&entry.path());
            let _ = std::fs::remove_dir_all(entry.path()).or_else(|_| std::fs::remove_file(entry.path()));
        }
        landed
    }
}

impl Battery {
    /// The battery on `berth` (and `docker`, the reference, when there is one).
    fn new(berth: Daemon, docker: Option<Dockerd>) -> Battery {
        let probe = env!("CARGO_BIN_EXE_escape-probe");
        let battery = Battery {
            berth,
            docker,
            // The probe is a dynamically linked program: the host's C library comes with it.
            mounts: vec![
                format!("{probe}:/probe:ro"),
                "/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu:ro".into(),
                "/lib64:/lib64:ro".into(),
            ],
            sink: tempfile::tempdir().unwrap(),
            secret: tempfile::tempdir().unwrap(),
        };
        std::fs::write(battery.secret.path().join("secret"), "host secret\n").unwrap();
        battery
    }

    /// Every case under `runtimes` (and the openers of each when `openers`): the table, and
    /// what failed.
    fn run(&self, runtimes: &[Runtime], openers: bool) -> (String, Vec<String>) {
        let battery = self;
        // Sanity: the probe runs in the container at all (else every probe row "blocks").
        for &rt in runtimes {
            let check = Case { name: "probe runs", command: "$PROBE 2>&1; test $? = 2", ..ROW };
            let (ran, out) = battery.attempt(rt, &check, &[]);
            assert_eq!(ran, Some(true), "the probe does not run under {}: {out}", rt.name());
        }
        let mut table = format!("{:<42}", "case");
        for rt in runtimes {
            table.push_str(&format!(" {:<12}", rt.name()));
        }
        table.push('\n');
        let mut failures = Vec::new();
        for case in CASES {
            table.push_str(&format!("{:<42}", case.name));
            for &rt in runtimes {
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
            for opener in case.opens_with.iter().filter(|_| openers) {
                table.push_str(&format!("{:<42}", format!("  with {}", opener.join(" "))));
                for &rt in runtimes {
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
        (table, failures)
    }
}

#[test]
fn escapes_are_blocked_as_docker_blocks_them() {
    let battery = Battery::new(Daemon::with_busybox(), Dockerd::with_busybox());
    // The runtimes' binaries, compared after the battery (the runtime-overwrite case).
    let binaries: Vec<(std::path::PathBuf, Vec<u8>)> =
        [berth_tests::berth_binary(), which("runc"), which("dockerd")]
            .into_iter()
            .filter(|p| p.is_file())
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap();
                (p, bytes)
            })
            .collect();
    let mut runtimes = vec![Runtime::Builtin, Runtime::Runc];
    if battery.docker.is_some() {
        runtimes.push(Runtime::Docker);
    }
    let (table, mut failures) = battery.run(&runtimes, true);
    println!("{table}");
    for (path, bytes) in &binaries {
        if std::fs::read(path).ok().as_ref() != Some(bytes) {
            failures.push(format!("{} was changed", path.display()));
        }
    }
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

/// The battery again with the daemons remapping (`--userns-remap default`, see tests/userns.rs):
/// containers in a user namespace, under the built-in runtime and under runc, block every case
/// as well; dockerd remapping too is the reference.
#[test]
fn escapes_are_blocked_under_userns_remap() {
    let berth = Daemon::start_with_args(&["--userns-remap", "default"]);
    berth.import_busybox("busybox:latest");
    let battery = Battery::new(berth, Dockerd::with_busybox_args(&["--userns-remap", "default"]));
    let mut runtimes = vec![Runtime::Builtin, Runtime::Runc];
    if battery.docker.is_some() {
        runtimes.push(Runtime::Docker);
    }
    let (table, failures) = battery.run(&runtimes, false);
    println!("{table}");
    assert!(failures.is_empty(), "{table}\n{}", failures.join("\n"));
}

/// `program`'s path on PATH (empty when it is not there).
fn which(program: &str) -> std::path::PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_default()
}

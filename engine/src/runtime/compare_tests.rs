//! One bundle under the built-in runtime, runc and crun: what the process inside sees must
//! agree (ids, hostname, capability sets, no_new_privs, its PID, the mounts of /proc, /sys and
//! /dev, cgroup limits, rlimits, device nodes), and the runtimes must fail alike on a missing
//! command.

use berth_types::container::{ContainerConfig, Resources};

use super::testutil::{capture, read_all, sh, Bundle, Guard};
use super::{new_runtime, Runtime, RuntimeConfig, RuntimeKind};
use crate::error::Error;

/// What the process reports about itself.
const PROBE: &str = r#"
echo "ids $(id)"
echo "host $(hostname)"
grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status | grep -v Seccomp
echo "pid $$"
# mount point, per-mount options, fstype, source, super options (fields after " - ").
awk '{ for (i = 7; i <= NF; i++) if ($i == "-") print "mount", $5, $6, $(i+1), $(i+2), $(i+3) }' /proc/self/mountinfo |
  grep -E '^mount /(proc|sys|dev)(/[^ ]*)? ' | sort
echo "memory $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"
echo "pids $(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)"
echo "cpu $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max)"
echo "nofile $(ulimit -Sn) $(ulimit -Hn)"
echo "dev $(ls /dev | tr '\n' ' ')"
echo "cwd $(pwd)"
echo "env $(env | grep -v '^PWD=' | sort | tr '\n' ' ')"
"#;

fn available(kind: RuntimeKind) -> bool {
    let name = kind.as_str();
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).any(|d| d.join(name).is_file())
}

fn run_probe(kind: RuntimeKind, bundle: &Bundle) -> String {
    let state = tempfile::tempdir().unwrap();
    let rt = new_runtime(kind, &RuntimeConfig { state_root: state.path().to_path_buf() }).unwrap();
    let mut guard = Guard::new(rt.as_ref(), &bundle.id);
    let (stdio, out) = capture();
    let started = rt.start(&bundle.id, bundle.path(), stdio).unwrap_or_else(|e| panic!("{kind}: {e}"));
    guard.track(started.pid);
    let text = read_all(out);
    assert_eq!(guard.wait(started.pid), 0, "{kind}: {text}");
    text
}

#[test]
fn builtin_runc_and_crun_agree_on_what_the_process_sees() {
    let config = ContainerConfig {
        hostname: Some("probe".into()),
        user: Some("www-data".into()),
        working_dir: Some("/tmp".into()),
        env: vec!["FOO=bar".into()],
        resources: Resources { memory: Some(32 << 20), cpus: Some(0.5), pids_limit: Some(64) },
        ..sh(PROBE)
    };
    let root_config = ContainerConfig { user: None, ..config.clone() };
    for config in [config, root_config] {
        let bundle = Bundle::new(&config);
        let ours = run_probe(RuntimeKind::Builtin, &bundle);
        assert!(ours.contains("pid 1\n"), "{ours}");
        let mut compared = 0;
        for kind in [RuntimeKind::Runc, RuntimeKind::Crun] {
            if !available(kind) {
                eprintln!("{kind} is not installed; not compared");
                continue;
            }
            let mut theirs = run_probe(kind, &bundle);
            let mut ours = ours.clone();
            if kind == RuntimeKind::Crun {
                // crun differs from runc (berth's reference) in how it masks paths (host
                // /dev/null, 0k tmpfs), in the cgroup tmpfs and in linking /dev/core: compare
                // everything else.
                let keep = |s: &str| {
                    s.lines()
                        .filter(|l| !l.starts_with("mount ") && !l.starts_with("dev "))
                        .map(|l| format!("{l}\n"))
                        .collect()
                };
                ours = keep(&ours);
                theirs = keep(&theirs);
            }
            let (a, b): (Vec<&str>, Vec<&str>) = (ours.lines().collect(), theirs.lines().collect());
            for line in a.iter().filter(|l| !b.contains(l)) {
                eprintln!("berth only: {line}");
            }
            for line in b.iter().filter(|l| !a.contains(l)) {
                eprintln!("{kind} only: {line}");
            }
            assert_eq!(ours, theirs, "berth and {kind} disagree");
            compared += 1;
        }
        assert!(
            compared >= 1 || std::env::var_os("BERTH_TEST_NO_RUNC").is_some(),
            "runc is needed for this test"
        );
    }
}

#[test]
fn missing_command_fails_alike() {
    let config = ContainerConfig { image: "busybox".into(), cmd: vec!["nope".into()], ..Default::default() };
    let bundle = Bundle::new(&config);
    for kind in [RuntimeKind::Builtin, RuntimeKind::Runc, RuntimeKind::Crun] {
        if !available(kind) && kind != RuntimeKind::Builtin {
            continue;
        }
        let state = tempfile::tempdir().unwrap();
        let rt: Box<dyn Runtime> =
            new_runtime(kind, &RuntimeConfig { state_root: state.path().to_path_buf() }).unwrap();
        let _guard = Guard::new(rt.as_ref(), &bundle.id);
        let (stdio, _out) = capture();
        match rt.start(&bundle.id, bundle.path(), stdio) {
            Err(Error::CommandFailed { exit_code, message }) => {
                assert_eq!(exit_code, 127, "{kind}");
                assert_eq!(message, "exec: \"nope\": executable file not found in $PATH", "{kind}");
            }
            other => panic!("{kind}: {other:?}"),
        }
    }
}

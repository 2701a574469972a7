//! runc and crun through the [`Runtime`] trait: the container's process is the caller's to
//! reap, a terminal comes back over the console socket, exec/kill/pause/stats/delete work, and
//! nothing is left behind.

use std::io::{Read, Write};

use berth_types::container::{ContainerConfig, ExecConfig, Resources};

use super::testutil::{capture, read_all, sh, Bundle, Guard};
use super::{build_exec_process, new_runtime, Runtime, RuntimeConfig, RuntimeKind, Stdio};
use crate::error::Error;
use crate::runtime::cgroup::Cgroup;

fn runtimes() -> Vec<(tempfile::TempDir, Box<dyn Runtime>)> {
    let mut out = Vec::new();
    for kind in [RuntimeKind::Runc, RuntimeKind::Crun] {
        let state = tempfile::tempdir().unwrap();
        match new_runtime(kind, &RuntimeConfig { state_root: state.path().to_path_buf() }) {
            Ok(rt) => out.push((state, rt)),
            Err(Error::Unsupported(m)) => eprintln!("skipping {kind}: {m}"),
            Err(e) => panic!("{kind}: {e}"),
        }
    }
    assert!(
        !out.is_empty() || std::env::var_os("BERTH_TEST_NO_RUNC").is_some(),
        "runc is needed for these tests"
    );
    out
}

#[test]
fn lifecycle_through_the_cli() {
    for (_state, rt) in runtimes() {
        let kind = rt.kind();
        let config = ContainerConfig {
            resources: Resources { memory: Some(64 << 20), ..Default::default() },
            ..sh("echo ready; exec sleep 1000")
        };
        let bundle = Bundle::new(&config);
        let mut guard = Guard::new(rt.as_ref(), &bundle.id);
        let (stdio, out) = capture();
        let started = rt.start(&bundle.id, bundle.path(), stdio).unwrap_or_else(|e| panic!("{kind}: {e}"));
        guard.track(started.pid);
        let mut out = std::fs::File::from(out);
        let mut first = [0u8; 6];
        out.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"ready\n", "{kind}");
        assert_eq!(rt.pids(&bundle.id).unwrap(), vec![started.pid], "{kind}");
        let stats = rt.stats(&bundle.id).unwrap();
        assert_eq!(stats.memory_limit, Some(64 << 20), "{kind}");
        assert_eq!(stats.pids, 1, "{kind}");

        rt.pause(&bundle.id).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let cgroup = Cgroup::new(std::path::Path::new(&format!("/berth/{}", bundle.id))).unwrap();
        assert!(cgroup.is_frozen().unwrap(), "{kind}");
        rt.resume(&bundle.id).unwrap();
        assert!(!cgroup.is_frozen().unwrap(), "{kind}");

        let rootfs = bundle.path().join("rootfs");
        let exec = ExecConfig {
            cmd: vec!["sh".into(), "-c".into(), "echo $$ $(hostname); exit 4".into()],
            ..Default::default()
        };
        let process = build_exec_process(&bundle.spec, &rootfs, &exec).unwrap();
        let (stdio, exec_out) = capture();
        let p = rt.exec(&bundle.id, &process, stdio).unwrap_or_else(|e| panic!("{kind}: {e}"));
        guard.track(p.pid);
        let text = read_all(exec_out);
        assert_eq!(guard.wait(p.pid), 4, "{kind}: {text}");
        assert_eq!(text, format!("{} {}\n", text.split(' ').next().unwrap(), &bundle.id[..12]), "{kind}");

        let nope = build_exec_process(
            &bundle.spec,
            &rootfs,
            &ExecConfig { cmd: vec!["nope".into()], ..Default::default() },
        )
        .unwrap();
        let (stdio, _o) = capture();
        match rt.exec(&bundle.id, &nope, stdio) {
            Err(Error::CommandFailed { exit_code: 127, .. }) => {}
            other => panic!("{kind}: {other:?}"),
        }

        rt.kill(&bundle.id, libc::SIGKILL, false).unwrap();
        assert_eq!(guard.wait(started.pid), 128 + 9, "{kind}");
        rt.delete(&bundle.id).unwrap();
        assert!(cgroup.dirs().all(|d| !d.exists()), "{kind} left its cgroup");
        // Deleting again (and an unknown container) is fine.
        rt.delete(&bundle.id).unwrap();
    }
}

#[test]
fn terminal_over_the_console_socket() {
    for (_state, rt) in runtimes() {
        let kind = rt.kind();
        let bundle = Bundle::new(&ContainerConfig { tty: true, ..sh("tty; read line; echo got $line") });
        let mut guard = Guard::new(rt.as_ref(), &bundle.id);
        let started = rt
            .start(&bundle.id, bundle.path(), Stdio::Terminal { cols: 80, rows: 24 })
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        guard.track(started.pid);
        let mut master = std::fs::File::from(started.terminal.expect("a pty master"));
        master.write_all(b"hi\n").unwrap();
        let mut text = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&text).contains("got hi") {
                break;
            }
        }
        let text = String::from_utf8_lossy(&text).replace('\r', "");
        assert!(text.contains("/dev/pts/0") && text.contains("got hi"), "{kind}: {text}");
        assert_eq!(guard.wait(started.pid), 0, "{kind}");

        // A terminal that the bundle did not ask for is refused before anything starts.
        let plain = Bundle::new(&sh("true"));
        let _g = Guard::new(rt.as_ref(), &plain.id);
        assert!(matches!(
            rt.start(&plain.id, plain.path(), Stdio::Terminal { cols: 80, rows: 24 }),
            Err(Error::InvalidInput(_))
        ));
    }
}

#[test]
fn oom_kill_is_counted() {
    for (_state, rt) in runtimes() {
        let kind = rt.kind();
        let config = ContainerConfig {
            resources: Resources { memory: Some(16 << 20), ..Default::default() },
            ..sh("dd if=/dev/zero of=/dev/null bs=64M count=1")
        };
        let bundle = Bundle::new(&config);
        let mut guard = Guard::new(rt.as_ref(), &bundle.id);
        let (stdio, out) = capture();
        let started = rt.start(&bundle.id, bundle.path(), stdio).unwrap();
        guard.track(started.pid);
        let _ = read_all(out);
        assert_eq!(guard.wait(started.pid), 128 + 9, "{kind}");
        assert!(rt.stats(&bundle.id).unwrap().oom_kills >= 1, "{kind}");
    }
}

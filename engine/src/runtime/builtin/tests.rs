//! The built-in runtime against a real busybox bundle (needs root, as the engine's other
//! runtime tests do).

use std::io::{Read, Write};
use std::path::Path;

use berth_types::container::{ContainerConfig, ExecConfig, Resources};
use oci_spec::runtime::{PosixRlimitBuilder, PosixRlimitType};

use super::*;
use crate::runtime::testutil::{capture, read_all, sh, Bundle, Guard};
use crate::runtime::{build_exec_process, Runtime, Stdio};

fn runtime() -> (tempfile::TempDir, Builtin) {
    let dir = tempfile::tempdir().unwrap();
    let rt = Builtin::new(&RuntimeConfig { state_root: dir.path().to_path_buf() }).unwrap();
    (dir, rt)
}

/// Runs a bundle to its end: (exit code, output).
fn run(rt: &Builtin, bundle: &Bundle) -> (i32, String) {
    let mut guard = Guard::new(rt, &bundle.id);
    let (stdio, out) = capture();
    let started = rt.start(&bundle.id, bundle.path(), stdio).unwrap();
    guard.track(started.pid);
    let output = read_all(out);
    (guard.wait(started.pid), output)
}

#[test]
fn runs_isolated_with_docker_defaults() {
    let (_s, rt) = runtime();
    let config = ContainerConfig {
        hostname: Some("box".into()),
        resources: Resources { memory: Some(64 << 20), cpus: None, pids_limit: Some(50) },
        ..sh("echo pid=$$; hostname; id; grep -E '^Cap(Bnd|Eff|Prm)' /proc/self/status; \
              cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; \
              ls /dev; cat /proc/keys | wc -c; grep -c ' /proc/sys ro,' /proc/self/mountinfo; ulimit -n; \
              ls -l /dev/ptmx; echo $HOSTNAME")
    };
    let bundle = Bundle::new(&config);
    let (code, out) = run(&rt, &bundle);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "pid=1");
    assert_eq!(lines[1], "box");
    assert!(lines[2].starts_with("uid=0(root) gid=0(root)"), "{out}");
    // Docker's 14 default capabilities.
    assert_eq!(lines[3], "CapPrm:\t00000000a80425fb");
    assert_eq!(lines[4], "CapEff:\t00000000a80425fb");
    assert_eq!(lines[5], "CapBnd:\t00000000a80425fb");
    if !crate::runtime::cgroup::is_unified() {
        assert_eq!(lines[6], (64u64 << 20).to_string());
        assert_eq!(lines[7], "50");
    }
    for dev in ["null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "fd", "stdin"] {
        assert!(lines.contains(&dev), "/dev/{dev} missing: {out}");
    }
    let after_dev = lines.iter().position(|l| *l == "zero").unwrap();
    assert_eq!(lines[after_dev + 1], "0", "/proc/keys is masked: {out}");
    assert_eq!(lines[after_dev + 2], "1", "/proc/sys is read-only: {out}");
    assert!(out.contains("/dev/ptmx -> pts/ptmx"), "{out}");
    assert!(out.ends_with("box\n"), "{out}");
    // The cgroup is gone after delete (the guard deleted it).
    let cgroup = Cgroup::new(Path::new(&format!("/berth/{}", bundle.id))).unwrap();
    assert!(cgroup.dirs().all(|d| !d.exists()));
}

#[test]
fn a_prepared_start_uses_its_cgroup_and_reads_a_changed_spec_again() {
    let (_s, rt) = runtime();
    let script = "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max";
    let limited = |pids| ContainerConfig {
        resources: Resources { memory: None, cpus: None, pids_limit: Some(pids) },
        ..sh(script)
    };
    let bundle = Bundle::new(&limited(50));
    let cgroup = Cgroup::new(Path::new(&format!("/berth/{}", bundle.id))).unwrap();

    // Prepared: the cgroup is made before the start, and delete undoes it.
    rt.prepare(&bundle.id, bundle.path()).unwrap();
    assert!(cgroup.dirs().all(|d| d.exists()));
    rt.delete(&bundle.id).unwrap();
    assert!(cgroup.dirs().all(|d| !d.exists()));

    // The start takes the prepared spec and cgroup.
    rt.prepare(&bundle.id, bundle.path()).unwrap();
    assert_eq!(run(&rt, &bundle), (0, "50\n".to_string()));

    // A spec written after the prepare (an update of the limits) is the one that runs.
    rt.prepare(&bundle.id, bundle.path()).unwrap();
    let other = Bundle::new(&limited(77));
    let mut spec = bundle.spec.clone();
    let resources = other.spec.linux().as_ref().and_then(|l| l.resources().clone());
    spec.linux_mut().as_mut().unwrap().set_resources(resources);
    crate::runtime::write_bundle(bundle.path(), &spec).unwrap();
    assert_eq!(run(&rt, &bundle), (0, "77\n".to_string()));
    assert!(cgroup.dirs().all(|d| !d.exists()));
}

#[test]
fn a_new_network_namespace_has_loopback_up() {
    let (_s, rt) = runtime();
    let bundle =
        Bundle::new(&sh("cat /sys/class/net/lo/flags; ping -c1 -W2 127.0.0.1 >/dev/null && echo reached"));
    let (code, out) = run(&rt, &bundle);
    assert_eq!(code, 0, "{out}");
    let flags = out.lines().next().and_then(|l| u32::from_str_radix(l.trim_start_matches("0x"), 16).ok());
    assert_eq!(flags.map(|f| f & libc::IFF_UP as u32), Some(libc::IFF_UP as u32), "{out}");
    assert!(out.ends_with("reached\n"), "{out}");
}

#[test]
fn exit_codes_and_signals() {
    let (_s, rt) = runtime();
    let (code, _) = run(&rt, &Bundle::new(&sh("exit 3")));
    assert_eq!(code, 3);
    // A signal from inside the PID namespace cannot kill its init; a child can be killed.
    let (code, out) = run(&rt, &Bundle::new(&sh("kill -9 $$; sh -c 'kill -9 $$'; echo child $?")));
    assert_eq!(code, 0);
    assert!(out.ends_with("child 137\n"), "{out}");
}

#[test]
fn command_not_found_is_127_and_not_executable_126() {
    let (_s, rt) = runtime();
    let cases = [
        (vec!["nope"], 127, "exec: \"nope\": executable file not found in $PATH"),
        (vec!["/nope"], 127, "exec: \"/nope\": stat /nope: no such file or directory"),
        (vec!["/etc"], 126, "exec: \"/etc\": permission denied"),
        (vec!["/etc/passwd"], 126, "exec: \"/etc/passwd\": permission denied"),
    ];
    for (cmd, want_code, want_msg) in cases {
        let config = ContainerConfig {
            image: "busybox".into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let bundle = Bundle::new(&config);
        let _guard = Guard::new(&rt, &bundle.id);
        let (stdio, _out) = capture();
        match rt.start(&bundle.id, bundle.path(), stdio) {
            Err(Error::CommandFailed { exit_code, message }) => {
                assert_eq!((exit_code, message.as_str()), (want_code, want_msg));
            }
            other => panic!("{cmd:?}: {other:?}"),
        }
        // Nothing is left behind: no cgroup, no state.
        let cgroup = Cgroup::new(Path::new(&format!("/berth/{}", bundle.id))).unwrap();
        assert!(cgroup.dirs().all(|d| !d.exists()), "{cmd:?} left its cgroup");
        assert!(rt.read_state(&bundle.id).unwrap().is_none());
    }
}

#[test]
fn user_groups_cwd_and_read_only_root() {
    let (_s, rt) = runtime();
    let config = ContainerConfig {
        user: Some("www-data".into()),
        working_dir: Some("/made/here".into()),
        read_only: true,
        ..sh(
            "id; pwd; grep -E '^Cap(Eff|Prm)' /proc/self/status; touch /x 2>&1; touch /tmp/x 2>&1; echo done",
        )
    };
    let (code, out) = run(&rt, &Bundle::new(&config));
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("uid=33(www-data) gid=33(www-data)"), "{out}");
    assert!(out.contains("/made/here\n"), "{out}");
    assert!(out.contains("CapPrm:\t0000000000000000\nCapEff:\t0000000000000000"), "{out}");
    assert!(out.contains("touch: /x: Read-only file system"), "{out}");
    assert!(out.ends_with("done\n"));
}

#[test]
fn rlimits_above_the_hard_limit_are_clamped() {
    let (_s, rt) = runtime();
    let mut cur = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur) }, 0);
    let bundle = Bundle::with(&sh("ulimit -Hn; ulimit -n"), |spec| {
        let mut process = spec.process().clone().unwrap();
        let huge = cur.rlim_max.saturating_mul(4).max(1 << 20);
        process.set_rlimits(Some(vec![PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .soft(huge)
            .hard(huge)
            .build()
            .unwrap()]));
        spec.set_process(Some(process));
    });
    let (code, out) = run(&rt, &bundle);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, format!("{0}\n{0}\n", cur.rlim_max));
}

#[test]
fn exec_joins_the_container() {
    let (_s, rt) = runtime();
    let bundle =
        Bundle::new(&ContainerConfig { hostname: Some("inside".into()), ..sh("echo ready; exec sleep 100") });
    let mut guard = Guard::new(&rt, &bundle.id);
    let (stdio, out) = capture();
    let started = rt.start(&bundle.id, bundle.path(), stdio).unwrap();
    guard.track(started.pid);
    let mut first = [0u8; 6];
    std::fs::File::from(out).read_exact(&mut first).unwrap();
    assert_eq!(&first, b"ready\n");

    let rootfs = bundle.path().join("rootfs");
    let exec = ExecConfig {
        cmd: vec![
            "sh".into(),
            "-c".into(),
            "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; id -u; pwd; echo $FOO".into(),
        ],
        env: vec!["FOO=bar".into()],
        user: Some("33".into()),
        working_dir: Some("/tmp".into()),
        ..Default::default()
    };
    let process = build_exec_process(&bundle.spec, &rootfs, &exec).unwrap();
    let (stdio, out) = capture();
    let p = rt.exec(&bundle.id, &process, stdio).unwrap();
    guard.track(p.pid);
    let text = read_all(out);
    assert_eq!(guard.wait(p.pid), 0, "{text}");
    assert_eq!(text, "inside\nsleep 100 \n33\n/tmp\nbar\n");
    assert!(rt.pids(&bundle.id).unwrap().contains(&started.pid));

    let nope = build_exec_process(
        &bundle.spec,
        &rootfs,
        &ExecConfig { cmd: vec!["nope".into()], ..Default::default() },
    )
    .unwrap();
    let (stdio, _out) = capture();
    match rt.exec(&bundle.id, &nope, stdio) {
        Err(Error::CommandFailed { exit_code: 127, .. }) => {}
        other => panic!("{other:?}"),
    }

    // SIGKILL through the runtime; the first process dies with it.
    rt.kill(&bundle.id, libc::SIGKILL, false).unwrap();
    assert_eq!(guard.wait(started.pid), 128 + 9);
    let (stdio, _out) = capture();
    assert!(matches!(rt.exec(&bundle.id, &process, stdio), Err(Error::Conflict(_))));
}

#[test]
fn terminal_is_the_containers_pty() {
    let (_s, rt) = runtime();
    let bundle =
        Bundle::new(&ContainerConfig { tty: true, ..sh("tty; stty size; read line; echo got $line") });
    let mut guard = Guard::new(&rt, &bundle.id);
    let started = rt.start(&bundle.id, bundle.path(), Stdio::Terminal { cols: 100, rows: 30 }).unwrap();
    guard.track(started.pid);
    let mut master = std::fs::File::from(started.terminal.expect("a pty master"));
    master.write_all(b"hello\n").unwrap();
    let mut text = Vec::new();
    let mut buf = [0u8; 256];
    // Read until the shell is done; EIO means the slave side closed.
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&text).contains("got hello") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&text).replace('\r', "");
    assert!(text.contains("/dev/pts/0\n"), "{text}");
    assert!(text.contains("30 100\n"), "{text}");
    assert!(text.contains("got hello"), "{text}");
    assert_eq!(guard.wait(started.pid), 0);
}

#[test]
fn pause_resume_and_stats() {
    let (_s, rt) = runtime();
    let bundle = Bundle::new(&sh("while :; do :; done"));
    let mut guard = Guard::new(&rt, &bundle.id);
    let (stdio, _out) = capture();
    let started = rt.start(&bundle.id, bundle.path(), stdio).unwrap();
    guard.track(started.pid);
    std::thread::sleep(std::time::Duration::from_millis(100));
    rt.pause(&bundle.id).unwrap();
    let cgroup = Cgroup::new(Path::new(&format!("/berth/{}", bundle.id))).unwrap();
    assert!(cgroup.is_frozen().unwrap());
    let a = rt.stats(&bundle.id).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let b = rt.stats(&bundle.id).unwrap();
    assert_eq!(a.cpu_usage_ns, b.cpu_usage_ns, "a frozen container uses no CPU");
    rt.resume(&bundle.id).unwrap();
    assert!(!cgroup.is_frozen().unwrap());
    std::thread::sleep(std::time::Duration::from_millis(100));
    let c = rt.stats(&bundle.id).unwrap();
    assert!(c.cpu_usage_ns > b.cpu_usage_ns);
    assert!(c.pids >= 1 && c.memory_usage > 0);
    assert_eq!(c.memory_limit, None);
    assert_eq!(rt.pids(&bundle.id).unwrap(), vec![started.pid]);
    // delete kills what runs (also when paused).
    rt.pause(&bundle.id).unwrap();
    rt.delete(&bundle.id).unwrap();
    assert_eq!(guard.wait(started.pid), 128 + 9);
    assert!(cgroup.dirs().all(|d| !d.exists()));
}

#[test]
fn memory_hog_is_oom_killed_and_counted() {
    let (_s, rt) = runtime();
    let config = ContainerConfig {
        resources: Resources { memory: Some(16 << 20), ..Default::default() },
        ..sh("dd if=/dev/zero of=/dev/null bs=64M count=1")
    };
    let bundle = Bundle::new(&config);
    let mut guard = Guard::new(&rt, &bundle.id);
    let (stdio, out) = capture();
    let started = rt.start(&bundle.id, bundle.path(), stdio).unwrap();
    guard.track(started.pid);
    let _ = read_all(out);
    assert_eq!(guard.wait(started.pid), 128 + 9);
    assert!(rt.stats(&bundle.id).unwrap().oom_kills >= 1);
}

#[test]
fn bad_input_is_refused_cleanly() {
    let (_s, rt) = runtime();
    let (stdio, _) = capture();
    assert!(matches!(rt.start("../x", Path::new("/nonexistent"), stdio), Err(Error::InvalidInput(_))));
    let (stdio, _) = capture();
    assert!(rt.start("missing", Path::new("/nonexistent"), stdio).is_err());
    let (stdio, _) = capture();
    assert!(matches!(rt.kill("missing", libc::SIGTERM, false), Err(Error::Conflict(_))));
    rt.delete("missing").unwrap();
    drop(stdio);

    // A setup step that fails reports itself (not the cgroup join racing with it), and leaves
    // no cgroup behind.
    let bundle = Bundle::with(&sh("true"), |spec| {
        let mut mounts = spec.mounts().clone().unwrap();
        mounts.push(
            oci_spec::runtime::MountBuilder::default()
                .destination("/weird")
                .typ("nosuchfs")
                .source("none")
                .build()
                .unwrap(),
        );
        spec.set_mounts(Some(mounts));
    });
    for _ in 0..5 {
        let _guard = Guard::new(&rt, &bundle.id);
        let (stdio, _out) = capture();
        match rt.start(&bundle.id, bundle.path(), stdio) {
            Err(Error::Runtime(m)) => {
                assert_eq!(m, "mounting nosuchfs on /weird: No such device (os error 19)")
            }
            other => panic!("{other:?}"),
        }
        let cgroup = Cgroup::new(Path::new(&format!("/berth/{}", bundle.id))).unwrap();
        assert!(cgroup.dirs().all(|d| !d.exists()));
    }

    // A mount onto an image symlink that points at the host stays inside the rootfs.
    let bundle = Bundle::new(&sh("ls /escape"));
    let rootfs = bundle.path().join("rootfs");
    let host = tempfile::tempdir().unwrap();
    std::fs::remove_dir(rootfs.join("proc")).unwrap();
    std::os::unix::fs::symlink(host.path(), rootfs.join("proc")).unwrap();
    let mut guard = Guard::new(&rt, &bundle.id);
    let (stdio, out) = capture();
    if let Ok(started) = rt.start(&bundle.id, bundle.path(), stdio) {
        guard.track(started.pid);
        let _ = read_all(out);
        guard.wait(started.pid);
    }
    assert_eq!(
        std::fs::read_dir(host.path()).unwrap().count(),
        0,
        "nothing was mounted on the host directory"
    );
}

/// What must hold on a cgroup v2-only host: the container in its own cgroup, seen as the root
/// of its cgroup namespace, cgroup2 mounted read-only, freezing through cgroup.freeze, CPU
/// accounting, and nothing left after delete.
fn v2_checks() {
    assert!(crate::runtime::cgroup::is_unified());
    let (_s, rt) = runtime();
    let bundle = Bundle::new(&sh("mknod /tmp/mem c 1 1 && head -c1 /tmp/mem; echo mem $?; \
        mknod /tmp/sda b 8 0 && head -c1 /tmp/sda; echo sda $?; head -c1 /dev/zero | wc -c; \
        cat /proc/self/cgroup; \
        awk '$5 == \"/sys/fs/cgroup\" { print $5, $6, $(NF-2) }' /proc/self/mountinfo"));
    let (code, out) = run(&rt, &bundle);
    assert_eq!(code, 0, "{out}");
    // The device filter: mknod is allowed, opening a device that is not a default is not.
    assert!(out.contains("head: /tmp/mem: Operation not permitted\nmem 1\n"), "{out}");
    assert!(out.contains("head: /tmp/sda: Operation not permitted\nsda 1\n1\n"), "{out}");
    // (A kernel with v1 hierarchies lists them too, with the numbers before "::".)
    assert!(out.lines().any(|l| l == "0::/"), "{out}");
    assert!(out.contains("/sys/fs/cgroup ro,nosuid,nodev,noexec,relatime cgroup2"), "{out}");

    let bundle = Bundle::new(&sh("while :; do :; done"));
    let mut guard = Guard::new(&rt, &bundle.id);
    let (stdio, _out) = capture();
    let started = rt.start(&bundle.id, bundle.path(), stdio).unwrap();
    guard.track(started.pid);
    let host_cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", started.pid)).unwrap();
    assert!(host_cgroup.lines().any(|l| l == format!("0::/berth/{}", bundle.id)), "{host_cgroup}");
    std::thread::sleep(std::time::Duration::from_millis(50));
    rt.pause(&bundle.id).unwrap();
    let cgroup = Cgroup::new(Path::new(&format!("/berth/{}", bundle.id))).unwrap();
    assert!(cgroup.is_frozen().unwrap());
    rt.resume(&bundle.id).unwrap();
    assert!(rt.stats(&bundle.id).unwrap().cpu_usage_ns > 0);
    rt.delete(&bundle.id).unwrap();
    assert_eq!(guard.wait(started.pid), 128 + 9);
    assert!(cgroup.dirs().all(|d| !d.exists()));
}

/// cgroup v2 alone, as most machines have it now. On a host with v1 controllers this test
/// binary runs [`v2_only_inner`] again in a private mount namespace whose /sys/fs/cgroup is a
/// cgroup2 mount (the controllers still bound to v1 are missing from it; the rest is real).
#[test]
fn cgroup_v2_only_host() {
    if crate::runtime::cgroup::is_unified() {
        return v2_checks();
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "--", "sh", "-c"])
        .arg("mount -t cgroup2 none /sys/fs/cgroup && exec \"$0\" --exact runtime::builtin::tests::v2_only_inner --ignored --test-threads 1")
        .arg(&exe)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "the inner test did not run: {text}");
}

#[test]
#[ignore = "run by cgroup_v2_only_host inside a cgroup2-only mount namespace"]
fn v2_only_inner() {
    v2_checks();
}

#[test]
fn mount_destinations_resolve_symlinks_inside_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    fs::create_dir_all(root.join("real/dir")).unwrap();
    std::os::unix::fs::symlink("/real", root.join("abs")).unwrap();
    std::os::unix::fs::symlink("../../real/dir", root.join("real/rel")).unwrap();
    // Points at a host path: inside the root it is a path that does not exist yet.
    std::os::unix::fs::symlink(dir.path().join("host"), root.join("out")).unwrap();
    std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
    let r = |p: &str| resolve_in_root(&root, Path::new(p));
    assert_eq!(r("/abs/dir/x").unwrap(), Path::new("real/dir/x"));
    assert_eq!(r("/real/rel/y").unwrap(), Path::new("real/dir/y"));
    assert_eq!(r("/../../etc").unwrap(), Path::new("etc"));
    let escaped = r("/out/escape").unwrap();
    assert!(escaped.is_relative() && escaped.ends_with("host/escape"), "{}", escaped.display());
    assert!(r("/loop/x").unwrap_err().to_string().contains("too many levels of symbolic links"));
}

#[test]
fn seccomp_default_profile_and_its_opt_outs() {
    let (_s, rt) = runtime();
    let script = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; unshare -U -r id 2>&1; echo unshare=$?";
    let (code, out) = run(&rt, &Bundle::new(&sh(script)));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Seccomp:\t2") && out.contains("NoNewPrivs:\t0"), "{out}");
    assert!(out.contains("Operation not permitted") && out.contains("unshare=1"), "{out}");

    for opt in [
        ContainerConfig { security_opt: vec!["seccomp=unconfined".into()], ..sh(script) },
        ContainerConfig { privileged: true, ..sh(script) },
    ] {
        let (code, out) = run(&rt, &Bundle::new(&opt));
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("Seccomp:\t0"), "{out}");
    }
    let nnp = ContainerConfig { security_opt: vec!["no-new-privileges".into()], ..sh(script) };
    let (_, out) = run(&rt, &Bundle::new(&nnp));
    assert!(out.contains("Seccomp:\t2") && out.contains("NoNewPrivs:\t1"), "{out}");
    // An exec'd process gets the filter too.
    let bundle = Bundle::new(&sh("sleep 100"));
    let mut guard = Guard::new(&rt, &bundle.id);
    let (stdio, _out) = capture();
    let started = rt.start(&bundle.id, bundle.path(), stdio).unwrap();
    guard.track(started.pid);
    let exec = ExecConfig {
        cmd: vec!["grep".into(), "Seccomp:".into(), "/proc/self/status".into()],
        ..Default::default()
    };
    let process = build_exec_process(&bundle.spec, &bundle.path().join("rootfs"), &exec).unwrap();
    let (stdio, out) = capture();
    let pid = rt.exec(&bundle.id, &process, stdio).unwrap().pid;
    let text = read_all(out);
    assert_eq!(guard.wait(pid), 0);
    assert!(text.contains("Seccomp:\t2"), "{text}");
}

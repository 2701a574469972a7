//! Containers through the engine, with the real runtime, monitor and busybox image (needs root):
//! lifecycle, logs, attach and exec, restart policies, OOM kills, and monitors that outlive the
//! engine.
//!
//! The test binary has its own main: started as `<test binary> monitor DIR` it is a container's
//! monitor (the daemon re-executes `berth` the same way), otherwise it runs the tests through
//! libtest-mimic, so `cargo test` and nextest drive it as usual.

use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_engine::container::{
    ContainerAction, EngineEvent, LogOptions, OutputStream, SessionOutput, WaitCondition,
};
use berth_engine::{Engine, EngineConfig, Error, ErrorKind};
use berth_types::container::{ContainerConfig, ContainerStatus, ExecConfig, Resources, RestartPolicy};
use futures_util::StreamExt;
use libtest_mimic::{Arguments, Failed, Trial};

type TestFn = fn(&Env);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("monitor") {
        std::process::exit(berth_engine::monitor::main(args[2..].to_vec()));
    }
    let tests: Vec<(&str, TestFn)> = vec![
        ("lifecycle_through_the_runtime", lifecycle_through_the_runtime),
        ("a_missing_command_fails_the_start_with_127", a_missing_command_fails_the_start_with_127),
        ("bad_input_leaves_nothing_behind", bad_input_leaves_nothing_behind),
        (
            "on_failure_restarts_with_back_off_up_to_the_limit",
            on_failure_restarts_with_back_off_up_to_the_limit,
        ),
        ("always_restarts_until_stopped", always_restarts_until_stopped),
        ("logs_are_json_lines_and_follow_ends_at_exit", logs_are_json_lines_and_follow_ends_at_exit),
        ("an_oom_kill_is_reported", an_oom_kill_is_reported),
        ("containers_outlive_the_engine", containers_outlive_the_engine),
        ("a_dead_monitor_marks_its_container_dead", a_dead_monitor_marks_its_container_dead),
        ("attach_with_a_tty_runs_a_shell", attach_with_a_tty_runs_a_shell),
        ("exec_with_and_without_tty", exec_with_and_without_tty),
        ("auto_remove_and_rename_and_prune", auto_remove_and_rename_and_prune),
        (
            "runc_and_crun_run_containers_through_the_monitor",
            runc_and_crun_run_containers_through_the_monitor,
        ),
        (
            "a_none_network_is_made_by_the_runtime_and_joinable",
            a_none_network_is_made_by_the_runtime_and_joinable,
        ),
    ];
    let trials = tests
        .into_iter()
        .map(|(name, test)| {
            Trial::test(name, move || {
                if !nix::unistd::Uid::effective().is_root() {
                    return Err(Failed::from("needs root (namespaces, mounts, cgroups)"));
                }
                let env = Env::new();
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(&env))) {
                    Ok(()) => Ok(()),
                    Err(panic) => Err(Failed::from({
                        env.dump_monitor_logs();
                        panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_else(|| "panicked".into())
                    })),
                }
            })
        })
        .collect();
    libtest_mimic::run(&Arguments::from_args(), trials).exit();
}

/// A temporary engine root and run directory with the busybox image, a tokio runtime, and
/// cleanup of every container (so of their monitors, mounts and cgroups) on drop.
struct Env {
    rt: tokio::runtime::Runtime,
    engine: std::cell::RefCell<Option<Engine>>,
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = tempfile::Builder::new().prefix("bc").tempdir_in("/tmp").unwrap();
        let env = Env { rt, engine: std::cell::RefCell::new(None), dir };
        env.reopen();
        let tar = busybox_tar();
        let engine = env.engine();
        env.block(async move {
            let body = tokio::fs::File::open(tar).await.unwrap();
            engine
                .import_image(body, Some("busybox:latest".into()), vec![r#"CMD ["sh"]"#.into()], None)
                .await
                .unwrap();
        });
        env
    }

    fn config(&self) -> EngineConfig {
        EngineConfig {
            monitor_exe: std::env::current_exe().unwrap(),
            ..EngineConfig::new(self.dir.path().join("root"), self.dir.path().join("run"))
        }
    }

    /// Drops the engine (not the monitors) and opens a new one on the same directories.
    fn reopen(&self) {
        self.engine.borrow_mut().take();
        let config = self.config();
        let engine = self.rt.block_on(Engine::open(config)).unwrap();
        *self.engine.borrow_mut() = Some(engine);
    }

    fn engine(&self) -> Engine {
        self.engine.borrow().clone().unwrap()
    }

    fn block<T>(&self, f: impl Future<Output = T>) -> T {
        self.rt.block_on(f)
    }

    /// Creates and starts a busybox container.
    fn run(&self, config: ContainerConfig) -> String {
        let engine = self.engine();
        self.block(async move {
            let id = engine.create_container(config).await.unwrap().id;
            engine.start_container(&id).await.unwrap();
            id
        })
    }

    fn state(&self, id: &str) -> berth_types::ContainerState {
        let engine = self.engine();
        self.block(async move { engine.inspect_container(id).await.unwrap().state })
    }

    /// Waits (polling inspect) until `check` holds, at most `secs`.
    fn wait_for(
        &self,
        id: &str,
        secs: u64,
        what: &str,
        check: impl Fn(&berth_types::ContainerState) -> bool,
    ) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let state = self.state(id);
            if check(&state) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {state:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn logs(&self, id: &str) -> Vec<berth_types::LogEntry> {
        let engine = self.engine();
        self.block(async move {
            let stream = engine.container_logs(id, LogOptions::default()).await.unwrap();
            stream.map(|e| e.unwrap()).collect::<Vec<_>>().await
        })
    }

    /// Prints what the monitors wrote to their stderr, for a failure's report.
    fn dump_monitor_logs(&self) {
        let Ok(dirs) = fs::read_dir(self.dir.path().join("root/containers")) else { return };
        for dir in dirs.flatten() {
            if let Ok(log) = fs::read_to_string(dir.path().join("monitor.log")) {
                if !log.is_empty() {
                    eprintln!("monitor.log of {}:\n{log}", dir.file_name().to_string_lossy());
                }
            }
        }
    }

    /// Whether the container's root filesystem is mounted (in this process's mount namespace,
    /// the engine's).
    fn rootfs_mounted(&self, id: &str) -> bool {
        let rootfs = self.dir.path().join("root/containers").join(id).join("rootfs");
        let rootfs = fs::canonicalize(&rootfs).unwrap_or(rootfs);
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        mountinfo.lines().any(|l| l.split(' ').nth(4) == Some(rootfs.to_str().unwrap_or_default()))
    }

    fn containers_dir_entries(&self) -> usize {
        fs::read_dir(self.dir.path().join("root/containers")).map(|d| d.count()).unwrap_or(0)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let Some(engine) = self.engine.borrow_mut().take() else { return };
        self.rt.block_on(async {
            for c in engine.list_containers(true).await.unwrap_or_default() {
                if let Err(e) = engine.remove_container(&c.id, true).await {
                    eprintln!("cleanup: removing {}: {e}", c.id);
                }
            }
        });
        drop(engine);
        // Whatever is still mounted under the directory (a failed removal) goes before it.
        if let Ok(mounts) = fs::read_to_string("/proc/self/mounts") {
            let base = self.dir.path().display().to_string();
            let mut targets: Vec<&str> =
                mounts.lines().filter_map(|l| l.split(' ').nth(1)).filter(|t| t.starts_with(&base)).collect();
            targets.reverse();
            for t in targets {
                let _ = nix::mount::umount2(t, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

/// The busybox root filesystem tarball, built once per target directory by the project's script.
fn busybox_tar() -> PathBuf {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("busybox-rootfs.tar");
    if !out.exists() {
        let tmp = out.with_extension(format!("tmp{}", std::process::id()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/busybox-rootfs.sh");
        let status = Command::new("bash").arg(script).arg(&tmp).status().unwrap();
        assert!(status.success(), "busybox-rootfs.sh failed (is busybox-static installed?)");
        fs::rename(&tmp, &out).unwrap();
    }
    out
}

fn busybox(cmd: &[&str]) -> ContainerConfig {
    ContainerConfig {
        image: "busybox".into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        ..ContainerConfig::default()
    }
}

fn pid_alive(pid: i32) -> bool {
    pid > 0 && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

fn lifecycle_through_the_runtime(env: &Env) {
    let engine = env.engine();
    let mut events = engine.subscribe_events();
    let mut config = busybox(&["sh", "-c", "echo out; echo err >&2; exec sleep 300"]);
    config.name = Some("life".into());
    let id = env.block(engine.create_container(config)).unwrap().id;
    let inspect = env.block(engine.inspect_container("life")).unwrap();
    assert_eq!(inspect.id, id);
    assert_eq!(inspect.name, "/life");
    assert_eq!(inspect.state.status, ContainerStatus::Created);
    assert_eq!(inspect.path, "sh");
    assert!(env.block(engine.list_containers(false)).unwrap().is_empty());
    assert_eq!(env.block(engine.list_containers(true)).unwrap().len(), 1);

    // The image is in use now.
    let e = env.block(engine.remove_image("busybox", false)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");

    env.block(engine.start_container(&id[..12])).unwrap();
    let state = env.state(&id);
    assert_eq!(state.status, ContainerStatus::Running);
    assert!(pid_alive(state.pid));
    // Starting a running container does nothing.
    env.block(engine.start_container("life")).unwrap();
    let rows = env.block(engine.list_containers(false)).unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].status.starts_with("Up "), "{}", rows[0].status);
    assert_eq!(rows[0].command, "sh -c 'echo out; echo err >&2; exec sleep 300'");

    env.wait_for(&id, 10, "output", |_| env.logs(&id).len() == 2);
    let logs = env.logs(&id);
    let stdout: Vec<_> = logs.iter().filter(|e| e.stream == "stdout").map(|e| e.line.as_str()).collect();
    let stderr: Vec<_> = logs.iter().filter(|e| e.stream == "stderr").map(|e| e.line.as_str()).collect();
    assert_eq!(stdout, ["out\n"]);
    assert_eq!(stderr, ["err\n"]);

    let top = env.block(engine.top_container("life")).unwrap();
    assert_eq!(top.titles[1], "PID");
    assert!(top.processes.iter().any(|p| p[7].contains("sleep 300")), "{top:?}");
    let stats = env.block(engine.container_stats("life")).unwrap();
    assert!(stats.pids >= 1, "{stats:?}");
    assert!(stats.memory_usage > 0 && stats.memory_limit > 0, "{stats:?}");

    env.block(engine.pause_container("life")).unwrap();
    assert_eq!(env.state(&id).status, ContainerStatus::Paused);
    let e = env.block(engine.pause_container("life")).unwrap_err();
    assert!(e.to_string().contains("already paused"), "{e}");
    let e = env.block(engine.remove_container("life", false)).unwrap_err();
    assert!(e.to_string().contains("You cannot remove a paused container"), "{e}");
    env.block(engine.unpause_container("life")).unwrap();
    assert_eq!(env.state(&id).status, ContainerStatus::Running);
    let e = env.block(engine.unpause_container("life")).unwrap_err();
    assert!(e.to_string().contains("is not paused"), "{e}");

    let e = env.block(engine.remove_container("life", false)).unwrap_err();
    assert!(e.to_string().contains("You cannot remove a running container"), "{e}");

    // sleep as PID 1 has no SIGTERM handler, so the kernel ignores SIGTERM: SIGKILL after 1 s.
    let started = Instant::now();
    env.block(engine.stop_container("life", Some(1))).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(900));
    let state = env.state(&id);
    assert_eq!(state.status, ContainerStatus::Exited);
    assert_eq!(state.exit_code, 137);
    assert!(!state.finished_at.is_empty());
    assert_eq!(env.block(engine.wait_container("life", WaitCondition::NotRunning)).unwrap().status_code, 137);
    let rows = env.block(engine.list_containers(true)).unwrap();
    assert!(rows[0].status.starts_with("Exited (137) "), "{}", rows[0].status);
    let e = env.block(engine.kill_container("life", None)).unwrap_err();
    assert!(e.to_string().contains("is not running"), "{e}");
    // A stopped container's root filesystem is unmounted (once its monitor is gone), as Docker's.
    let deadline = Instant::now() + Duration::from_secs(10);
    while env.rootfs_mounted(&id) {
        assert!(Instant::now() < deadline, "the stopped container's rootfs stays mounted");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Start again: the same container runs anew (its rootfs mounted again); restart stops and
    // starts it.
    env.block(engine.start_container("life")).unwrap();
    assert_eq!(env.state(&id).status, ContainerStatus::Running);
    assert!(env.rootfs_mounted(&id));
    let first_pid = env.state(&id).pid;
    env.block(engine.restart_container("life", Some(0))).unwrap();
    let state = env.state(&id);
    assert_eq!(state.status, ContainerStatus::Running);
    assert_ne!(state.pid, first_pid);
    env.block(engine.kill_container("life", Some("TERM".into()))).unwrap();
    env.block(engine.kill_container("life", Some("KILL".into()))).unwrap();
    assert_eq!(env.block(engine.wait_container("life", WaitCondition::NotRunning)).unwrap().status_code, 137);
    let e = env.block(engine.kill_container("life", Some("NOPE".into()))).unwrap_err();
    assert_eq!(e.to_string(), "invalid signal: NOPE");

    env.block(engine.remove_container("life", false)).unwrap();
    let e = env.block(engine.inspect_container("life")).unwrap_err();
    assert_eq!(e.to_string(), "No such container: life");
    assert_eq!(env.containers_dir_entries(), 0);
    env.block(engine.remove_image("busybox", false)).unwrap();

    let mut actions = Vec::new();
    while let Ok(EngineEvent::Container(e)) = events.try_recv() {
        assert_eq!(e.id, id);
        actions.push(e.action.name());
    }
    for expected in ["create", "start", "pause", "unpause", "kill", "die", "stop", "restart", "destroy"] {
        assert!(actions.contains(&expected), "no {expected} event in {actions:?}");
    }
}

fn a_missing_command_fails_the_start_with_127(env: &Env) {
    let engine = env.engine();
    let id = env.block(engine.create_container(busybox(&["nope"]))).unwrap().id;
    match env.block(engine.start_container(&id)) {
        Err(Error::CommandFailed { exit_code: 127, message }) => {
            assert!(message.contains("nope") && message.contains("not found"), "{message}")
        }
        other => panic!("expected exit code 127, got {other:?}"),
    }
    let state = env.state(&id);
    assert_eq!(state.status, ContainerStatus::Created);
    assert_eq!(state.exit_code, 127);
    assert!(state.error.contains("nope"), "{}", state.error);

    let id = env.block(engine.create_container(busybox(&["/etc"]))).unwrap().id;
    match env.block(engine.start_container(&id)) {
        Err(Error::CommandFailed { exit_code: 126, .. }) => {}
        other => panic!("expected exit code 126, got {other:?}"),
    }
    // The failed containers can be removed (and their monitors are gone).
    for c in env.block(engine.list_containers(true)).unwrap() {
        env.block(engine.remove_container(&c.id, false)).unwrap();
    }
    assert_eq!(env.containers_dir_entries(), 0);
}

fn bad_input_leaves_nothing_behind(env: &Env) {
    let engine = env.engine();
    let mut config = busybox(&["true"]);
    config.image = "nosuchimage".into();
    let e = env.block(engine.create_container(config)).unwrap_err();
    assert_eq!(e.to_string(), "No such image: nosuchimage");

    let mut config = busybox(&["true"]);
    config.name = Some("bad name".into());
    let e = env.block(engine.create_container(config)).unwrap_err();
    assert!(e.to_string().starts_with("Invalid container name (bad name)"), "{e}");

    let mut config = busybox(&["true"]);
    config.runtime = Some("kata".into());
    let e = env.block(engine.create_container(config)).unwrap_err();
    assert!(e.to_string().contains("unknown or invalid runtime name: kata"), "{e}");

    let mut config = busybox(&["true"]);
    config.stop_signal = Some("SIGNOPE".into());
    assert_eq!(
        env.block(engine.create_container(config)).unwrap_err().to_string(),
        "invalid signal: SIGNOPE"
    );

    let mut config = busybox(&["true"]);
    config.auto_remove = true;
    config.restart_policy = RestartPolicy::Always;
    assert!(env.block(engine.create_container(config)).is_err());

    let mut config = busybox(&["true"]);
    config.user = Some("nobody-here".into());
    let e = env.block(engine.create_container(config)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert_eq!(env.containers_dir_entries(), 0, "a failed create left files");

    let mut config = busybox(&["true"]);
    config.name = Some("taken".into());
    let id = env.block(engine.create_container(config.clone())).unwrap().id;
    let e = env.block(engine.create_container(config)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(e.to_string().contains(&format!("is already in use by container \"{id}\"")), "{e}");
    assert_eq!(env.containers_dir_entries(), 1);
    assert_eq!(env.engine().inner().snapshots.list_writable().unwrap(), vec![id]);
}

fn on_failure_restarts_with_back_off_up_to_the_limit(env: &Env) {
    let engine = env.engine();
    let mut events = engine.subscribe_events();
    let mut config = busybox(&["sh", "-c", "echo run; exit 3"]);
    config.restart_policy = RestartPolicy::OnFailure { max_retries: 2 };
    let started = Instant::now();
    let id = env.run(config);
    env.wait_for(&id, 20, "two restarts then exit", |s| {
        s.status == ContainerStatus::Exited && s.restart_count == 2
    });
    // Back-off 100 ms then 200 ms.
    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
    let state = env.state(&id);
    assert_eq!(state.exit_code, 3);
    assert_eq!(env.logs(&id).len(), 3, "one line per run");
    let inspect = env.block(engine.inspect_container(&id)).unwrap();
    assert_eq!(inspect.restart_count, 2);
    let mut dies = 0;
    let mut restarts = 0;
    while let Ok(EngineEvent::Container(e)) = events.try_recv() {
        match e.action {
            ContainerAction::Die { exit_code } => {
                assert_eq!(exit_code, 3);
                dies += 1;
            }
            ContainerAction::Restart => restarts += 1,
            _ => {}
        }
    }
    assert_eq!((dies, restarts), (3, 2));

    // Exit code 0 is not a failure: no restart.
    let mut config = busybox(&["true"]);
    config.restart_policy = RestartPolicy::OnFailure { max_retries: 0 };
    let id = env.run(config);
    assert_eq!(env.block(engine.wait_container(&id, WaitCondition::NotRunning)).unwrap().status_code, 0);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(env.state(&id).restart_count, 0);
}

fn always_restarts_until_stopped(env: &Env) {
    let engine = env.engine();
    let mut config = busybox(&["sh", "-c", "sleep 0.1"]);
    config.restart_policy = RestartPolicy::Always;
    let id = env.run(config);
    env.wait_for(&id, 20, "three restarts", |s| s.restart_count >= 3);
    env.block(engine.stop_container(&id, Some(1))).unwrap();
    let state = env.state(&id);
    assert_eq!(state.status, ContainerStatus::Exited);
    let count = state.restart_count;
    std::thread::sleep(Duration::from_millis(800));
    let state = env.state(&id);
    assert_eq!(state.status, ContainerStatus::Exited, "restarted after a stop");
    assert_eq!(state.restart_count, count);
}

fn logs_are_json_lines_and_follow_ends_at_exit(env: &Env) {
    let engine = env.engine();
    let id = env.run(busybox(&["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done; printf tail"]));
    let followed = env.block(async {
        let options = LogOptions { follow: true, ..LogOptions::default() };
        let stream = engine.container_logs(&id, options).await.unwrap();
        tokio::time::timeout(Duration::from_secs(20), stream.map(|e| e.unwrap().line).collect::<Vec<_>>())
            .await
            .expect("follow did not end when the container stopped")
    });
    assert_eq!(followed, ["line1\n", "line2\n", "line3\n", "tail"]);

    let inspect = env.block(engine.inspect_container(&id)).unwrap();
    let raw = fs::read_to_string(&inspect.log_path).unwrap();
    let mut previous = String::new();
    for line in raw.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(entry["stream"], "stdout");
        let time = entry["time"].as_str().unwrap();
        // RFC 3339 with nanoseconds, UTC.
        assert_eq!(time.len(), "2026-01-01T00:00:00.000000000Z".len(), "{time}");
        assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
        assert!(time >= previous.as_str());
        previous = time.to_string();
    }
    let tail = env.block(async {
        let options = LogOptions { tail: Some(2), ..LogOptions::default() };
        engine.container_logs(&id, options).await.unwrap().map(|e| e.unwrap().line).collect::<Vec<_>>().await
    });
    assert_eq!(tail, ["line3\n", "tail"]);
    let none = env.block(async {
        let options = LogOptions { stdout: false, ..LogOptions::default() };
        engine.container_logs(&id, options).await.unwrap().count().await
    });
    assert_eq!(none, 0);
}

fn an_oom_kill_is_reported(env: &Env) {
    let engine = env.engine();
    let mut events = engine.subscribe_events();
    let mut config = busybox(&["sh", "-c", "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done"]);
    config.resources = Resources { memory: Some(16 * 1024 * 1024), ..Resources::default() };
    let id = env.run(config);
    let code = env.block(async {
        tokio::time::timeout(Duration::from_secs(60), engine.wait_container(&id, WaitCondition::NotRunning))
            .await
            .expect("the memory hog was not killed")
            .unwrap()
    });
    assert_eq!(code.status_code, 137);
    let state = env.state(&id);
    assert!(state.oom_killed, "{state:?}");
    let mut oom = false;
    while let Ok(EngineEvent::Container(e)) = events.try_recv() {
        oom |= e.action == ContainerAction::Oom;
    }
    assert!(oom, "no oom event");
}

fn containers_outlive_the_engine(env: &Env) {
    let id = env.run(busybox(&["sh", "-c", "while true; do echo tick; sleep 0.1; done"]));
    env.wait_for(&id, 10, "output", |_| !env.logs(&id).is_empty());
    let pid = env.state(&id).pid;
    env.reopen();
    let engine = env.engine();
    let rows = env.block(engine.list_containers(false)).unwrap();
    assert_eq!(rows.len(), 1, "ps lost the container");
    assert_eq!(rows[0].state.pid, pid);
    assert!(pid_alive(pid));
    let before = env.logs(&id).len();
    env.wait_for(&id, 10, "more output", |_| env.logs(&id).len() > before + 2);
    // The new engine follows the monitor: it sees the die and the stop works.
    let mut events = engine.subscribe_events();
    env.block(engine.stop_container(&id, Some(1))).unwrap();
    assert!(!pid_alive(pid));
    let state = env.state(&id);
    assert_eq!(state.status, ContainerStatus::Exited);
    let mut died = false;
    while let Ok(EngineEvent::Container(e)) = events.try_recv() {
        died |= matches!(e.action, ContainerAction::Die { .. });
    }
    assert!(died, "no die event after reopening");

    // A restart policy keeps working across a reopen.
    let mut config = busybox(&["sh", "-c", "sleep 0.3; exit 1"]);
    config.restart_policy = RestartPolicy::OnFailure { max_retries: 3 };
    let id = env.run(config);
    env.reopen();
    env.wait_for(&id, 20, "restarts after the reopen", |s| {
        s.status == ContainerStatus::Exited && s.restart_count == 3
    });
}

fn a_dead_monitor_marks_its_container_dead(env: &Env) {
    let id = env.run(busybox(&["sleep", "300"]));
    let state_file = env.dir.path().join("root/containers").join(&id).join("state.json");
    let state: serde_json::Value = serde_json::from_slice(&fs::read(&state_file).unwrap()).unwrap();
    let monitor = state["monitor_pid"].as_i64().unwrap() as i32;
    let pid = env.state(&id).pid;
    assert!(pid_alive(monitor));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(monitor), nix::sys::signal::Signal::SIGKILL).unwrap();
    env.wait_for(&id, 10, "dead", |s| s.status == ContainerStatus::Dead);
    let state = env.state(&id);
    assert!(state.error.contains("monitor"), "{}", state.error);
    // Its processes are gone with it, and it can be removed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let zombie = fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| s.contains(") Z")).unwrap_or(true);
    assert!(zombie, "the container's process survived its monitor");
    let engine = env.engine();
    env.block(engine.remove_container(&id, false)).unwrap();

    // With `--restart always`, a container whose monitor died (as in a reboot) runs again when
    // an engine opens.
    let mut config = busybox(&["sleep", "300"]);
    config.restart_policy = RestartPolicy::Always;
    let id = env.run(config);
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(state_file_of(env, &id)).unwrap()).unwrap();
    let monitor = state["monitor_pid"].as_i64().unwrap() as i32;
    let old_pid = env.state(&id).pid;
    env.engine.borrow_mut().take();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(monitor), nix::sys::signal::Signal::SIGKILL).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::os::unix::net::UnixStream::connect(socket_of(env, &id)).is_ok() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    env.reopen();
    env.wait_for(&id, 20, "running again", |s| s.status == ContainerStatus::Running && s.pid != old_pid);
}

fn state_file_of(env: &Env, id: &str) -> PathBuf {
    env.dir.path().join("root/containers").join(id).join("state.json")
}

fn socket_of(env: &Env, id: &str) -> PathBuf {
    env.dir.path().join("run/containers").join(format!("{}.sock", &id[..16]))
}

fn attach_with_a_tty_runs_a_shell(env: &Env) {
    let engine = env.engine();
    let mut config = busybox(&["sh"]);
    config.tty = true;
    config.open_stdin = true;
    let id = env.block(engine.create_container(config)).unwrap().id;
    let (output, code) = env.block(async {
        let mut session = engine.attach_container(&id).await.unwrap();
        assert!(session.tty);
        engine.start_container(&id).await.unwrap();
        session.input.resize(100, 30).await.unwrap();
        session.input.write(b"stty size; echo hel''lo\n".to_vec()).await.unwrap();
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !String::from_utf8_lossy(&seen).contains("hello") {
            assert!(Instant::now() < deadline, "no hello in {:?}", String::from_utf8_lossy(&seen));
            match tokio::time::timeout(Duration::from_secs(10), session.output.recv()).await {
                Ok(Some(SessionOutput::Data { stream, data })) => {
                    assert_eq!(stream, OutputStream::Tty);
                    seen.extend(data);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        session.input.write(b"exit 3\n".to_vec()).await.unwrap();
        while session.output.recv().await.is_some() {}
        (String::from_utf8_lossy(&seen).into_owned(), session.exit.await.unwrap())
    });
    assert!(output.contains("30 100"), "{output}");
    assert_eq!(code, 3);
    assert_eq!(env.state(&id).exit_code, 3);
}

fn exec_with_and_without_tty(env: &Env) {
    let engine = env.engine();
    let id = env.run(busybox(&["sleep", "300"]));
    let (out, err, code) = env.block(async {
        let exec = ExecConfig {
            cmd: vec!["sh".into(), "-c".into(), "echo $FOO; echo oops >&2; cat; exit 5".into()],
            env: vec!["FOO=bar".into()],
            open_stdin: true,
            ..ExecConfig::default()
        };
        let mut session = engine.exec_container(&id, exec).await.unwrap();
        session.input.write(b"from stdin\n".to_vec()).await.unwrap();
        session.input.close_stdin().await.unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some(item) = session.output.recv().await {
            match item {
                SessionOutput::Data { stream: OutputStream::Stderr, data } => err.extend(data),
                SessionOutput::Data { data, .. } => out.extend(data),
                SessionOutput::Dropped { .. } => panic!("dropped output"),
            }
        }
        (String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap(), session.exit.await.unwrap())
    });
    assert_eq!(out, "bar\nfrom stdin\n");
    assert_eq!(err, "oops\n");
    assert_eq!(code, 5);

    let (out, code) = env.block(async {
        let exec = ExecConfig { cmd: vec!["tty".into()], tty: true, ..ExecConfig::default() };
        let mut session = engine.exec_container(&id, exec).await.unwrap();
        let mut out = Vec::new();
        while let Some(SessionOutput::Data { data, .. }) = session.output.recv().await {
            out.extend(data);
        }
        (String::from_utf8(out).unwrap(), session.exit.await.unwrap())
    });
    assert!(out.starts_with("/dev/pts/"), "{out:?}");
    assert_eq!(code, 0);

    let e = env
        .block(engine.exec_container(&id, ExecConfig { cmd: vec!["nope".into()], ..ExecConfig::default() }))
        .unwrap_err();
    assert!(matches!(e, Error::CommandFailed { exit_code: 127, .. }), "{e:?}");
    // The container's own log has none of the exec output.
    assert!(env.logs(&id).is_empty());
    env.block(engine.kill_container(&id, None)).unwrap();
    env.block(engine.wait_container(&id, WaitCondition::NotRunning)).unwrap();
    let e = env
        .block(engine.exec_container(&id, ExecConfig { cmd: vec!["true".into()], ..ExecConfig::default() }))
        .unwrap_err();
    assert!(e.to_string().contains("is not running"), "{e}");
}

fn auto_remove_and_rename_and_prune(env: &Env) {
    let engine = env.engine();
    let mut config = busybox(&["sh", "-c", "exit 4"]);
    config.auto_remove = true;
    let id = env.block(engine.create_container(config)).unwrap().id;
    let code = env.block(async {
        let wait = tokio::spawn({
            let engine = engine.clone();
            let id = id.clone();
            async move { engine.wait_container(&id, WaitCondition::Removed).await }
        });
        engine.start_container(&id).await.unwrap();
        tokio::time::timeout(Duration::from_secs(20), wait).await.expect("not removed").unwrap().unwrap()
    });
    assert_eq!(code.status_code, 4);
    assert!(env.block(engine.inspect_container(&id)).is_err());

    let mut config = busybox(&["true"]);
    config.name = Some("first".into());
    let a = env.run(config);
    let mut config = busybox(&["sleep", "300"]);
    config.name = Some("second".into());
    let b = env.run(config);
    let e = env.block(engine.rename_container("first", "second")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    let e = env.block(engine.rename_container("first", "-x")).unwrap_err();
    assert!(e.to_string().starts_with("Invalid container name"), "{e}");
    env.block(engine.rename_container("first", "renamed")).unwrap();
    assert_eq!(env.block(engine.inspect_container("renamed")).unwrap().id, a);
    env.block(engine.wait_container("renamed", WaitCondition::NotRunning)).unwrap();

    let report = env.block(engine.prune_containers()).unwrap();
    assert_eq!(report.containers_deleted, vec![a]);
    let left: Vec<_> = env.block(engine.list_containers(true)).unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(left, vec![b]);
}

fn runc_and_crun_run_containers_through_the_monitor(env: &Env) {
    let engine = env.engine();
    let installed = |tool: &str| {
        Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().unwrap().status.success()
    };
    assert!(installed("runc"), "runc is not installed: run scripts/setup.sh --test");
    let mut runtimes = vec!["runc"];
    // crun comes with `scripts/setup.sh --bench` only.
    if installed("crun") {
        runtimes.push("crun");
    } else {
        eprintln!("crun is not installed: only runc is tested");
    }
    for runtime in runtimes {
        let mut config = busybox(&["sh", "-c", "echo up; exec sleep 300"]);
        config.runtime = Some(runtime.into());
        let id = env.run(config);
        let inspect = env.block(engine.inspect_container(&id)).unwrap();
        assert_eq!(inspect.runtime, runtime);
        assert_eq!(inspect.state.status, ContainerStatus::Running);
        env.wait_for(&id, 10, "output", |_| !env.logs(&id).is_empty());
        assert_eq!(env.logs(&id)[0].line, "up\n");
        let top = env.block(engine.top_container(&id)).unwrap();
        assert!(top.processes.iter().any(|p| p[7].contains("sleep 300")), "{runtime}: {top:?}");
        let (out, code) = env.block(async {
            let exec = ExecConfig {
                cmd: vec!["sh".into(), "-c".into(), "hostname; exit 2".into()],
                ..ExecConfig::default()
            };
            let mut session = engine.exec_container(&id, exec).await.unwrap();
            let mut out = Vec::new();
            while let Some(SessionOutput::Data { data, .. }) = session.output.recv().await {
                out.extend(data);
            }
            (String::from_utf8(out).unwrap(), session.exit.await.unwrap())
        });
        assert_eq!(out, format!("{}\n", &id[..12]), "{runtime}");
        assert_eq!(code, 2, "{runtime}");
        env.block(engine.pause_container(&id)).unwrap();
        env.block(engine.unpause_container(&id)).unwrap();
        env.block(engine.stop_container(&id, Some(1))).unwrap();
        assert_eq!(env.state(&id).exit_code, 137, "{runtime}");
        env.block(engine.remove_container(&id, false)).unwrap();

        let mut config = busybox(&["nope"]);
        config.runtime = Some(runtime.into());
        let id = env.block(engine.create_container(config)).unwrap().id;
        match env.block(engine.start_container(&id)) {
            Err(Error::CommandFailed { exit_code: 127, .. }) => {}
            other => panic!("{runtime}: expected exit code 127, got {other:?}"),
        }
        env.block(engine.remove_container(&id, false)).unwrap();
    }
}

/// `--network none`: the runtime's own namespace with `lo` up, no pin; a `container:` joiner
/// gets that same namespace (pinned for it), and the pin goes with the container.
fn a_none_network_is_made_by_the_runtime_and_joinable(env: &Env) {
    let engine = env.engine();
    let net_of = |pid: i32| fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let mut config = busybox(&["sleep", "300"]);
    config.name = Some("alone".into());
    config.network = Some("none".into());
    let a = env.run(config);
    let pid_a = env.state(&a).pid;
    assert_ne!(net_of(pid_a), net_of(std::process::id() as i32));
    let pin = env.dir.path().join("run/netns").join(&a);
    assert!(!pin.exists(), "no pin without a joiner");
    // Its sysfs was mounted in its namespace: lo's flags there have IFF_UP.
    let flags = fs::read_to_string(format!("/proc/{pid_a}/root/sys/class/net/lo/flags")).unwrap();
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is down: {flags:#x}");

    let mut config = busybox(&["sleep", "300"]);
    config.network = Some("container:alone".into());
    let b = env.run(config);
    assert_eq!(net_of(env.state(&b).pid), net_of(pid_a));
    assert!(pin.exists(), "the joined namespace is pinned");
    env.block(engine.remove_container(&a, true)).unwrap();
    assert!(!pin.exists(), "the pin went with its container");
    env.block(engine.remove_container(&b, true)).unwrap();
}

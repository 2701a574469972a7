//! berth as a Kubernetes container runtime: a CRI v1 client (k8s-cri's generated gRPC client,
//! as kubelet and crictl speak it) drives `berth serve --cri-socket` through a pod's life: run
//! the sandbox (CNI bridge network, in the daemon's own network namespace on a private subnet),
//! containers in it, ExecSync, the CRI log file, a daemon restart, stop and remove, and the
//! idempotence kubelet relies on. Debian 12 has no crictl, hence the client here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_tests::Daemon;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

/// The pods' subnet: exists only inside the test daemon's network namespace.
const SUBNET: &str = "10.199.0.0/24";

/// Kills the pause processes of the daemon's pods when the test ends, also on failure (the
/// daemon's own cleanup removes containers, not pods).
struct PodGuard(PathBuf);

impl Drop for PodGuard {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(self.0.join("pods")) else { return };
        for entry in entries.flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path().join("pod.json")) else { continue };
            let Ok(record) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
            let pid = record["pause_pid"].as_i64().unwrap_or(0) as i32;
            let id = record["id"].as_str().unwrap_or("");
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let ours = pid > 0
                && cmdline.split(|b| *b == 0).any(|a| a == b"pod-pause")
                && cmdline.split(|b| *b == 0).any(|a| a == id.as_bytes());
            if ours {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
            }
        }
    }
}

/// A daemon in a network namespace of its own, its pods on the CNI network of [`cni_conf`] under
/// `work`, busybox imported; with the guard of its pods and its CRI socket.
fn cri_daemon(work: &Path) -> (Daemon, PodGuard, PathBuf) {
    let conf = cni_conf(work);
    let args = ["--cni-conf-dir", conf.to_str().unwrap(), "--cni-bin-dir", "/usr/lib/cni"];
    let daemon = Daemon::start_in_netns_with_args(&args);
    let pods = PodGuard(daemon.root());
    daemon.import_busybox("busybox:latest");
    let socket = daemon.run_dir().join("cri.sock");
    (daemon, pods, socket)
}

/// A CNI configuration directory with a bridge network on [`SUBNET`], its addresses recorded
/// under the test's directory (not /var/lib/cni).
fn cni_conf(dir: &Path) -> PathBuf {
    let conf = dir.join("net.d");
    std::fs::create_dir_all(&conf).unwrap();
    let list = serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "berth-test",
        "plugins": [{
            "type": "bridge",
            "bridge": "crit0",
            "isGateway": true,
            "ipMasq": false,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": SUBNET}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": dir.join("cni-ipam").display().to_string(),
            }
        }]
    });
    std::fs::write(conf.join("10-test.conflist"), serde_json::to_vec_pretty(&list).unwrap()).unwrap();
    conf
}

async fn connect(socket: &Path) -> Channel {
    berth_tests::cri::channel(socket).await.expect("connecting to the CRI socket")
}

fn pod_config(log_dir: &Path) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "web".into(),
            uid: "uid-1".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "webhost".into(),
        log_directory: log_dir.display().to_string(),
        dns_config: Some(cri::DnsConfig {
            servers: vec!["10.199.0.53".into()],
            searches: vec!["default.svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        }),
        labels: HashMap::from([("app".to_string(), "web".to_string())]),
        annotations: HashMap::from([("note".to_string(), "a test pod".to_string())]),
        linux: Some(cri::LinuxPodSandboxConfig::default()),
        ..Default::default()
    }
}

fn container_config(name: &str, script: &str, log_path: &str) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata { name: name.into(), attempt: 0 }),
        image: Some(cri::ImageSpec { image: "busybox:latest".into(), ..Default::default() }),
        command: vec!["sh".into(), "-c".into()],
        args: vec![script.into()],
        envs: vec![cri::KeyValue { key: "GREETING".into(), value: "hello".into() }],
        labels: HashMap::from([("tier".to_string(), "front".to_string())]),
        annotations: HashMap::from([("a".to_string(), "b".to_string())]),
        log_path: log_path.into(),
        ..Default::default()
    }
}

async fn exec(rt: &mut RuntimeServiceClient<Channel>, id: &str, cmd: &[&str]) -> cri::ExecSyncResponse {
    rt.exec_sync(cri::ExecSyncRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        timeout: 10,
    })
    .await
    .unwrap_or_else(|e| panic!("ExecSync {cmd:?}: {e}"))
    .into_inner()
}

/// The streaming URL of an `Exec` of `sh -c SCRIPT` with stdin, stdout and stderr.
async fn exec_stream_url(rt: &mut RuntimeServiceClient<Channel>, id: &str, script: &str) -> String {
    rt.exec(cri::ExecRequest {
        container_id: id.into(),
        cmd: vec!["sh".into(), "-c".into(), script.into()],
        stdin: true,
        stdout: true,
        stderr: true,
        tty: false,
    })
    .await
    .expect("Exec")
    .into_inner()
    .url
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a pod of `config` with the namespace `options` (set in `config`, which the pod's
/// containers are then created with): its ID and the options its status reports.
async fn run_pod_in_namespaces(
    rt: &mut RuntimeServiceClient<Channel>,
    config: &mut cri::PodSandboxConfig,
    options: cri::NamespaceOption,
) -> (String, cri::NamespaceOption) {
    config.linux = Some(cri::LinuxPodSandboxConfig {
        security_context: Some(cri::LinuxSandboxSecurityContext {
            namespace_options: Some(options),
            ..Default::default()
        }),
        ..Default::default()
    });
    let request = cri::RunPodSandboxRequest { config: Some(config.clone()), runtime_handler: String::new() };
    let pod_id = rt.run_pod_sandbox(request).await.expect("RunPodSandbox").into_inner().pod_sandbox_id;
    let status = pod_status(rt, &pod_id).await;
    (pod_id, status.linux.unwrap().namespaces.unwrap().options.unwrap())
}

async fn pod_status(rt: &mut RuntimeServiceClient<Channel>, id: &str) -> cri::PodSandboxStatus {
    rt.pod_sandbox_status(cri::PodSandboxStatusRequest { pod_sandbox_id: id.into(), verbose: false })
        .await
        .expect("PodSandboxStatus")
        .into_inner()
        .status
        .expect("a status")
}

async fn container_status(rt: &mut RuntimeServiceClient<Channel>, id: &str) -> cri::ContainerStatus {
    rt.container_status(cri::ContainerStatusRequest { container_id: id.into(), verbose: false })
        .await
        .expect("ContainerStatus")
        .into_inner()
        .status
        .expect("a status")
}

/// Waits until the CRI log file has a line of `stream` that is `line`; returns the file.
fn wait_for_log(path: &Path, stream: &str, line: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let content = std::fs::read_to_string(path).unwrap_or_default();
        let found = content.lines().any(|l| {
            let parts: Vec<&str> = l.splitn(4, ' ').collect();
            parts.len() == 4 && parts[1] == stream && parts[2] == "F" && parts[3] == line
        });
        if found {
            return content;
        }
        assert!(Instant::now() < deadline, "no {stream} line {line:?} in {}:\n{content}", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_pod_runs_end_to_end_over_cri_and_survives_a_daemon_restart() {
    let work = tempfile::tempdir().unwrap();
    let conf = cni_conf(work.path());
    let log_dir = work.path().join("logs");
    let args = ["--cni-conf-dir", conf.to_str().unwrap(), "--cni-bin-dir", "/usr/lib/cni"];
    let mut daemon = Daemon::start_in_netns_with_args(&args);
    let _pods = PodGuard(daemon.root());
    daemon.import_busybox("busybox:latest");
    let socket = daemon.run_dir().join("cri.sock");
    let runtime = tokio::runtime::Runtime::new().unwrap();

    let (pod_id, c1, c2) = runtime.block_on(async {
        let channel = connect(&socket).await;
        let mut rt = RuntimeServiceClient::new(channel.clone());
        let mut images = ImageServiceClient::new(channel);

        let version = rt.version(cri::VersionRequest { version: "v1".into() }).await.unwrap().into_inner();
        assert_eq!(version.runtime_name, "berth");
        assert_eq!(version.runtime_api_version, "v1");
        let status = rt.status(cri::StatusRequest { verbose: false }).await.unwrap().into_inner();
        let conditions = status.status.unwrap().conditions;
        assert!(conditions.iter().all(|c| c.status), "runtime and network ready: {conditions:?}");

        // Images: the store `berth import` filled.
        let spec = Some(cri::ImageSpec { image: "busybox:latest".into(), ..Default::default() });
        let image = images
            .image_status(cri::ImageStatusRequest { image: spec.clone(), verbose: false })
            .await
            .unwrap()
            .into_inner()
            .image
            .expect("busybox is there");
        assert!(image.repo_tags.iter().any(|t| t.ends_with("busybox:latest")), "{image:?}");
        let missing = images
            .image_status(cri::ImageStatusRequest {
                image: Some(cri::ImageSpec { image: "nothere:1".into(), ..Default::default() }),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(missing.image.is_none());
        let listed = images.list_images(cri::ListImagesRequest { filter: None }).await.unwrap().into_inner();
        assert!(listed.images.iter().any(|i| i.id == image.id));
        let fs = images.image_fs_info(cri::ImageFsInfoRequest {}).await.unwrap().into_inner();
        assert_eq!(fs.image_filesystems.len(), 1);

        // The pod: its network from the CNI bridge, its hostname and DNS settings.
        let request =
            cri::RunPodSandboxRequest { config: Some(pod_config(&log_dir)), runtime_handler: String::new() };
        let pod_id =
            rt.run_pod_sandbox(request.clone()).await.expect("RunPodSandbox").into_inner().pod_sandbox_id;
        let again =
            rt.run_pod_sandbox(request).await.expect("RunPodSandbox again").into_inner().pod_sandbox_id;
        assert_eq!(again, pod_id, "running the same pod again answers the same sandbox");
        let pod = pod_status(&mut rt, &pod_id).await;
        assert_eq!(pod.state, cri::PodSandboxState::SandboxReady as i32);
        let ip = pod.network.unwrap().ip;
        assert!(ip.starts_with("10.199.0."), "pod IP {ip:?} from the CNI bridge");
        assert_eq!(pod.labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(pod.metadata.unwrap().name, "web");

        // Two containers in it.
        let sandbox_config = Some(pod_config(&log_dir));
        let create = |name: &str, script: &str, log: &str| cri::CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(container_config(name, script, log)),
            sandbox_config: sandbox_config.clone(),
        };
        let c1 = rt
            .create_container(create("app", "echo $GREETING; echo oops >&2; exec sleep 1000", "app/0.log"))
            .await
            .expect("CreateContainer")
            .into_inner()
            .container_id;
        assert_eq!(container_status(&mut rt, &c1).await.state, cri::ContainerState::ContainerCreated as i32);
        rt.start_container(cri::StartContainerRequest { container_id: c1.clone() })
            .await
            .expect("StartContainer");
        let c2 = rt
            .create_container(create("sidecar", "exec sleep 1000", "sidecar/0.log"))
            .await
            .unwrap()
            .into_inner()
            .container_id;
        rt.start_container(cri::StartContainerRequest { container_id: c2.clone() }).await.unwrap();
        let status = container_status(&mut rt, &c1).await;
        assert_eq!(status.state, cri::ContainerState::ContainerRunning as i32);
        assert_eq!(status.metadata.unwrap().name, "app");
        assert_eq!(status.labels.get("tier").map(String::as_str), Some("front"));
        assert_eq!(status.annotations.get("a").map(String::as_str), Some("b"));
        assert!(status.started_at > 0 && status.created_at > 0);
        assert_eq!(status.log_path, log_dir.join("app/0.log").display().to_string());

        // ExecSync: output, exit codes, the pod's namespaces and files.
        let out = exec(&mut rt, &c1, &["sh", "-c", "echo out; echo err >&2; exit 3"]).await;
        assert_eq!(
            (text(&out.stdout).as_str(), text(&out.stderr).as_str(), out.exit_code),
            ("out\n", "err\n", 3)
        );
        let out = exec(&mut rt, &c1, &["hostname"]).await;
        assert_eq!(text(&out.stdout), "webhost\n");
        let out = exec(&mut rt, &c1, &["cat", "/etc/resolv.conf"]).await;
        let resolv = text(&out.stdout);
        assert!(resolv.contains("nameserver 10.199.0.53") && resolv.contains("ndots:5"), "{resolv}");
        for c in [&c1, &c2] {
            let out = exec(&mut rt, c, &["ip", "-4", "addr", "show", "eth0"]).await;
            assert!(text(&out.stdout).contains(&format!("inet {ip}/")), "{c}: {}", text(&out.stdout));
        }
        // One IPC namespace: what one container puts in it, the other sees.
        let a = exec(&mut rt, &c1, &["readlink", "/proc/self/ns/ipc"]).await;
        let b = exec(&mut rt, &c2, &["readlink", "/proc/self/ns/ipc"]).await;
        assert_eq!(text(&a.stdout), text(&b.stdout), "the pod's containers share its IPC namespace");
        let timed_out = rt
            .exec_sync(cri::ExecSyncRequest {
                container_id: c1.clone(),
                cmd: vec!["sleep".into(), "5".into()],
                timeout: 1,
            })
            .await
            .expect_err("a command past its timeout");
        assert_eq!(timed_out.code(), tonic::Code::DeadlineExceeded);

        // Exec through the streaming server (WebSocket, v4.channel.k8s.io), reached inside the
        // daemon's network namespace where it listens on 127.0.0.1.
        let url = exec_stream_url(&mut rt, &c1, "read line; echo got $line; echo err >&2; exit 3").await;
        let (stdout, stderr, status) = daemon.in_netns(|| stream(&url, Some(b"hello\n")));
        assert_eq!((stdout.as_str(), stderr.as_str()), ("got hello\n", "err\n"));
        assert_eq!(status["status"], "Failure", "{status}");
        assert_eq!(status["details"]["causes"][0]["message"], "3", "{status}");
        let url = rt
            .exec(cri::ExecRequest {
                container_id: c1.clone(),
                cmd: vec!["true".into()],
                stdout: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .url;
        let (_, _, status) = daemon.in_netns(|| stream(&url, None));
        assert_eq!(status["status"], "Success", "{status}");

        // An RPC berth does not honour answers Unimplemented, with a message.
        let refused = rt
            .checkpoint_container(cri::CheckpointContainerRequest {
                container_id: c1.clone(),
                location: "/tmp/nowhere".into(),
                timeout: 1,
            })
            .await
            .expect_err("no checkpoints");
        assert_eq!(refused.code(), tonic::Code::Unimplemented);
        assert!(refused.message().contains("CheckpointContainer"), "{}", refused.message());

        // Stats and a resource update.
        let stats = rt
            .container_stats(cri::ContainerStatsRequest { container_id: c1.clone() })
            .await
            .expect("ContainerStats")
            .into_inner()
            .stats
            .expect("stats");
        assert!(stats.memory.and_then(|m| m.working_set_bytes).is_some_and(|b| b.value > 0));
        assert_eq!(stats.attributes.unwrap().id, c1);
        let listed = rt
            .list_container_stats(cri::ListContainerStatsRequest { filter: None })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.stats.len(), 2);
        let pod_stats = rt
            .pod_sandbox_stats(cri::PodSandboxStatsRequest { pod_sandbox_id: pod_id.clone() })
            .await
            .expect("PodSandboxStats")
            .into_inner()
            .stats
            .unwrap();
        let linux = pod_stats.linux.unwrap();
        assert_eq!(linux.containers.len(), 2);
        assert!(linux.memory.and_then(|m| m.working_set_bytes).is_some_and(|b| b.value > 0));
        let all = rt
            .list_pod_sandbox_stats(cri::ListPodSandboxStatsRequest { filter: None })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(all.stats.len(), 1);
        let limits = cri::LinuxContainerResources { memory_limit_in_bytes: 64 << 20, ..Default::default() };
        rt.update_container_resources(cri::UpdateContainerResourcesRequest {
            container_id: c1.clone(),
            linux: Some(limits),
            ..Default::default()
        })
        .await
        .expect("UpdateContainerResources");
        let resources = container_status(&mut rt, &c1).await.resources.unwrap().linux.unwrap();
        assert_eq!(resources.memory_limit_in_bytes, 64 << 20);

        // Lists and their filters.
        let all = rt.list_containers(cri::ListContainersRequest { filter: None }).await.unwrap().into_inner();
        assert_eq!(all.containers.len(), 2);
        let filter = cri::ContainerFilter {
            label_selector: HashMap::from([("tier".to_string(), "front".to_string())]),
            state: Some(cri::ContainerStateValue { state: cri::ContainerState::ContainerRunning as i32 }),
            pod_sandbox_id: pod_id.clone(),
            ..Default::default()
        };
        let some = rt
            .list_containers(cri::ListContainersRequest { filter: Some(filter) })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(some.containers.len(), 2);
        let pods =
            rt.list_pod_sandbox(cri::ListPodSandboxRequest { filter: None }).await.unwrap().into_inner();
        assert_eq!(pods.items.len(), 1);
        (pod_id, c1, c2)
    });

    // The CRI log file, in kubelet's format.
    let log = wait_for_log(&log_dir.join("app/0.log"), "stdout", "hello");
    wait_for_log(&log_dir.join("app/0.log"), "stderr", "oops");
    let first = log.lines().next().unwrap();
    let time = first.split(' ').next().unwrap();
    assert!(chrono_like(time), "an RFC 3339 timestamp first: {first:?}");

    // `berth ps` shows the pod's containers with their pod's labels.
    let ps =
        daemon.berth(&["ps", "--filter", "label=io.kubernetes.pod.name=web", "--format", "{{.Names}}"]).ok();
    assert_eq!(ps.lines().len(), 2, "{}", ps.stdout);
    assert!(ps.stdout.contains("k8s_app_web_default_uid-1_0"), "{}", ps.stdout);

    // A daemon restart: the pod and its containers are still there and running.
    daemon.restart_with_args(&args);
    runtime.block_on(async {
        let channel = connect(&socket).await;
        let mut rt = RuntimeServiceClient::new(channel);
        assert_eq!(pod_status(&mut rt, &pod_id).await.state, cri::PodSandboxState::SandboxReady as i32);
        assert_eq!(container_status(&mut rt, &c1).await.state, cri::ContainerState::ContainerRunning as i32);
        let out = exec(&mut rt, &c2, &["hostname"]).await;
        assert_eq!(text(&out.stdout), "webhost\n");

        // Stop and remove, each twice: kubelet retries.
        rt.stop_container(cri::StopContainerRequest { container_id: c1.clone(), timeout: 1 })
            .await
            .expect("StopContainer");
        let status = container_status(&mut rt, &c1).await;
        assert_eq!(status.state, cri::ContainerState::ContainerExited as i32);
        assert!(status.finished_at >= status.started_at);
        rt.stop_container(cri::StopContainerRequest { container_id: c1.clone(), timeout: 1 })
            .await
            .expect("again");
        rt.remove_container(cri::RemoveContainerRequest { container_id: c1.clone() })
            .await
            .expect("RemoveContainer");
        rt.remove_container(cri::RemoveContainerRequest { container_id: c1.clone() }).await.expect("again");
        let gone = rt
            .container_status(cri::ContainerStatusRequest { container_id: c1.clone(), verbose: false })
            .await
            .expect_err("removed");
        assert_eq!(gone.code(), tonic::Code::NotFound);

        rt.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: pod_id.clone() })
            .await
            .expect("StopPodSandbox");
        assert_eq!(pod_status(&mut rt, &pod_id).await.state, cri::PodSandboxState::SandboxNotready as i32);
        assert_eq!(container_status(&mut rt, &c2).await.state, cri::ContainerState::ContainerExited as i32);
        rt.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: pod_id.clone() })
            .await
            .expect("again");
        rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod_id.clone() })
            .await
            .expect("RemovePodSandbox");
        rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod_id.clone() })
            .await
            .expect("again");
        let pods =
            rt.list_pod_sandbox(cri::ListPodSandboxRequest { filter: None }).await.unwrap().into_inner();
        assert!(pods.items.is_empty());
        let all = rt.list_containers(cri::ListContainersRequest { filter: None }).await.unwrap().into_inner();
        assert!(all.containers.is_empty(), "the pod's containers went with it");
    });
    // The address went back to the CNI plugin's pool.
    let leases: Vec<_> = std::fs::read_dir(work.path().join("cni-ipam/berth-test"))
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert!(leases.iter().all(|l| !l.starts_with("10.199.")), "leases left: {leases:?}");
}

/// Runs `f` on a thread in the network namespace of process `pid` (where a runtime's streaming
/// server listens on 127.0.0.1).
fn in_netns_of<T: Send>(pid: u32, f: impl FnOnce() -> T + Send) -> T {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).expect("the runtime's network namespace");
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("entering the namespace");
                f()
            })
            .join()
            .expect("a thread in the runtime's namespace panicked")
    })
}

/// Connects to a streaming URL as kubelet does (WebSocket, `v4.channel.k8s.io`), sends `stdin`
/// on channel 0, and collects stdout (1), stderr (2) and the final status (3).
fn stream(url: &str, stdin: Option<&[u8]>) -> (String, String, serde_json::Value) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut request = url.replacen("http://", "ws://", 1).into_client_request().unwrap();
        request.headers_mut().insert("Sec-WebSocket-Protocol", "v4.channel.k8s.io".parse().unwrap());
        let host = request.uri().authority().unwrap().as_str().to_string();
        let tcp = tokio::net::TcpStream::connect(host).await.expect("connecting to the streaming server");
        let (mut ws, answer) =
            tokio_tungstenite::client_async(request, tcp).await.expect("WebSocket handshake");
        assert_eq!(answer.headers()["sec-websocket-protocol"], "v4.channel.k8s.io");
        if let Some(data) = stdin {
            let mut frame = vec![0u8];
            frame.extend_from_slice(data);
            ws.send(Message::Binary(frame.into())).await.unwrap();
        }
        let (mut stdout, mut stderr, mut status) = (Vec::new(), Vec::new(), serde_json::Value::Null);
        loop {
            let next =
                tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("stream timed out");
            let Some(Ok(message)) = next else { break };
            let Message::Binary(data) = message else { continue };
            match data.split_first() {
                Some((1, rest)) => stdout.extend_from_slice(rest),
                Some((2, rest)) => stderr.extend_from_slice(rest),
                Some((3, rest)) => status = serde_json::from_slice(rest).unwrap(),
                _ => {}
            }
        }
        (text(&stdout), text(&stderr), status)
    })
}

fn chrono_like(time: &str) -> bool {
    time.len() >= 20 && time.as_bytes()[4] == b'-' && time.contains('T')
}

/// A private containerd 1.6 (Debian's) with its CRI plugin: its own root, state, sockets and
/// CNI configuration, in a network namespace of its own (`unshare -n`). Stopped by its PID,
/// with its shims and their containers, when dropped.
struct Containerd {
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Containerd {
    fn start(images: &[PathBuf]) -> Containerd {
        let dir = tempfile::Builder::new().prefix("berth-containerd-").tempdir().unwrap();
        let d = dir.path();
        let conf = cni_conf(d);
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/library/pause:berth"
  netns_mounts_under_state_dir = true
  # This machine's root lacks CAP_SYS_RESOURCE: no negative oom_score_adj for the pause.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{conf}"
"#,
            root = d.join("root").display(),
            state = d.join("state").display(),
            d = d.display(),
            conf = conf.display(),
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        let mut cmd = std::process::Command::new("unshare");
        cmd.args(["-n", "sh", "-c", "ip link set lo up && exec containerd --config \"$1\"", "sh"])
            .arg(d.join("config.toml"))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl only, between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("starting containerd");
        let containerd = Containerd { dir, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !containerd.socket().exists() {
            assert!(Instant::now() < deadline, "containerd did not start:\n{}", containerd.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        for image in images {
            let out = std::process::Command::new("ctr")
                .arg("--address")
                .arg(containerd.socket())
                .args(["-n", "k8s.io", "images", "import"])
                .arg(image)
                .output()
                .unwrap();
            assert!(out.status.success(), "ctr import: {}", String::from_utf8_lossy(&out.stderr));
        }
        containerd
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Its shims (their arguments name our socket) and the containers they ran (their root
        // is under our directory).
        let dir = self.dir.path().to_path_buf();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
            let cmdline =
                String::from_utf8_lossy(&std::fs::read(entry.path().join("cmdline")).unwrap_or_default())
                    .into_owned();
            let root = std::fs::read_link(entry.path().join("root")).unwrap_or_default();
            if cmdline.contains(dir.to_str().unwrap()) || root.starts_with(&dir) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        // The cgroup parent of its pods (empty once they are gone; nobody else uses it here).
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
            let parent = hierarchy.path().join("k8s.io");
            for pod in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
                if pod.path().is_dir() {
                    let _ = std::fs::remove_dir(pod.path());
                }
            }
            let _ = std::fs::remove_dir(parent);
        }
        if std::thread::panicking() {
            eprintln!("---- containerd log ----\n{}", self.log());
        }
        berth_tests::unmount_under(&dir);
    }
}

/// What a runtime answered in [`scenario`]: the same for berth and containerd.
#[derive(Debug, PartialEq)]
struct Observed {
    run_again_same_id: bool,
    pod_ready: bool,
    pod_ip_in_subnet: bool,
    created_state: i32,
    running_state: i32,
    exec: (String, String, i32),
    exec_missing_command_fails: bool,
    /// Exec over the streaming server: stdout, stderr, the status's `status`, `reason` and exit code.
    streamed: (String, String, serde_json::Value, serde_json::Value, serde_json::Value),
    hostname: String,
    resolv_conf: Vec<String>,
    env: String,
    same_network: bool,
    log_lines: Vec<(String, String, String)>,
    exited: (i32, i32, String),
    stop_again: bool,
    remove_twice: bool,
    removed_status: tonic::Code,
    pod_stopped_state: i32,
    pod_removed_twice: bool,
    pods_left: usize,
    missing_image: bool,
}

/// One pod with two containers through its life, on the runtime at `socket`.
async fn scenario(socket: &Path, log_dir: &Path, netns_pid: u32) -> Observed {
    let channel = connect(socket).await;
    let mut rt = RuntimeServiceClient::new(channel.clone());
    let mut images = ImageServiceClient::new(channel);
    let mut config = pod_config(log_dir);
    // kubelet's own pods: a PID namespace per container.
    config.linux = Some(cri::LinuxPodSandboxConfig {
        security_context: Some(cri::LinuxSandboxSecurityContext {
            namespace_options: Some(cri::NamespaceOption {
                pid: cri::NamespaceMode::Container as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    let request = cri::RunPodSandboxRequest { config: Some(config.clone()), runtime_handler: String::new() };
    let pod_id =
        rt.run_pod_sandbox(request.clone()).await.expect("RunPodSandbox").into_inner().pod_sandbox_id;
    let again = rt.run_pod_sandbox(request).await.map(|r| r.into_inner().pod_sandbox_id);
    let pod = pod_status(&mut rt, &pod_id).await;
    let ip = pod.network.clone().unwrap_or_default().ip;
    let create = |name: &str, script: &str, log: &str| {
        let mut container = container_config(name, script, log);
        // As kubelet sends it: the container's own namespaces repeat the pod's choice.
        container.linux = Some(cri::LinuxContainerConfig {
            security_context: Some(cri::LinuxContainerSecurityContext {
                namespace_options: config.linux.clone().and_then(|l| l.security_context?.namespace_options),
                ..Default::default()
            }),
            ..Default::default()
        });
        cri::CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(container),
            sandbox_config: Some(config.clone()),
        }
    };
    let c1 = rt
        .create_container(create("app", "echo $GREETING; echo oops >&2; exec sleep 1000", "app.log"))
        .await
        .expect("CreateContainer")
        .into_inner()
        .container_id;
    let created_state = container_status(&mut rt, &c1).await.state;
    rt.start_container(cri::StartContainerRequest { container_id: c1.clone() })
        .await
        .expect("StartContainer");
    let c2 = rt
        .create_container(create("side", "exec sleep 1000", "side.log"))
        .await
        .unwrap()
        .into_inner()
        .container_id;
    rt.start_container(cri::StartContainerRequest { container_id: c2.clone() }).await.unwrap();
    let running_state = container_status(&mut rt, &c1).await.state;
    let out = exec(&mut rt, &c1, &["sh", "-c", "echo out; echo err >&2; exit 7"]).await;
    let exec_result = (text(&out.stdout), text(&out.stderr), out.exit_code);
    let missing = rt
        .exec_sync(cri::ExecSyncRequest {
            container_id: c1.clone(),
            cmd: vec!["/no/such".into()],
            timeout: 5,
        })
        .await;
    let exec_missing_command_fails = match missing {
        Ok(r) => r.into_inner().exit_code != 0,
        Err(_) => true,
    };
    let hostname = text(&exec(&mut rt, &c1, &["hostname"]).await.stdout);
    let resolv_conf: Vec<String> = text(&exec(&mut rt, &c1, &["cat", "/etc/resolv.conf"]).await.stdout)
        .lines()
        .map(String::from)
        .collect();
    let env = text(&exec(&mut rt, &c1, &["sh", "-c", "echo $GREETING"]).await.stdout);
    let a = text(&exec(&mut rt, &c1, &["readlink", "/proc/self/ns/net"]).await.stdout);
    let b = text(&exec(&mut rt, &c2, &["readlink", "/proc/self/ns/net"]).await.stdout);
    let url = exec_stream_url(&mut rt, &c1, "read line; echo got $line; echo err >&2; exit 5").await;
    let streamed = in_netns_of(netns_pid, || stream(&url, Some(b"hi\n")));
    wait_for_log(&log_dir.join("app.log"), "stderr", "oops");
    wait_for_log(&log_dir.join("app.log"), "stdout", "hello");
    // Sorted: the two streams' order in the file is the order their pipes were read.
    let mut log_lines: Vec<(String, String, String)> = std::fs::read_to_string(log_dir.join("app.log"))
        .unwrap()
        .lines()
        .map(|l| {
            let parts: Vec<&str> = l.splitn(4, ' ').collect();
            (parts[1].to_string(), parts[2].to_string(), parts.get(3).unwrap_or(&"").to_string())
        })
        .collect();
    log_lines.sort();

    rt.stop_container(cri::StopContainerRequest { container_id: c1.clone(), timeout: 2 })
        .await
        .expect("StopContainer");
    let status = container_status(&mut rt, &c1).await;
    let exited = (status.state, status.exit_code, status.reason);
    let stop_again =
        rt.stop_container(cri::StopContainerRequest { container_id: c1.clone(), timeout: 2 }).await.is_ok();
    let remove_twice =
        rt.remove_container(cri::RemoveContainerRequest { container_id: c1.clone() }).await.is_ok()
            && rt.remove_container(cri::RemoveContainerRequest { container_id: c1.clone() }).await.is_ok();
    let removed_status = rt
        .container_status(cri::ContainerStatusRequest { container_id: c1.clone(), verbose: false })
        .await
        .map(|_| tonic::Code::Ok)
        .unwrap_or_else(|e| e.code());
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: pod_id.clone() })
        .await
        .expect("StopPodSandbox");
    let pod_stopped_state = pod_status(&mut rt, &pod_id).await.state;
    let pod_removed_twice =
        rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod_id.clone() }).await.is_ok()
            && rt
                .remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod_id.clone() })
                .await
                .is_ok();
    let pods_left = rt
        .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .items
        .len();
    let missing_image = images
        .image_status(cri::ImageStatusRequest {
            image: Some(cri::ImageSpec { image: "nothere:1".into(), ..Default::default() }),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .image
        .is_none();
    Observed {
        run_again_same_id: again.ok().as_deref() == Some(pod_id.as_str()),
        pod_ready: pod.state == cri::PodSandboxState::SandboxReady as i32,
        pod_ip_in_subnet: ip.starts_with("10.199.0."),
        created_state,
        running_state,
        exec: exec_result,
        exec_missing_command_fails,
        streamed: (
            streamed.0,
            streamed.1,
            streamed.2["status"].clone(),
            streamed.2["reason"].clone(),
            streamed.2["details"]["causes"][0]["message"].clone(),
        ),
        hostname,
        resolv_conf,
        env,
        same_network: a == b && !a.is_empty(),
        log_lines,
        exited,
        stop_again,
        remove_twice,
        removed_status,
        pod_stopped_state,
        pod_removed_twice,
        pods_left,
        missing_image,
    }
}

/// Host mounts a test makes for mount propagation, undone (lazily, with what propagated into
/// them) when it ends, also on failure.
struct HostMounts(Vec<PathBuf>);

impl HostMounts {
    fn mount(&mut self, args: &[&str], target: &Path) {
        let status = std::process::Command::new("mount").args(args).arg(target).status().unwrap();
        assert!(status.success(), "mount {args:?} {}", target.display());
        // A change of propagation is no new mount.
        if !args[0].starts_with("--make-") {
            self.0.push(target.to_path_buf());
        }
    }
}

impl Drop for HostMounts {
    fn drop(&mut self) {
        for target in self.0.iter().rev() {
            let _ = std::process::Command::new("umount").arg("-l").arg(target).status();
        }
    }
}

/// Runs a streaming URL's session over SPDY (as kubelet's remotecommand client) from inside the
/// runtime's network namespace, where its streaming server listens.
fn spdy_stream(netns_pid: u32, url: &str, stdin: Option<&[u8]>, stderr: bool) -> berth_tests::spdy::Session {
    in_netns_of(netns_pid, || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(berth_tests::spdy::run(url, stdin, stderr)).expect("SPDY session")
    })
}

/// What a runtime answered in [`security_scenario`]: the same for berth and containerd.
#[derive(Debug, PartialEq)]
struct SecurityObserved {
    /// `id -G` with supplemental groups 1234 and 5678.
    groups: String,
    /// `touch /tmp/x` with /tmp a read-only path: fails, and says why.
    readonly_path: (bool, bool),
    /// /etc/hosts masked: reads empty.
    masked_path: String,
    /// The propagation ContainerStatus reports for the shared and the slave mount.
    reported: (i32, i32),
    /// A host mount seen in the container, a container mount seen on the host: shared, slave.
    shared: (bool, bool),
    slave: (bool, bool),
    /// Exec over SPDY: stdout, stderr, the status's `status`, `reason` and exit code.
    spdy: (String, String, serde_json::Value, serde_json::Value, serde_json::Value),
    /// Exec over SPDY of a command that succeeds, without stdin and stderr.
    spdy_success: (String, serde_json::Value),
    /// An upgrade that offers no protocol the server speaks: the answer's status line.
    spdy_unknown_protocol: String,
    /// Exec with both a terminal and stderr.
    tty_and_stderr: tonic::Code,
    /// Port forward to an echo server in the pod: what came back, and whether the error stream
    /// was empty; then to a port nobody listens on: whether the error stream said so.
    port_forward: (String, bool),
    port_forward_refused: bool,
    /// ExecSync past its timeout: the answer, and whether its process is gone after it.
    exec_timeout: (tonic::Code, bool),
}

/// Supplemental groups, read-only and masked paths, mount propagation and SPDY streaming, on
/// the runtime at `socket`; `host_dir` is a fresh directory for the propagation mounts.
async fn security_scenario(
    socket: &Path,
    log_dir: &Path,
    netns_pid: u32,
    host_dir: &Path,
) -> SecurityObserved {
    let channel = connect(socket).await;
    let mut rt = RuntimeServiceClient::new(channel);
    // A privileged pod: its containers may be privileged (containerd refuses them otherwise).
    let mut config = pod_config(log_dir);
    config.linux = Some(cri::LinuxPodSandboxConfig {
        security_context: Some(cri::LinuxSandboxSecurityContext { privileged: true, ..Default::default() }),
        ..Default::default()
    });
    let request = cri::RunPodSandboxRequest { config: Some(config.clone()), runtime_handler: String::new() };
    let pod_id = rt.run_pod_sandbox(request).await.expect("RunPodSandbox").into_inner().pod_sandbox_id;

    // Two host directories made shared mounts, as kubelet's volumes for propagation are.
    let mut host_mounts = HostMounts(Vec::new());
    let mut propagated = Vec::new();
    for kind in ["shared", "slave"] {
        let mnt = host_dir.join(kind).join("mnt");
        std::fs::create_dir_all(mnt.join("from-host")).unwrap();
        host_mounts.mount(&["--bind", mnt.to_str().unwrap()], &mnt);
        host_mounts.mount(&["--make-rshared"], &mnt);
        propagated.push(mnt);
    }
    let sandbox = config.clone();
    let start = |rt: &mut RuntimeServiceClient<Channel>, config: cri::ContainerConfig| {
        let request = cri::CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(config),
            sandbox_config: Some(sandbox.clone()),
        };
        let mut rt = rt.clone();
        async move {
            let id = rt.create_container(request).await.expect("CreateContainer").into_inner().container_id;
            rt.start_container(cri::StartContainerRequest { container_id: id.clone() })
                .await
                .expect("StartContainer");
            id
        }
    };
    let mut secure = container_config("secure", "exec sleep 1000", "secure.log");
    secure.linux = Some(cri::LinuxContainerConfig {
        security_context: Some(cri::LinuxContainerSecurityContext {
            supplemental_groups: vec![1234, 5678],
            readonly_paths: vec!["/tmp".into()],
            masked_paths: vec!["/etc/hosts".into()],
            ..Default::default()
        }),
        ..Default::default()
    });
    let secure = start(&mut rt, secure).await;
    let echo = start(&mut rt, container_config("echo", "exec nc -ll -p 8080 -e cat", "echo.log")).await;
    let mut ids = Vec::new();
    for (mnt, propagation) in propagated.iter().zip([
        cri::MountPropagation::PropagationBidirectional,
        cri::MountPropagation::PropagationHostToContainer,
    ]) {
        let name = if ids.is_empty() { "shared" } else { "slave" };
        let mut c = container_config(name, "exec sleep 1000", &format!("{name}.log"));
        c.mounts = vec![cri::Mount {
            container_path: mnt.display().to_string(),
            host_path: mnt.display().to_string(),
            propagation: propagation as i32,
            ..Default::default()
        }];
        // Privileged, to mount inside.
        c.linux = Some(cri::LinuxContainerConfig {
            security_context: Some(cri::LinuxContainerSecurityContext {
                privileged: true,
                ..Default::default()
            }),
            ..Default::default()
        });
        ids.push(start(&mut rt, c).await);
    }

    let groups = text(&exec(&mut rt, &secure, &["id", "-G"]).await.stdout);
    let touch = exec(&mut rt, &secure, &["touch", "/tmp/x"]).await;
    let readonly_path = (touch.exit_code != 0, text(&touch.stderr).contains("Read-only file system"));
    let masked_path = text(&exec(&mut rt, &secure, &["cat", "/etc/hosts"]).await.stdout);
    let mut reported = Vec::new();
    let mut seen = Vec::new();
    for (id, mnt) in ids.iter().zip(&propagated) {
        reported
            .push(container_status(&mut rt, id).await.mounts.first().map(|m| m.propagation).unwrap_or(-1));
        let from_host = mnt.join("from-host");
        host_mounts.mount(&["-t", "tmpfs", "none"], &from_host);
        std::fs::write(from_host.join("flag"), "host").unwrap();
        let in_container = exec(&mut rt, id, &["cat", &from_host.join("flag").display().to_string()]).await;
        let from_container = mnt.join("from-container");
        let script = format!(
            "mkdir -p {d} && mount -t tmpfs none {d} && echo container > {d}/flag",
            d = from_container.display()
        );
        let mounted = exec(&mut rt, id, &["sh", "-c", &script]).await;
        assert_eq!(mounted.exit_code, 0, "mount in the container: {}", text(&mounted.stderr));
        let on_host = from_container.join("flag").exists();
        if on_host {
            host_mounts.0.push(from_container);
        }
        seen.push((text(&in_container.stdout) == "host", on_host));
    }

    let url = exec_stream_url(&mut rt, &secure, "read line; echo got $line; echo err >&2; exit 5").await;
    let session = spdy_stream(netns_pid, &url, Some(b"hi\n"), true);
    let spdy = (
        session.stdout,
        session.stderr,
        session.status["status"].clone(),
        session.status["reason"].clone(),
        session.status["details"]["causes"][0]["message"].clone(),
    );
    let url = rt
        .exec(cri::ExecRequest {
            container_id: secure.clone(),
            cmd: vec!["echo".into(), "fine".into()],
            stdout: true,
            ..Default::default()
        })
        .await
        .expect("Exec")
        .into_inner()
        .url;
    let session = spdy_stream(netns_pid, &url, None, false);
    let spdy_success = (session.stdout, session.status["status"].clone());
    let url = exec_stream_url(&mut rt, &secure, "true").await;
    let refused = in_netns_of(netns_pid, || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(berth_tests::spdy::upgrade(&url, &["v1.bogus.k8s.io"])).map(|_| ()).unwrap_err()
    });
    let spdy_unknown_protocol = refused.split(' ').take(2).collect::<Vec<_>>().join(" ");
    let tty_and_stderr = rt
        .exec(cri::ExecRequest {
            container_id: secure.clone(),
            cmd: vec!["true".into()],
            tty: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        })
        .await
        .map(|_| tonic::Code::Ok)
        .unwrap_or_else(|e| e.code());

    let forward_url = |rt: &mut RuntimeServiceClient<Channel>| {
        let mut rt = rt.clone();
        let request = cri::PortForwardRequest { pod_sandbox_id: pod_id.clone(), port: vec![] };
        async move { rt.port_forward(request).await.expect("PortForward").into_inner().url }
    };
    let forward = |url: String, port: u16| {
        in_netns_of(netns_pid, move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(berth_tests::spdy::port_forward(&url, port, b"ping\n")).expect("port forward")
        })
    };
    // nc listens once the container runs: a few tries.
    let mut port_forward = (String::new(), false);
    for _ in 0..20 {
        let (data, error) = forward(forward_url(&mut rt).await, 8080);
        port_forward = (data, error.is_empty());
        if port_forward.0 == "ping\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, error) = forward(forward_url(&mut rt).await, 8081);
    let port_forward_refused = !error.is_empty();
    let timed_out = rt
        .exec_sync(cri::ExecSyncRequest {
            container_id: secure.clone(),
            cmd: vec!["sleep".into(), "4321".into()],
            timeout: 1,
        })
        .await
        .map(|_| tonic::Code::Ok)
        .unwrap_or_else(|e| e.code());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let processes = exec(&mut rt, &secure, &["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"]).await;
    let exec_timeout = (timed_out, !text(&processes.stdout).contains("sleep 4321"));

    for id in ids.iter().chain([&secure, &echo]) {
        rt.stop_container(cri::StopContainerRequest { container_id: id.clone(), timeout: 0 }).await.unwrap();
        rt.remove_container(cri::RemoveContainerRequest { container_id: id.clone() }).await.unwrap();
    }
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: pod_id.clone() }).await.unwrap();
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod_id }).await.unwrap();
    drop(host_mounts);
    SecurityObserved {
        groups,
        readonly_path,
        masked_path,
        reported: (reported[0], reported[1]),
        shared: seen[0],
        slave: seen[1],
        spdy,
        spdy_success,
        spdy_unknown_protocol,
        tty_and_stderr,
        port_forward,
        port_forward_refused,
        exec_timeout,
    }
}

#[test]
fn berth_answers_a_pods_life_as_containerd_does() {
    let work = tempfile::tempdir().unwrap();
    let conf = cni_conf(work.path());
    let args = ["--cni-conf-dir", conf.to_str().unwrap(), "--cni-bin-dir", "/usr/lib/cni"];
    let daemon = Daemon::start_in_netns_with_args(&args);
    let _pods = PodGuard(daemon.root());
    // containerd's images: the same busybox, and a pause image made of it (containerd 1.6 needs
    // one; berth does not), as archives `berth save` writes. With a PATH: runc finds commands
    // through the image's.
    let rootfs = berth_tests::busybox_rootfs(work.path());
    let path = "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin";
    let rootfs = rootfs.to_str().unwrap();
    daemon.berth(&["import", "-c", path, "-c", r#"CMD ["sh"]"#, rootfs, "busybox:latest"]).ok();
    daemon.berth(&["import", "-c", path, "-c", r#"CMD ["sleep", "2147483647"]"#, rootfs, "pause:berth"]).ok();
    let mut archives = Vec::new();
    for name in ["busybox:latest", "pause:berth"] {
        let path = work.path().join(format!("{}.tar", name.replace(':', "-")));
        daemon.berth(&["save", "-o", path.to_str().unwrap(), name]).ok();
        archives.push(path);
    }
    let containerd = Containerd::start(&archives);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let berth_logs = work.path().join("berth-logs");
    let containerd_logs = work.path().join("containerd-logs");
    let berth =
        runtime.block_on(scenario(&daemon.run_dir().join("cri.sock"), &berth_logs, daemon.pid().unwrap()));
    let reference = runtime.block_on(scenario(&containerd.socket(), &containerd_logs, containerd.child.id()));
    // The one deliberate difference: running a ready pod again answers it (kubelet retries a
    // RunPodSandbox whose answer it lost), where containerd refuses the reserved name.
    assert!(berth.run_again_same_id && !reference.run_again_same_id);
    let reference = Observed { run_again_same_id: true, ..reference };
    assert_eq!(berth, reference, "berth (left) and containerd (right) differ");

    let berth_dir = work.path().join("berth-propagation");
    let containerd_dir = work.path().join("containerd-propagation");
    let berth = runtime.block_on(security_scenario(
        &daemon.run_dir().join("cri.sock"),
        &berth_logs,
        daemon.pid().unwrap(),
        &berth_dir,
    ));
    let reference = runtime.block_on(security_scenario(
        &containerd.socket(),
        &containerd_logs,
        containerd.child.id(),
        &containerd_dir,
    ));
    assert_eq!(berth, reference, "berth (left) and containerd (right) differ");
    // What both answer, spelled out.
    let groups: Vec<&str> = berth.groups.split_whitespace().collect();
    assert!(groups.contains(&"1234") && groups.contains(&"5678"), "{groups:?}");
    assert_eq!((berth.readonly_path, berth.masked_path.as_str()), ((true, true), ""));
    assert_eq!((berth.shared, berth.slave), ((true, true), (true, false)));
    assert_eq!(berth.spdy.0, "got hi\n");
    assert_eq!(berth.spdy_unknown_protocol, "HTTP/1.1 403");
    assert_eq!(berth.tty_and_stderr, tonic::Code::InvalidArgument);
    assert_eq!((berth.port_forward, berth.port_forward_refused), (("ping\n".to_string(), true), true));
    assert_eq!(berth.exec_timeout, (tonic::Code::DeadlineExceeded, true));
}

#[test]
fn a_host_network_pod_shares_the_hosts_network_and_hostname() {
    let work = tempfile::tempdir().unwrap();
    let conf = cni_conf(work.path());
    let args = ["--cni-conf-dir", conf.to_str().unwrap()];
    let daemon = Daemon::start_in_netns_with_args(&args);
    let _pods = PodGuard(daemon.root());
    daemon.import_busybox("busybox:latest");
    let socket = daemon.run_dir().join("cri.sock");
    let host_net = std::fs::read_link(format!("/proc/{}/ns/net", daemon.pid().unwrap())).unwrap();
    let host_name = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut rt = RuntimeServiceClient::new(connect(&socket).await);
        let mut config = pod_config(&work.path().join("logs"));
        let host_network = cri::NamespaceOption {
            network: cri::NamespaceMode::Node as i32,
            pid: cri::NamespaceMode::Container as i32,
            ..Default::default()
        };
        let (pod_id, options) = run_pod_in_namespaces(&mut rt, &mut config, host_network).await;
        assert_eq!(options.network, cri::NamespaceMode::Node as i32);
        let c = rt
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: pod_id.clone(),
                config: Some(container_config("app", "exec sleep 1000", "app.log")),
                sandbox_config: Some(config),
            })
            .await
            .expect("CreateContainer")
            .into_inner()
            .container_id;
        rt.start_container(cri::StartContainerRequest { container_id: c.clone() })
            .await
            .expect("StartContainer");
        let net = exec(&mut rt, &c, &["readlink", "/proc/self/ns/net"]).await;
        assert_eq!(text(&net.stdout).trim(), host_net.to_str().unwrap(), "the daemon's (host's) network");
        let name = exec(&mut rt, &c, &["hostname"]).await;
        assert_eq!(text(&name.stdout).trim(), host_name, "the host's hostname");
        rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod_id.clone() })
            .await
            .expect("RemovePodSandbox");
        let all = rt.list_containers(cri::ListContainersRequest { filter: None }).await.unwrap().into_inner();
        assert!(all.containers.is_empty());
    });
}

#[test]
fn a_pod_sharing_its_process_namespace_sees_all_its_containers_processes() {
    let work = tempfile::tempdir().unwrap();
    let (_daemon, _pods, socket) = cri_daemon(work.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut rt = RuntimeServiceClient::new(connect(&socket).await);
        let mut config = pod_config(&work.path().join("logs"));
        // shareProcessNamespace: kubelet asks for POD on the pod and on each container.
        let shared = cri::NamespaceOption { pid: cri::NamespaceMode::Pod as i32, ..Default::default() };
        let (pod_id, options) = run_pod_in_namespaces(&mut rt, &mut config, shared.clone()).await;
        assert_eq!(options.pid, cri::NamespaceMode::Pod as i32);
        let mut ids = Vec::new();
        for (name, script) in [("a", "exec sleep 1001"), ("b", "exec sleep 1002")] {
            let mut c = container_config(name, script, &format!("{name}.log"));
            c.linux = Some(cri::LinuxContainerConfig {
                security_context: Some(cri::LinuxContainerSecurityContext {
                    namespace_options: Some(shared.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            });
            let id = rt
                .create_container(cri::CreateContainerRequest {
                    pod_sandbox_id: pod_id.clone(),
                    config: Some(c),
                    sandbox_config: Some(config.clone()),
                })
                .await
                .expect("CreateContainer")
                .into_inner()
                .container_id;
            rt.start_container(cri::StartContainerRequest { container_id: id.clone() })
                .await
                .expect("StartContainer");
            ids.push(id);
        }
        // From b: a's process, and the pause process as PID 1 (the pod's reaper).
        let seen = exec(&mut rt, &ids[1], &["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"]).await;
        let seen = text(&seen.stdout);
        assert!(seen.contains("sleep 1001") && seen.contains("sleep 1002"), "{seen}");
        let init = exec(&mut rt, &ids[0], &["sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline"]).await;
        assert!(text(&init.stdout).contains("pod-pause"), "PID 1: {:?}", text(&init.stdout));
        let own = exec(&mut rt, &ids[0], &["readlink", "/proc/self/ns/pid"]).await;
        let other = exec(&mut rt, &ids[1], &["readlink", "/proc/self/ns/pid"]).await;
        assert_eq!(text(&own.stdout), text(&other.stdout));
        let host = std::fs::read_link("/proc/self/ns/pid").unwrap();
        assert_ne!(text(&own.stdout).trim(), host.to_str().unwrap());
        rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod_id.clone() })
            .await
            .expect("RemovePodSandbox");
    });
}

/// What kubelet's clients could send wrong: SPDY frames that are not SPDY/3 end the session
/// with a GOAWAY (the server goes on), a mount propagation CRI does not define and a terminal
/// with stderr are refused.
#[test]
fn bad_streams_and_bad_mounts_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let (daemon, _pods, socket) = cri_daemon(work.path());
    let netns = daemon.pid().unwrap();
    let log_dir = work.path().join("logs");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut rt = RuntimeServiceClient::new(connect(&socket).await);
        let config = pod_config(&log_dir);
        let request =
            cri::RunPodSandboxRequest { config: Some(config.clone()), runtime_handler: String::new() };
        let pod_id = rt.run_pod_sandbox(request).await.expect("RunPodSandbox").into_inner().pod_sandbox_id;
        let mut bad = container_config("bad", "exec sleep 1000", "bad.log");
        bad.mounts = vec![cri::Mount {
            container_path: "/data".into(),
            host_path: work.path().join("data").display().to_string(),
            propagation: 7,
            ..Default::default()
        }];
        let create = |config: cri::ContainerConfig| cri::CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(config),
            sandbox_config: Some(pod_config(&log_dir)),
        };
        let refused = rt.create_container(create(bad)).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
        assert!(refused.message().contains("unknown propagation 7"), "{}", refused.message());

        let id = rt
            .create_container(create(container_config("app", "exec sleep 1000", "app.log")))
            .await
            .unwrap()
            .into_inner()
            .container_id;
        rt.start_container(cri::StartContainerRequest { container_id: id.clone() }).await.unwrap();

        // A control frame of SPDY version 2, then one cut short.
        let url = exec_stream_url(&mut rt, &id, "true").await;
        let answer = in_netns_of(netns, || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let garbage = [0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1, 0x80, 3, 0, 1, 0, 0];
            runtime.block_on(berth_tests::spdy::send_raw(&url, &garbage)).expect("upgrade")
        });
        assert!(berth_tests::spdy::has_goaway(&answer), "no GOAWAY: {answer:?}");
        // The URL is spent; a new one streams as usual.
        let url = exec_stream_url(&mut rt, &id, "cat; exit 3").await;
        let session = spdy_stream(netns, &url, Some(b"again\n"), true);
        assert_eq!(session.stdout, "again\n");
        assert_eq!(session.status["details"]["causes"][0]["message"], "3");
        let stale = in_netns_of(netns, || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime
                .block_on(berth_tests::spdy::upgrade(&url, &["v4.channel.k8s.io"]))
                .map(|_| ())
                .unwrap_err()
        });
        assert!(stale.starts_with("HTTP/1.1 404"), "{stale}");

        rt.stop_container(cri::StopContainerRequest { container_id: id.clone(), timeout: 0 }).await.unwrap();
        rt.remove_container(cri::RemoveContainerRequest { container_id: id }).await.unwrap();
        rt.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: pod_id.clone() }).await.unwrap();
        rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod_id }).await.unwrap();
    });
}

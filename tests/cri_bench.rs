//! `cri-bench`: the CRI driver of `benches/cri.sh` (crictl and critest cannot be in the
//! repository). Against one CRI socket, berth's or containerd's, it measures
//!
//!   pod-start   RunPodSandbox + CreateContainer + StartContainer of a `sleep` container, ms
//!   exec        ExecSync of `true` in a running container, ms
//!   50-pods     that many pods started at once (each: sandbox, container, start), wall ms,
//!               and how many failed
//!
//! and prints one line of JSON with the medians. Every pod it made is stopped and removed.
//!
//!   cri-bench SOCKET IMAGE [ROUNDS] [PODS]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

type Client = RuntimeServiceClient<Channel>;

fn pod_config(name: &str) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "bench".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        linux: Some(cri::LinuxPodSandboxConfig::default()),
        labels: HashMap::from([("bench".to_string(), "cri".to_string())]),
        ..Default::default()
    }
}

fn container_config(image: &str) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata { name: "sleeper".into(), attempt: 0 }),
        image: Some(cri::ImageSpec { image: image.into(), ..Default::default() }),
        command: vec!["sleep".into(), "3600".into()],
        ..Default::default()
    }
}

/// Sandbox, container, start: the pod's ID and its container's.
async fn start_pod(rt: &mut Client, name: &str, image: &str) -> Result<(String, String), tonic::Status> {
    let config = pod_config(name);
    let pod = rt
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await?
        .into_inner()
        .pod_sandbox_id;
    let container = rt
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(container_config(image)),
            sandbox_config: Some(config),
        })
        .await?
        .into_inner()
        .container_id;
    rt.start_container(cri::StartContainerRequest { container_id: container.clone() }).await?;
    Ok((pod, container))
}

async fn remove_pod(rt: &mut Client, pod: &str) {
    let _ = rt.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: pod.into() }).await;
    if let Err(e) = rt.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: pod.into() }).await {
        eprintln!("cri-bench: removing pod {pod}: {e}");
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: cri-bench SOCKET IMAGE [ROUNDS] [PODS]");
        std::process::exit(2);
    }
    let socket = PathBuf::from(&args[0]);
    let image = args[1].clone();
    let rounds: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10);
    let pods: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(50);
    let channel = berth_tests::cri::channel(&socket).await.unwrap_or_else(|e| {
        eprintln!("cri-bench: connecting to {}: {e}", socket.display());
        std::process::exit(1);
    });
    let mut rt = Client::new(channel.clone());

    let mut starts = Vec::new();
    let mut execs = Vec::new();
    for round in 0..rounds {
        let t = Instant::now();
        let (pod, container) =
            start_pod(&mut rt, &format!("start-{round}"), &image).await.unwrap_or_else(|e| {
                eprintln!("cri-bench: pod start: {e}");
                std::process::exit(1);
            });
        starts.push(ms(t));
        for _ in 0..5 {
            let t = Instant::now();
            let out = rt
                .exec_sync(cri::ExecSyncRequest {
                    container_id: container.clone(),
                    cmd: vec!["true".into()],
                    timeout: 10,
                })
                .await;
            match out {
                Ok(r) if r.get_ref().exit_code == 0 => execs.push(ms(t)),
                Ok(r) => eprintln!("cri-bench: ExecSync exit {}", r.get_ref().exit_code),
                Err(e) => eprintln!("cri-bench: ExecSync: {e}"),
            }
        }
        remove_pod(&mut rt, &pod).await;
    }

    let t = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..pods {
        let mut rt = Client::new(channel.clone());
        let image = image.clone();
        tasks.push(tokio::spawn(async move { start_pod(&mut rt, &format!("many-{i}"), &image).await }));
    }
    let mut started = Vec::new();
    let mut failures = 0;
    for task in tasks {
        match task.await.expect("a pod task panicked") {
            Ok((pod, _)) => started.push(pod),
            Err(e) => {
                failures += 1;
                eprintln!("cri-bench: concurrent pod start: {e}");
            }
        }
    }
    let wall = ms(t);
    // Pods that failed half-way are listed and removed too.
    let listed = rt
        .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
        .await
        .map(|r| r.into_inner().items.into_iter().map(|p| p.id).collect::<Vec<_>>())
        .unwrap_or_default();
    for pod in started.iter().chain(listed.iter().filter(|id| !started.contains(id))) {
        remove_pod(&mut rt, pod).await;
    }
    println!(
        "{}",
        serde_json::json!({
            "pod_start_ms": median(starts),
            "exec_ms": median(execs),
            "pods": pods,
            "pods_wall_ms": wall,
            "pods_failed": failures,
        })
    );
}

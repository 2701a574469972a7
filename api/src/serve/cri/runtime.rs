//! `RuntimeService`: each RPC answered by the function of its area (`pod`, `container`,
//! `streaming`) or here (version, status, runtime configuration). RPCs berth does not honour
//! answer `Unimplemented` with a message.

use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_server::RuntimeService;
use tonic::{Request, Response, Status};

use super::{container, pod, streaming, unimplemented, Cri, CRI_API_VERSION};

/// The runtime's name in `Version`.
const RUNTIME_NAME: &str = "berth";

#[tonic::async_trait]
impl RuntimeService for Cri {
    async fn version(
        &self,
        request: Request<cri::VersionRequest>,
    ) -> Result<Response<cri::VersionResponse>, Status> {
        let caller = self.caller("RuntimeService", "Version");
        runtime_version(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn run_pod_sandbox(
        &self,
        request: Request<cri::RunPodSandboxRequest>,
    ) -> Result<Response<cri::RunPodSandboxResponse>, Status> {
        let caller = self.caller("RuntimeService", "RunPodSandbox");
        pod::run(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn stop_pod_sandbox(
        &self,
        request: Request<cri::StopPodSandboxRequest>,
    ) -> Result<Response<cri::StopPodSandboxResponse>, Status> {
        let caller = self.caller("RuntimeService", "StopPodSandbox");
        pod::stop(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn remove_pod_sandbox(
        &self,
        request: Request<cri::RemovePodSandboxRequest>,
    ) -> Result<Response<cri::RemovePodSandboxResponse>, Status> {
        let caller = self.caller("RuntimeService", "RemovePodSandbox");
        pod::remove(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn pod_sandbox_status(
        &self,
        request: Request<cri::PodSandboxStatusRequest>,
    ) -> Result<Response<cri::PodSandboxStatusResponse>, Status> {
        let caller = self.caller("RuntimeService", "PodSandboxStatus");
        pod::status_of(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn list_pod_sandbox(
        &self,
        request: Request<cri::ListPodSandboxRequest>,
    ) -> Result<Response<cri::ListPodSandboxResponse>, Status> {
        let caller = self.caller("RuntimeService", "ListPodSandbox");
        pod::list(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn create_container(
        &self,
        request: Request<cri::CreateContainerRequest>,
    ) -> Result<Response<cri::CreateContainerResponse>, Status> {
        let caller = self.caller("RuntimeService", "CreateContainer");
        container::create(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn start_container(
        &self,
        request: Request<cri::StartContainerRequest>,
    ) -> Result<Response<cri::StartContainerResponse>, Status> {
        let caller = self.caller("RuntimeService", "StartContainer");
        container::start(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn stop_container(
        &self,
        request: Request<cri::StopContainerRequest>,
    ) -> Result<Response<cri::StopContainerResponse>, Status> {
        let caller = self.caller("RuntimeService", "StopContainer");
        container::stop(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn remove_container(
        &self,
        request: Request<cri::RemoveContainerRequest>,
    ) -> Result<Response<cri::RemoveContainerResponse>, Status> {
        let caller = self.caller("RuntimeService", "RemoveContainer");
        container::remove(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn list_containers(
        &self,
        request: Request<cri::ListContainersRequest>,
    ) -> Result<Response<cri::ListContainersResponse>, Status> {
        let caller = self.caller("RuntimeService", "ListContainers");
        container::list(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn container_status(
        &self,
        request: Request<cri::ContainerStatusRequest>,
    ) -> Result<Response<cri::ContainerStatusResponse>, Status> {
        let caller = self.caller("RuntimeService", "ContainerStatus");
        container::status_of(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn update_container_resources(
        &self,
        request: Request<cri::UpdateContainerResourcesRequest>,
    ) -> Result<Response<cri::UpdateContainerResourcesResponse>, Status> {
        let caller = self.caller("RuntimeService", "UpdateContainerResources");
        container::update_resources(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn reopen_container_log(
        &self,
        request: Request<cri::ReopenContainerLogRequest>,
    ) -> Result<Response<cri::ReopenContainerLogResponse>, Status> {
        let caller = self.caller("RuntimeService", "ReopenContainerLog");
        container::reopen_log(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn exec_sync(
        &self,
        request: Request<cri::ExecSyncRequest>,
    ) -> Result<Response<cri::ExecSyncResponse>, Status> {
        let caller = self.caller("RuntimeService", "ExecSync");
        container::exec_sync(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn exec(&self, request: Request<cri::ExecRequest>) -> Result<Response<cri::ExecResponse>, Status> {
        let caller = self.caller("RuntimeService", "Exec");
        streaming::exec(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn attach(
        &self,
        request: Request<cri::AttachRequest>,
    ) -> Result<Response<cri::AttachResponse>, Status> {
        let caller = self.caller("RuntimeService", "Attach");
        streaming::attach(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn port_forward(
        &self,
        request: Request<cri::PortForwardRequest>,
    ) -> Result<Response<cri::PortForwardResponse>, Status> {
        let caller = self.caller("RuntimeService", "PortForward");
        streaming::port_forward(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn container_stats(
        &self,
        request: Request<cri::ContainerStatsRequest>,
    ) -> Result<Response<cri::ContainerStatsResponse>, Status> {
        let caller = self.caller("RuntimeService", "ContainerStats");
        container::stats(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn list_container_stats(
        &self,
        request: Request<cri::ListContainerStatsRequest>,
    ) -> Result<Response<cri::ListContainerStatsResponse>, Status> {
        let caller = self.caller("RuntimeService", "ListContainerStats");
        container::list_stats(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn pod_sandbox_stats(
        &self,
        request: Request<cri::PodSandboxStatsRequest>,
    ) -> Result<Response<cri::PodSandboxStatsResponse>, Status> {
        let caller = self.caller("RuntimeService", "PodSandboxStats");
        pod::stats(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn list_pod_sandbox_stats(
        &self,
        request: Request<cri::ListPodSandboxStatsRequest>,
    ) -> Result<Response<cri::ListPodSandboxStatsResponse>, Status> {
        let caller = self.caller("RuntimeService", "ListPodSandboxStats");
        pod::list_stats(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn update_runtime_config(
        &self,
        request: Request<cri::UpdateRuntimeConfigRequest>,
    ) -> Result<Response<cri::UpdateRuntimeConfigResponse>, Status> {
        let caller = self.caller("RuntimeService", "UpdateRuntimeConfig");
        update_runtime_config(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn status(
        &self,
        request: Request<cri::StatusRequest>,
    ) -> Result<Response<cri::StatusResponse>, Status> {
        let caller = self.caller("RuntimeService", "Status");
        runtime_status(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn checkpoint_container(
        &self,
        request: Request<cri::CheckpointContainerRequest>,
    ) -> Result<Response<cri::CheckpointContainerResponse>, Status> {
        let caller = self.caller("RuntimeService", "CheckpointContainer");
        checkpoint_container(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn list_metric_descriptors(
        &self,
        request: Request<cri::ListMetricDescriptorsRequest>,
    ) -> Result<Response<cri::ListMetricDescriptorsResponse>, Status> {
        let caller = self.caller("RuntimeService", "ListMetricDescriptors");
        list_metric_descriptors(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn list_pod_sandbox_metrics(
        &self,
        request: Request<cri::ListPodSandboxMetricsRequest>,
    ) -> Result<Response<cri::ListPodSandboxMetricsResponse>, Status> {
        let caller = self.caller("RuntimeService", "ListPodSandboxMetrics");
        list_pod_sandbox_metrics(self, &caller, request.into_inner()).await.map(Response::new)
    }
    async fn runtime_config(
        &self,
        request: Request<cri::RuntimeConfigRequest>,
    ) -> Result<Response<cri::RuntimeConfigResponse>, Status> {
        let caller = self.caller("RuntimeService", "RuntimeConfig");
        runtime_config(self, &caller, request.into_inner()).await.map(Response::new)
    }
    type GetContainerEventsStream = std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<cri::ContainerEventResponse, Status>> + Send>,
    >;

    async fn get_container_events(
        &self,
        _request: Request<cri::GetEventsRequest>,
    ) -> Result<Response<Self::GetContainerEventsStream>, Status> {
        Err(unimplemented(
            "GetContainerEvents",
            "no container event stream yet (kubelet's evented PLEG is off by default)",
        ))
    }
}

async fn runtime_version(
    _cri: &Cri,
    _caller: &crate::serve::ops::Caller,
    _request: cri::VersionRequest,
) -> Result<cri::VersionResponse, Status> {
    Ok(cri::VersionResponse {
        // The version of the kubelet runtime API, as containerd answers it.
        version: "0.1.0".into(),
        runtime_name: RUNTIME_NAME.into(),
        runtime_version: env!("CARGO_PKG_VERSION").into(),
        runtime_api_version: CRI_API_VERSION.into(),
    })
}

/// `RuntimeReady` and `NetworkReady` (a CNI configuration is there).
async fn runtime_status(
    cri: &Cri,
    _caller: &crate::serve::ops::Caller,
    request: cri::StatusRequest,
) -> Result<cri::StatusResponse, Status> {
    let condition = |kind: &str, ready: Result<(), String>| cri::RuntimeCondition {
        r#type: kind.into(),
        status: ready.is_ok(),
        reason: if ready.is_ok() { String::new() } else { "NetworkPluginNotReady".into() },
        message: ready.err().unwrap_or_default(),
    };
    let network = cri.cni.ready().map_err(|e| e.to_string());
    let mut info = std::collections::HashMap::new();
    if request.verbose {
        let config = serde_json::json!({
            "cniConfDir": cri.cni.conf_dir,
            "cniBinDirs": cri.cni.bin_dirs,
            "root": cri.state.root,
            "runDir": cri.state.run_dir,
        });
        info.insert("config".to_string(), config.to_string());
    }
    Ok(cri::StatusResponse {
        status: Some(cri::RuntimeStatus {
            conditions: vec![condition("RuntimeReady", Ok(())), condition("NetworkReady", network)],
        }),
        info,
        runtime_handlers: vec![cri::RuntimeHandler {
            name: String::new(),
            features: Some(cri::RuntimeHandlerFeatures {
                recursive_read_only_mounts: false,
                user_namespaces: false,
            }),
        }],
        features: None,
    })
}

/// kubelet sends the node's pod CIDR; the CNI configuration in `--cni-conf-dir` decides the
/// pods' addresses, so it is only logged.
async fn update_runtime_config(
    _cri: &Cri,
    _caller: &crate::serve::ops::Caller,
    request: cri::UpdateRuntimeConfigRequest,
) -> Result<cri::UpdateRuntimeConfigResponse, Status> {
    if let Some(cidr) = request.runtime_config.and_then(|c| c.network_config).map(|n| n.pod_cidr) {
        tracing::info!(pod_cidr = %cidr, "CRI UpdateRuntimeConfig: the CNI configuration decides pod addresses");
    }
    Ok(cri::UpdateRuntimeConfigResponse {})
}

/// berth's containers are in cgroups it names itself (cgroupfs), not systemd units.
async fn runtime_config(
    _cri: &Cri,
    _caller: &crate::serve::ops::Caller,
    _request: cri::RuntimeConfigRequest,
) -> Result<cri::RuntimeConfigResponse, Status> {
    Ok(cri::RuntimeConfigResponse {
        linux: Some(cri::LinuxRuntimeConfiguration { cgroup_driver: cri::CgroupDriver::Cgroupfs as i32 }),
    })
}

async fn checkpoint_container(
    _cri: &Cri,
    _caller: &crate::serve::ops::Caller,
    _request: cri::CheckpointContainerRequest,
) -> Result<cri::CheckpointContainerResponse, Status> {
    Err(unimplemented("CheckpointContainer", "berth cannot checkpoint containers (no CRIU support)"))
}

async fn list_metric_descriptors(
    _cri: &Cri,
    _caller: &crate::serve::ops::Caller,
    _request: cri::ListMetricDescriptorsRequest,
) -> Result<cri::ListMetricDescriptorsResponse, Status> {
    Err(unimplemented("ListMetricDescriptors", "no Prometheus-style pod metrics yet (use ContainerStats)"))
}

async fn list_pod_sandbox_metrics(
    _cri: &Cri,
    _caller: &crate::serve::ops::Caller,
    _request: cri::ListPodSandboxMetricsRequest,
) -> Result<cri::ListPodSandboxMetricsResponse, Status> {
    Err(unimplemented("ListPodSandboxMetrics", "no Prometheus-style pod metrics yet (use ContainerStats)"))
}

//! The streaming RPCs (`Exec`, `Attach`, `PortForward`) answer a URL of a streaming server that
//! kubelet proxies (WebSocket `v4.channel.k8s.io` or SPDY). berth has no such server yet, so
//! they answer `Unimplemented`; `ExecSync` (container.rs) runs commands without one.

use k8s_cri::v1 as cri;
use tonic::Status;

use super::{unimplemented, Cri};
use crate::serve::ops::Caller;

const WHY: &str = "the CRI streaming server (WebSocket/SPDY) is not implemented yet; use ExecSync";

pub(super) async fn exec(
    _cri: &Cri,
    _caller: &Caller,
    _request: cri::ExecRequest,
) -> Result<cri::ExecResponse, Status> {
    Err(unimplemented("Exec", WHY))
}

pub(super) async fn attach(
    _cri: &Cri,
    _caller: &Caller,
    _request: cri::AttachRequest,
) -> Result<cri::AttachResponse, Status> {
    Err(unimplemented("Attach", WHY))
}

pub(super) async fn port_forward(
    _cri: &Cri,
    _caller: &Caller,
    _request: cri::PortForwardRequest,
) -> Result<cri::PortForwardResponse, Status> {
    Err(unimplemented("PortForward", WHY))
}

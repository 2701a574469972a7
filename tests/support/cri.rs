//! The CRI client the tests and `benches/cri.sh`'s driver share: k8s-cri's generated gRPC
//! client on a unix socket, as kubelet speaks it.

use std::path::Path;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

/// A gRPC channel to the CRI socket at `socket` (berth's or containerd's).
pub async fn channel(socket: &Path) -> Result<Channel, tonic::transport::Error> {
    let socket = socket.to_path_buf();
    // The URI is not dialled: every connection goes to the socket.
    Endpoint::try_from("http://[::]:50051")
        .expect("a valid URI")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(socket).await?)) }
        }))
        .await
}

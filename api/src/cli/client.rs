//! The CLI's side of the API: HTTP/1 over the daemon's unix socket or TCP, with hyper's client
//! connection API so that request and response bodies stream (an import of gigabytes is never
//! held in memory).

use std::fmt;
use std::io;
use std::path::PathBuf;

use berth_types::name::is_reserved_segment;
use berth_types::ErrorBody;
use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::AsyncRead;
use tokio_util::io::ReaderStream;

/// Where the daemon listens, from `-H` / `BERTH_HOST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
    /// `host:port`.
    Tcp(String),
}

/// The default `-H`.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

impl Host {
    /// Parses `unix:///path` or `tcp://host:port`.
    pub fn parse(s: &str) -> Result<Host, CliError> {
        let bad = |why: &str| {
            CliError::Usage(format!("invalid host {s:?}: {why} (use unix:///path or tcp://host:port)"))
        };
        if let Some(path) = s.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(bad("the socket path must be absolute"));
            }
            return Ok(Host::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = s.strip_prefix("tcp://") {
            let addr = addr.trim_end_matches('/');
            let Some((host, port)) = addr.rsplit_once(':') else { return Err(bad("no port")) };
            if host.is_empty() || host.contains('/') {
                return Err(bad("no host name"));
            }
            if port.parse::<u16>().is_err() {
                return Err(bad("the port is not a number"));
            }
            return Ok(Host::Tcp(addr.to_string()));
        }
        Err(bad("unknown scheme"))
    }
}

/// Why a command failed; `Display` is what the CLI prints.
#[derive(Debug)]
pub enum CliError {
    /// The daemon could not be reached.
    Connect { host: String, cause: io::Error },
    /// The daemon answered with an error.
    Daemon(String),
    /// Bad use of the CLI (a malformed `-H`, ...).
    Usage(String),
    /// Anything else on the client's side: a file that cannot be read, a broken stream.
    Local(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Connect { host, cause } if cause.kind() == io::ErrorKind::PermissionDenied => {
                write!(f, "permission denied while trying to connect to the berth daemon at {host}: {cause}")
            }
            CliError::Connect { host, .. } => {
                write!(f, "Cannot connect to the berth daemon at {host}. Is the berth daemon running?")
            }
            CliError::Daemon(m) => write!(f, "Error response from daemon: {m}"),
            CliError::Usage(m) | CliError::Local(m) => write!(f, "{m}"),
        }
    }
}

/// A request body: empty, a small buffer, or a stream.
pub type RequestBody = BoxBody<Bytes, io::Error>;

pub fn empty_body() -> RequestBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub fn json_body(value: &impl Serialize) -> RequestBody {
    let bytes = serde_json::to_vec(value).expect("request types serialise");
    Full::new(Bytes::from(bytes)).map_err(|never| match never {}).boxed()
}

/// Streams `reader` as the request body (chunked), in pieces of 256 KiB.
pub fn stream_body(reader: impl AsyncRead + Send + Sync + 'static) -> RequestBody {
    let stream = ReaderStream::with_capacity(reader, 256 * 1024).map_ok(Frame::data);
    BodyExt::boxed(StreamBody::new(stream))
}

/// Streams chunks as the request body; an `Err` chunk aborts the request.
pub fn channel_body(
    chunks: impl futures_util::Stream<Item = io::Result<Bytes>> + Send + Sync + 'static,
) -> RequestBody {
    BodyExt::boxed(StreamBody::new(chunks.map_ok(Frame::data)))
}

/// A connection target for the daemon's API.
#[derive(Debug, Clone)]
pub struct Client {
    host: Host,
    /// The `-H` value as given, for messages.
    shown: String,
    /// An API token (`BERTH_TOKEN`), sent as `Authorization: Bearer` over TCP; the unix socket
    /// needs none.
    token: Option<String>,
}

impl Client {
    pub fn new(host: &str) -> Result<Client, CliError> {
        let token = std::env::var("BERTH_TOKEN").ok().filter(|t| !t.trim().is_empty());
        Ok(Client { host: Host::parse(host)?, shown: host.to_string(), token })
    }

    /// Sends one request on a new connection and returns the response if it is a success;
    /// an error answer becomes [`CliError::Daemon`] with the daemon's message.
    pub async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        content_type: Option<&str>,
        body: RequestBody,
    ) -> Result<Response<Incoming>, CliError> {
        let response = self.send(method, path_and_query, content_type, body).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(error_response(response).await)
    }

    /// The daemon's address, for connections that are not plain requests (WebSockets).
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The `Authorization` header value for this host, if any.
    pub fn authorization(&self) -> Option<String> {
        match (&self.host, &self.token) {
            (Host::Tcp(_), Some(token)) => Some(format!("Bearer {}", token.trim())),
            _ => None,
        }
    }

    /// The `-H` value as given, for messages.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Sends one request on a new connection and returns whatever the daemon answered, errors
    /// included, for callers that read more than the message from an error answer.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        content_type: Option<&str>,
        body: RequestBody,
    ) -> Result<Response<Incoming>, CliError> {
        let connect_error = |e: io::Error| CliError::Connect { host: self.shown.clone(), cause: e };
        let (mut sender, authority) = match &self.host {
            Host::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path).await.map_err(connect_error)?;
                (handshake(stream).await?, "localhost".to_string())
            }
            Host::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr.as_str()).await.map_err(connect_error)?;
                let _ = stream.set_nodelay(true);
                (handshake(stream).await?, addr.clone())
            }
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(hyper::header::HOST, authority)
            .header(hyper::header::USER_AGENT, concat!("berth-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(ct) = content_type {
            request = request.header(hyper::header::CONTENT_TYPE, ct);
        }
        if let Some(auth) = self.authorization() {
            request = request.header(hyper::header::AUTHORIZATION, auth);
        }
        let request =
            request.body(body).map_err(|e| CliError::Local(format!("building the request: {e}")))?;
        sender.send_request(request).await.map_err(|e| {
            CliError::Local(format!("talking to the berth daemon at {}: {}", self.shown, error_chain(&e)))
        })
    }

    /// GET and decode a JSON answer.
    pub async fn get_json<T: DeserializeOwned>(&self, path_and_query: &str) -> Result<T, CliError> {
        let response = self.request(Method::GET, path_and_query, None, empty_body()).await?;
        read_json(response).await
    }

    /// Sends a request and decodes its JSON answer.
    pub async fn call_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        content_type: Option<&str>,
        body: RequestBody,
    ) -> Result<T, CliError> {
        let response = self.request(method, path_and_query, content_type, body).await?;
        read_json(response).await
    }
}

async fn handshake<S>(stream: S) -> Result<hyper::client::conn::http1::SendRequest<RequestBody>, CliError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| CliError::Local(format!("HTTP handshake with the berth daemon: {e}")))?;
    tokio::spawn(async move {
        // Errors surface through the request itself.
        let _ = connection.await;
    });
    Ok(sender)
}

/// The daemon's `{"message": ...}`, or the status line when the body is something else.
pub async fn error_response(response: Response<Incoming>) -> CliError {
    let status = response.status();
    let body = match response.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return CliError::Daemon(format!("{status} (reading the answer failed: {e})")),
    };
    match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(ErrorBody { message }) => CliError::Daemon(message),
        Err(_) if body.is_empty() => CliError::Daemon(status_text(status)),
        Err(_) => {
            CliError::Daemon(format!("{}: {}", status_text(status), String::from_utf8_lossy(&body).trim()))
        }
    }
}

fn status_text(status: StatusCode) -> String {
    format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""))
}

/// Reads a whole (small) JSON answer.
pub async fn read_json<T: DeserializeOwned>(response: Response<Incoming>) -> Result<T, CliError> {
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| CliError::Local(format!("reading the daemon's answer: {e}")))?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| CliError::Local(format!("decoding the daemon's answer: {e}")))
}

/// hyper's errors keep their cause (the I/O error) in `source()`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// Percent-encodes one path segment. `/`, `:` and `@` of references are encoded; a name equal
/// to an operation's path segment ([`is_reserved_segment`]: `prune`, `create`, ...) gets its
/// first letter encoded, so the daemon's router takes it for a name.
pub fn path_segment(name: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    let encoded = utf8_percent_encode(name, SEGMENT).to_string();
    if is_reserved_segment(&encoded) {
        return format!("%{:02X}{}", encoded.as_bytes()[0], &encoded[1..]);
    }
    encoded
}

/// Builds `?k=v&k2=v2` (empty when there are no pairs).
pub fn query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in pairs {
        s.append_pair(k, v);
        any = true;
    }
    if any {
        format!("?{}", s.finish())
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            Host::parse("unix:///run/berth/berth.sock").unwrap(),
            Host::Unix("/run/berth/berth.sock".into())
        );
        assert_eq!(Host::parse("tcp://127.0.0.1:7380").unwrap(), Host::Tcp("127.0.0.1:7380".into()));
        assert_eq!(Host::parse("tcp://localhost:1/").unwrap(), Host::Tcp("localhost:1".into()));
        for bad in
            ["", "127.0.0.1:7380", "http://x:1", "unix://relative", "tcp://host", "tcp://:80", "tcp://h:port"]
        {
            let e = Host::parse(bad).unwrap_err();
            assert!(e.to_string().starts_with("invalid host"), "{bad}: {e}");
        }
    }

    #[test]
    fn path_segments() {
        assert_eq!(path_segment("busybox"), "busybox");
        assert_eq!(path_segment("localhost:5000/a/b:v1.0"), "localhost%3A5000%2Fa%2Fb%3Av1.0");
        assert_eq!(path_segment("a@sha256:ab"), "a%40sha256%3Aab");
        assert_eq!(path_segment("save"), "%73ave");
        assert_eq!(path_segment("prune"), "%70rune");
        assert_eq!(path_segment("create"), "%63reate");
        assert_eq!(path_segment("json"), "%6Ason");
        assert_eq!(path_segment("pruned"), "pruned");
    }

    #[test]
    fn queries() {
        assert_eq!(query([]), "");
        assert_eq!(
            query([("change", "CMD [\"sh\"]"), ("change", "ENV A=b c")]),
            "?change=CMD+%5B%22sh%22%5D&change=ENV+A%3Db+c"
        );
    }
}

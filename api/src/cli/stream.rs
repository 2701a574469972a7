//! The CLI's side of `attach` and `exec`: a WebSocket to the daemon (framing described in the
//! daemon's `serve::routes::session`), the local terminal in raw mode, SIGWINCH as resize.

use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;

use berth_types::{CommandError, StreamControl};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::WebSocketStream;

use super::client::{error_chain, CliError, Client, Host};

/// Anything a WebSocket can run over: the daemon's unix socket or TCP.
pub trait Transport: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Transport for T {}

pub type Socket = WebSocketStream<Box<dyn Transport>>;

/// Why opening a stream failed: like any request, or a command that could not be executed
/// (with its exit code).
#[derive(Debug)]
pub enum OpenError {
    Cli(CliError),
    Command(CommandError),
}

impl From<CliError> for OpenError {
    fn from(e: CliError) -> Self {
        OpenError::Cli(e)
    }
}

/// Opens a WebSocket to `path_and_query` on the daemon. An answer other than the upgrade is
/// the daemon's error.
pub async fn connect(client: &Client, path_and_query: &str) -> Result<Socket, OpenError> {
    let connect_error = |e: std::io::Error| CliError::Connect { host: client.shown().to_string(), cause: e };
    let (stream, authority): (Box<dyn Transport>, String) = match client.host() {
        Host::Unix(path) => (
            Box::new(tokio::net::UnixStream::connect(path).await.map_err(connect_error)?),
            "localhost".into(),
        ),
        Host::Tcp(addr) => {
            let s = tokio::net::TcpStream::connect(addr.as_str()).await.map_err(connect_error)?;
            let _ = s.set_nodelay(true);
            (Box::new(s), addr.clone())
        }
    };
    let url = format!("ws://{authority}{path_and_query}");
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url
        .into_client_request()
        .map_err(|e| CliError::Local(format!("building the WebSocket request: {e}")))?;
    if let Some(auth) = client.authorization() {
        let value =
            auth.parse().map_err(|_| CliError::Local("BERTH_TOKEN is not a valid header value".into()))?;
        request.headers_mut().insert(hyper::header::AUTHORIZATION, value);
    }
    match tokio_tungstenite::client_async(request, stream).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let status = response.status();
            let body = response.into_body().unwrap_or_default();
            if let Ok(e) = serde_json::from_slice::<CommandError>(&body) {
                return Err(OpenError::Command(e));
            }
            let message = match serde_json::from_slice::<berth_types::ErrorBody>(&body) {
                Ok(e) => e.message,
                Err(_) => format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("")),
            };
            Err(CliError::Daemon(message).into())
        }
        Err(e) => Err(CliError::Local(format!(
            "opening a stream to the berth daemon at {}: {}",
            client.shown(),
            error_chain(&e)
        ))
        .into()),
    }
}

/// What to connect to the process.
pub struct Streams {
    /// The process has a tty: output is raw, and the local terminal (if stdin is one) goes raw.
    pub tty: bool,
    /// Forward stdin (then `close_stdin` at its end).
    pub stdin: bool,
}

/// Connects the local stdio to `socket` until the daemon reports the exit; returns the exit code.
pub async fn run_session(socket: Socket, streams: Streams) -> Result<i32, CliError> {
    let (mut sink, mut incoming) = socket.split();
    let raw = if streams.tty && streams.stdin && std::io::stdin().is_terminal() {
        Some(RawMode::enter()?)
    } else {
        None
    };

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Message>(16);
    // Terminal size now and on every SIGWINCH.
    if streams.tty {
        if let Some((cols, rows)) = terminal_size() {
            let _ = tx.send(control(&StreamControl::Resize { cols, rows })).await;
        }
        let tx = tx.clone();
        tokio::spawn(async move {
            let Ok(mut winch) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
            else {
                return;
            };
            while winch.recv().await.is_some() {
                if let Some((cols, rows)) = terminal_size() {
                    if tx.send(control(&StreamControl::Resize { cols, rows })).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
    // Stdin, read by a task of its own: it may block forever on a terminal.
    if streams.stdin {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(control(&StreamControl::CloseStdin)).await;
                        return;
                    }
                    Ok(n) => {
                        if tx.send(Message::Binary(buf[..n].to_vec().into())).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
    drop(tx);
    let sender = tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            if sink.send(message).await.is_err() {
                return;
            }
        }
    });

    let result = receive(&mut incoming, streams.tty).await;
    sender.abort();
    drop(raw);
    result
}

/// Writes the process's output until the exit message.
async fn receive(
    incoming: &mut futures_util::stream::SplitStream<Socket>,
    tty: bool,
) -> Result<i32, CliError> {
    let broken = |why: String| CliError::Local(format!("the stream from the berth daemon broke off: {why}"));
    while let Some(message) = incoming.next().await {
        match message.map_err(|e| broken(error_chain(&e)))? {
            Message::Binary(data) => {
                let (to_stderr, payload) = match (tty, data.first()) {
                    (true, _) => (false, &data[..]),
                    (false, Some(&2)) => (true, &data[1..]),
                    (false, Some(_)) => (false, &data[1..]),
                    (false, None) => continue,
                };
                write_out(to_stderr, payload)?;
            }
            Message::Text(text) => match serde_json::from_str::<StreamControl>(&text) {
                Ok(StreamControl::Exit { code }) => return Ok(code),
                Ok(StreamControl::Error { message }) => return Err(CliError::Daemon(message)),
                Ok(StreamControl::Dropped { bytes }) => tracing_free_warning(&format!(
                    "{bytes} bytes of output were dropped (reading too slowly)"
                )),
                Ok(_) | Err(_) => {}
            },
            Message::Close(_) => break,
            _ => {}
        }
    }
    Err(broken("closed before the process's exit was reported".into()))
}

fn write_out(to_stderr: bool, data: &[u8]) -> Result<(), CliError> {
    let result = if to_stderr {
        let mut e = std::io::stderr().lock();
        e.write_all(data).and_then(|()| e.flush())
    } else {
        let mut o = std::io::stdout().lock();
        o.write_all(data).and_then(|()| o.flush())
    };
    match result {
        // A closed pipe (`berth logs x | head`) is not worth an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::Local(format!("writing output: {e}")))
        }
        _ => Ok(()),
    }
}

fn tracing_free_warning(text: &str) {
    // In raw mode a bare \n does not return the carriage.
    eprint!("\r\nWARNING: {text}\r\n");
}

fn control(message: &StreamControl) -> Message {
    Message::Text(serde_json::to_string(message).expect("control messages serialise").into())
}

/// The local terminal's size (columns, rows), from stdout or stdin, whichever is a terminal.
pub fn terminal_size() -> Option<(u16, u16)> {
    for fd in [libc::STDOUT_FILENO, libc::STDIN_FILENO] {
        let mut size: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ writes one winsize into the struct we own.
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0 && size.ws_col > 0 {
            return Some((size.ws_col, size.ws_row));
        }
    }
    None
}

/// The terminal in raw mode (keys go to the container as typed, ^C included) until dropped.
struct RawMode {
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    fn enter() -> Result<RawMode, CliError> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd())
            .map_err(|e| CliError::Local(format!("reading the terminal mode: {e}")))?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)
            .map_err(|e| CliError::Local(format!("setting the terminal to raw mode: {e}")))?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let stdin = std::io::stdin();
        let _ = nix::sys::termios::tcsetattr(stdin.as_fd(), nix::sys::termios::SetArg::TCSANOW, &self.saved);
    }
}

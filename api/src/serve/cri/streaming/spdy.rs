//! Exec and attach over SPDY/3.1, as Kubernetes' remotecommand client (kubelet, crictl,
//! critest) speaks it after the HTTP upgrade: the client opens one SPDY stream per channel,
//! typed by its `streamtype` header (`error`, `stdin`, `stdout`, `stderr`, `resize`). Once the
//! request's streams are all open, the process's output goes out on stdout/stderr, stdin and
//! terminal sizes (a sequence of `{"Width":..,"Height":..}` JSON values) come in, and the end
//! is a Kubernetes `Status` JSON on the error stream (protocol `v4.channel.k8s.io`).
//! The frames themselves are read and written by `cri::spdy_framing`.

use std::time::Duration;

use berth_engine::container::{OutputStream, ProcessSession, SessionInput, SessionOutput};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::TerminalSize;
use crate::serve::cri::spdy_framing::{
    Decoder, Encoder, Frame, FrameError, RST_PROTOCOL_ERROR, RST_REFUSED_STREAM,
};

/// The remotecommand protocol served over SPDY (the client offers it in
/// `X-Stream-Protocol-Version`).
pub(super) const PROTOCOL: &str = "v4.channel.k8s.io";
/// How long the client has to open the request's streams (kubelet's default).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the end waits for the client to close the connection itself.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Output is sent in DATA frames of at most this size.
const DATA_CHUNK: usize = 32 * 1024;
/// A resize stream's unparsed bytes beyond this are dropped (a size is a few dozen bytes).
const MAX_RESIZE_BUFFER: usize = 4096;
/// GOAWAY status codes.
const GOAWAY_OK: u32 = 0;
const GOAWAY_PROTOCOL_ERROR: u32 = 1;

/// The channels a request asked for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Channels {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl Channels {
    /// The streams the client opens for these channels: error always, stderr only without a
    /// terminal (a terminal merges it into stdout), resize only with one.
    fn expected(&self) -> usize {
        1 + usize::from(self.stdin)
            + usize::from(self.stdout)
            + usize::from(self.stderr && !self.tty)
            + usize::from(self.tty)
    }

    fn wants(&self, kind: &str) -> bool {
        match kind {
            "error" => true,
            "stdin" => self.stdin,
            "stdout" => self.stdout,
            "stderr" => self.stderr && !self.tty,
            "resize" => self.tty,
            _ => false,
        }
    }
}

/// The client's streams, by type.
#[derive(Debug, Default)]
struct Streams {
    error: Option<u32>,
    stdin: Option<u32>,
    stdout: Option<u32>,
    stderr: Option<u32>,
    resize: Option<u32>,
    last: u32,
}

impl Streams {
    fn slot(&mut self, kind: &str) -> Option<&mut Option<u32>> {
        match kind {
            "error" => Some(&mut self.error),
            "stdin" => Some(&mut self.stdin),
            "stdout" => Some(&mut self.stdout),
            "stderr" => Some(&mut self.stderr),
            "resize" => Some(&mut self.resize),
            _ => None,
        }
    }

    fn open(&self) -> impl Iterator<Item = u32> {
        [self.error, self.stdin, self.stdout, self.stderr, self.resize].into_iter().flatten()
    }

    fn count(&self) -> usize {
        self.open().count()
    }
}

/// What handling a client frame leads to.
enum Next {
    Continue,
    /// The client went away or broke the protocol: the session ends without a status.
    Gone,
}

struct Connection<R, W> {
    reader: R,
    writer: W,
    buffer: Vec<u8>,
    decoder: Decoder,
    encoder: Encoder,
    channels: Channels,
    streams: Streams,
    input: SessionInput,
    resize: Vec<u8>,
}

/// Serves one exec or attach session on an upgraded connection until the process ends (its
/// status goes on the error stream) or the client goes away. Returns the exit code when known.
pub(super) async fn serve<IO>(io: IO, session: ProcessSession, channels: Channels) -> Option<i32>
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let ProcessSession { mut output, input, mut exit, .. } = session;
    let (reader, writer) = tokio::io::split(io);
    let mut connection = Connection {
        reader,
        writer,
        buffer: Vec::new(),
        decoder: Decoder::default(),
        encoder: Encoder::default(),
        channels,
        streams: Streams::default(),
        input,
        resize: Vec::new(),
    };

    // The client opens its streams first; output waits in the session until they are there.
    let deadline = tokio::time::sleep(STREAM_CREATION_TIMEOUT);
    tokio::pin!(deadline);
    while connection.streams.count() < channels.expected() {
        let frame = tokio::select! {
            frame = connection.next_frame() => frame,
            () = &mut deadline => {
                tracing::debug!("CRI stream: the client did not open its streams in time");
                return None;
            }
        };
        if let Next::Gone = connection.handle(frame).await {
            return None;
        }
    }

    loop {
        tokio::select! {
            frame = connection.next_frame() => {
                if let Next::Gone = connection.handle(frame).await {
                    return None;
                }
            }
            item = output.recv() => match item {
                Some(SessionOutput::Data { stream, data }) => {
                    let target = match stream {
                        OutputStream::Stderr => connection.streams.stderr,
                        _ => connection.streams.stdout,
                    };
                    if let Some(target) = target {
                        for chunk in data.chunks(DATA_CHUNK) {
                            let frame = Frame::Data { stream: target, fin: false, data: chunk.to_vec() };
                            if connection.send(&frame).await.is_err() {
                                return None;
                            }
                        }
                    }
                }
                Some(_) => {}
                None => break,
            },
        }
    }

    let code = (&mut exit).await.ok();
    let _ = connection.finish(code).await;
    code
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Connection<R, W> {
    /// The next frame from the client; `Ok(None)` when it closed the connection. Cancel-safe:
    /// bytes read stay in the buffer.
    async fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buffer)? {
                return Ok(Some(frame));
            }
            match self.reader.read_buf(&mut self.buffer).await {
                Ok(0) | Err(_) => return Ok(None),
                Ok(_) => {}
            }
        }
    }

    async fn send(&mut self, frame: &Frame) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        self.encoder.encode(frame, &mut bytes).map_err(std::io::Error::other)?;
        self.writer.write_all(&bytes).await?;
        self.writer.flush().await
    }

    async fn handle(&mut self, frame: Result<Option<Frame>, FrameError>) -> Next {
        let frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => return Next::Gone,
            Err(e) => {
                tracing::debug!(error = %e, "CRI stream: bad SPDY frame");
                let goaway = Frame::GoAway { last_stream: self.streams.last, status: GOAWAY_PROTOCOL_ERROR };
                let _ = self.send(&goaway).await;
                return Next::Gone;
            }
        };
        let sent = match frame {
            Frame::SynStream { stream, headers, .. } => self.open_stream(stream, &headers).await,
            Frame::Data { stream, fin, data } => self.data(stream, fin, data).await,
            Frame::RstStream { stream, .. } if Some(stream) == self.streams.stdin => {
                self.close_stdin().await;
                Ok(())
            }
            Frame::Ping { id } => self.send(&Frame::Ping { id }).await,
            Frame::GoAway { .. } => return Next::Gone,
            _ => Ok(()),
        };
        match sent {
            Ok(()) => Next::Continue,
            Err(_) => Next::Gone,
        }
    }

    /// Accepts a stream of a type the request wants, once; refuses any other.
    async fn open_stream(&mut self, stream: u32, headers: &[(String, String)]) -> std::io::Result<()> {
        if stream.is_multiple_of(2) || stream <= self.streams.last {
            // Client streams have odd, increasing IDs.
            return self.send(&Frame::RstStream { stream, status: RST_PROTOCOL_ERROR }).await;
        }
        self.streams.last = stream;
        let kind =
            headers.iter().find(|(name, _)| name == "streamtype").map(|(_, v)| v.as_str()).unwrap_or("");
        let wanted = self.channels.wants(kind);
        match self.streams.slot(kind) {
            Some(slot) if wanted && slot.is_none() => {
                *slot = Some(stream);
                self.send(&Frame::SynReply { stream, fin: false, headers: Vec::new() }).await
            }
            _ => {
                tracing::debug!(kind, "CRI stream: stream refused");
                self.send(&Frame::RstStream { stream, status: RST_REFUSED_STREAM }).await
            }
        }
    }

    async fn data(&mut self, stream: u32, fin: bool, data: Vec<u8>) -> std::io::Result<()> {
        let length = data.len() as u32;
        if Some(stream) == self.streams.stdin {
            if !data.is_empty() {
                if let Err(e) = self.input.write(data).await {
                    tracing::debug!(error = %e, "CRI stream: stdin not delivered");
                }
            }
            if fin {
                self.close_stdin().await;
            }
        } else if Some(stream) == self.streams.resize {
            self.resize.extend_from_slice(&data);
            for size in take_sizes(&mut self.resize) {
                if let Err(e) = self.input.resize(size.width, size.height).await {
                    tracing::debug!(error = %e, "CRI stream: resize not delivered");
                }
            }
        }
        // What was read may be sent again: SPDY/3.1 flow control, per stream and per session.
        if length > 0 && self.streams.open().any(|s| s == stream) {
            self.send(&Frame::WindowUpdate { stream, delta: length }).await?;
            self.send(&Frame::WindowUpdate { stream: 0, delta: length }).await?;
        }
        Ok(())
    }

    async fn close_stdin(&mut self) {
        if let Err(e) = self.input.close_stdin().await {
            tracing::debug!(error = %e, "CRI stream: stdin not closed");
        }
    }

    /// The end: the output streams are finished, the status goes on the error stream, the
    /// connection is told to go away, and the client is given a moment to close it.
    async fn finish(&mut self, code: Option<i32>) -> std::io::Result<()> {
        for stream in [self.streams.stdout, self.streams.stderr].into_iter().flatten() {
            self.send(&Frame::Data { stream, fin: true, data: Vec::new() }).await?;
        }
        if let Some(stream) = self.streams.error {
            let status = super::exit_status(code).to_string().into_bytes();
            self.send(&Frame::Data { stream, fin: true, data: status }).await?;
        }
        for stream in [self.streams.stdin, self.streams.resize].into_iter().flatten() {
            self.send(&Frame::Data { stream, fin: true, data: Vec::new() }).await?;
        }
        self.send(&Frame::GoAway { last_stream: self.streams.last, status: GOAWAY_OK }).await?;
        let _ =
            tokio::time::timeout(CLOSE_WAIT, async { while let Ok(Some(_)) = self.next_frame().await {} })
                .await;
        self.writer.shutdown().await
    }
}

/// Takes the whole JSON sizes off the front of a resize stream's bytes; a value cut in two
/// waits for its rest, and bytes that are not JSON are dropped.
fn take_sizes(buffer: &mut Vec<u8>) -> Vec<TerminalSize> {
    let mut sizes = Vec::new();
    let mut used = 0;
    let mut values = serde_json::Deserializer::from_slice(buffer).into_iter::<TerminalSize>();
    loop {
        match values.next() {
            Some(Ok(size)) => {
                sizes.push(size);
                used = values.byte_offset();
            }
            Some(Err(e)) if e.is_eof() && buffer.len() <= MAX_RESIZE_BUFFER => break,
            Some(Err(_)) | None => {
                used = buffer.len();
                break;
            }
        }
    }
    buffer.drain(..used);
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_taken_whole_and_in_order() {
        let mut buffer = b"{\"Width\":80,\"Height\":24}\n{\"Width\":100,".to_vec();
        let sizes = take_sizes(&mut buffer);
        assert_eq!(sizes.len(), 1);
        assert_eq!((sizes[0].width, sizes[0].height), (80, 24));
        buffer.extend_from_slice(b"\"Height\":40}\n");
        let sizes = take_sizes(&mut buffer);
        assert_eq!((sizes[0].width, sizes[0].height), (100, 40));
        assert!(buffer.iter().all(u8::is_ascii_whitespace));
        let mut garbage = b"not json".to_vec();
        assert!(take_sizes(&mut garbage).is_empty());
        assert!(garbage.is_empty());
    }

    #[test]
    fn the_expected_streams_follow_the_request() {
        let exec = Channels { stdin: false, stdout: true, stderr: true, tty: false };
        assert_eq!(exec.expected(), 3);
        let tty = Channels { stdin: true, stdout: true, stderr: true, tty: true };
        assert_eq!(tty.expected(), 4);
        assert!(tty.wants("resize") && !tty.wants("stderr") && !exec.wants("stdin") && !exec.wants("bogus"));
    }
}

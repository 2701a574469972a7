//! grpc-go's CRI clients (crictl, critest, kubelet of their generation) dial the socket's path
//! and send it as the HTTP/2 `:authority` (`/run/berth/cri.sock`), which is no authority: the
//! HTTP/2 layer under tonic refuses such a request (`RST_STREAM` `PROTOCOL_ERROR`), where Go's
//! own server (containerd's) lets it through. So every CRI connection is passed through
//! [`accept`], which copies the bytes both ways and re-encodes the client's header blocks with
//! a malformed `:authority` replaced by `localhost` (what newer clients send).

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::net::UnixStream;

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADERS: u8 = 0x1;
const FRAME_CONTINUATION: u8 = 0x9;
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;
/// The frame size every HTTP/2 peer accepts (SETTINGS_MAX_FRAME_SIZE's least value).
const MAX_FRAME: usize = 16_384;
/// What a malformed authority becomes.
const LOCALHOST: &[u8] = b"localhost";

/// The server's end of a connection whose client side is `conn`, mended as the module says.
pub(super) fn accept(conn: UnixStream) -> DuplexStream {
    let (server_end, ours) = tokio::io::duplex(256 * 1024);
    let (client_read, mut client_write) = conn.into_split();
    let (mut ours_read, ours_write) = tokio::io::split(ours);
    tokio::spawn(async move {
        let up = async {
            let result = mend(client_read, ours_write).await;
            if let Err(e) = result {
                tracing::debug!("CRI connection: {e}");
            }
        };
        let down = async {
            let _ = tokio::io::copy(&mut ours_read, &mut client_write).await;
            let _ = client_write.shutdown().await;
        };
        tokio::join!(up, down);
    });
    server_end
}

/// A header block being gathered (a HEADERS frame and its CONTINUATIONs).
struct Block {
    flags: u8,
    stream: [u8; 4],
    priority: Vec<u8>,
    fragment: Vec<u8>,
}

/// Copies the client's frames to `to`, header blocks re-encoded. Ends at the client's EOF
/// (then `to` is shut down) or at the first error.
async fn mend<R, W>(mut from: R, mut to: W) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let result = async {
        let mut preface = [0u8; 24];
        from.read_exact(&mut preface).await?;
        to.write_all(&preface).await?;
        if &preface != PREFACE {
            // Not HTTP/2 with prior knowledge: passed on as it is, for the server to refuse.
            tokio::io::copy(&mut from, &mut to).await?;
            return Ok(());
        }
        let mut decoder = loona_hpack::Decoder::new();
        let mut encoder = loona_hpack::Encoder::new();
        let mut pending: Option<Block> = None;
        loop {
            let mut head = [0u8; 9];
            match from.read_exact(&mut head).await {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                other => other?,
            };
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let (kind, flags) = (head[3], head[4]);
            let mut payload = vec![0u8; len];
            from.read_exact(&mut payload).await?;
            let block = match (kind, pending.take()) {
                (FRAME_HEADERS, None) => {
                    let (priority, fragment) = split_headers_payload(flags, &payload)?;
                    let stream = [head[5], head[6], head[7], head[8]];
                    Block { flags, stream, priority: priority.to_vec(), fragment: fragment.to_vec() }
                }
                (FRAME_CONTINUATION, Some(mut block)) => {
                    block.fragment.extend_from_slice(&payload);
                    block.flags |= flags & FLAG_END_HEADERS;
                    block
                }
                (_, Some(_)) => return Err(invalid("a frame inside a header block")),
                _ => {
                    to.write_all(&head).await?;
                    to.write_all(&payload).await?;
                    continue;
                }
            };
            if block.flags & FLAG_END_HEADERS == 0 {
                pending = Some(block);
                continue;
            }
            let headers = decoder.decode(&block.fragment).map_err(|e| invalid(&format!("HPACK: {e:?}")))?;
            let headers = mended(headers);
            let encoded = encoder.encode(headers.iter().map(|(n, v)| (&n[..], &v[..])));
            to.write_all(&frames(&block, &encoded)).await?;
        }
    }
    .await;
    let _ = to.shutdown().await;
    result
}

/// A HEADERS frame's payload without its padding: (priority fields, header block fragment).
fn split_headers_payload(flags: u8, payload: &[u8]) -> io::Result<(&[u8], &[u8])> {
    let mut body = payload;
    if flags & FLAG_PADDED != 0 {
        let (&pad, rest) = body.split_first().ok_or_else(|| invalid("empty padded HEADERS"))?;
        body =
            rest.get(..rest.len().wrapping_sub(pad as usize)).ok_or_else(|| invalid("padding too long"))?;
    }
    if flags & FLAG_PRIORITY != 0 {
        if body.len() < 5 {
            return Err(invalid("short HEADERS priority"));
        }
        return Ok(body.split_at(5));
    }
    Ok((&[], body))
}

/// The header list with a malformed `:authority` replaced by `localhost`.
fn mended(mut headers: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<u8>)> {
    for (name, value) in &mut headers {
        if name == b":authority" && axum::http::uri::Authority::try_from(&value[..]).is_err() {
            *value = LOCALHOST.to_vec();
        }
    }
    headers
}

/// A HEADERS frame (and CONTINUATIONs when the block is larger than a frame) carrying `encoded`.
fn frames(block: &Block, encoded: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded.len() + 32);
    let first_room = MAX_FRAME - block.priority.len();
    let (first, mut rest) = encoded.split_at(encoded.len().min(first_room));
    let mut push = |kind: u8, flags: u8, parts: &[&[u8]]| {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
        out.push(kind);
        out.push(flags);
        out.extend_from_slice(&block.stream);
        for part in parts {
            out.extend_from_slice(part);
        }
    };
    let end = if rest.is_empty() { FLAG_END_HEADERS } else { 0 };
    push(FRAME_HEADERS, (block.flags & (FLAG_END_STREAM | FLAG_PRIORITY)) | end, &[&block.priority, first]);
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(MAX_FRAME));
        rest = tail;
        let end = if rest.is_empty() { FLAG_END_HEADERS } else { 0 };
        push(FRAME_CONTINUATION, end, &[chunk]);
    }
    out
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("HTTP/2 from the client: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        out.push(kind);
        out.push(flags);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// Runs `input` through [`mend`] and decodes the header blocks that come out.
    async fn run(input: Vec<u8>) -> (Vec<u8>, Vec<Vec<(Vec<u8>, Vec<u8>)>>) {
        let mut out = Vec::new();
        mend(&input[..], &mut out).await.unwrap();
        assert_eq!(&out[..24], PREFACE);
        let mut decoder = loona_hpack::Decoder::new();
        let mut blocks = Vec::new();
        let mut others = Vec::new();
        let mut rest = &out[24..];
        let mut block = Vec::new();
        while !rest.is_empty() {
            let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
            let (kind, flags, payload) = (rest[3], rest[4], &rest[9..9 + len]);
            match kind {
                FRAME_HEADERS | FRAME_CONTINUATION => {
                    block.extend_from_slice(payload);
                    if flags & FLAG_END_HEADERS != 0 {
                        blocks.push(decoder.decode(&block).unwrap());
                        block.clear();
                    }
                }
                _ => others.extend_from_slice(&rest[..9 + len]),
            }
            rest = &rest[9 + len..];
        }
        (others, blocks)
    }

    #[tokio::test]
    async fn a_socket_path_authority_becomes_localhost_and_other_frames_pass_unchanged() {
        let mut client = loona_hpack::Encoder::new();
        let request = |authority: &'static [u8]| -> Vec<(&'static [u8], &'static [u8])> {
            vec![
                (b":method", b"POST"),
                (b":scheme", b"http"),
                (b":path", b"/runtime.v1.RuntimeService/Version"),
                (b":authority", authority),
                (b"content-type", b"application/grpc"),
            ]
        };
        let mut input = PREFACE.to_vec();
        let settings = frame(0x4, 0, 0, &[]);
        input.extend(&settings);
        // A block split over HEADERS (padded) and a CONTINUATION, then one indexed from the
        // client's dynamic table (the path's entry is reused).
        let first = client.encode(request(b"/run/berth/cri.sock"));
        let mut padded = vec![3u8];
        padded.extend_from_slice(&first[..10]);
        padded.extend_from_slice(&[0, 0, 0]);
        input.extend(frame(FRAME_HEADERS, FLAG_PADDED, 1, &padded));
        input.extend(frame(FRAME_CONTINUATION, FLAG_END_HEADERS, 1, &first[10..]));
        let data = frame(0x0, FLAG_END_STREAM, 1, b"\0\0\0\0\0");
        input.extend(&data);
        let second = client.encode(request(b"/run/berth/cri.sock"));
        input.extend(frame(FRAME_HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, 3, &second));
        let third = client.encode(request(b"localhost:1234"));
        input.extend(frame(FRAME_HEADERS, FLAG_END_HEADERS, 5, &third));

        let (others, blocks) = run(input).await;
        assert_eq!(others, [settings, data].concat());
        assert_eq!(blocks.len(), 3);
        let authority = |block: &Vec<(Vec<u8>, Vec<u8>)>| {
            block.iter().find(|(n, _)| n == b":authority").map(|(_, v)| v.clone()).unwrap()
        };
        assert_eq!(authority(&blocks[0]), b"localhost");
        assert_eq!(authority(&blocks[1]), b"localhost");
        assert_eq!(authority(&blocks[2]), b"localhost:1234");
        assert!(blocks[1].iter().any(|(n, v)| n == b":path" && v == b"/runtime.v1.RuntimeService/Version"));
    }

    #[tokio::test]
    async fn a_frame_inside_a_header_block_is_refused() {
        let mut client = loona_hpack::Encoder::new();
        let block = client.encode([(&b":authority"[..], &b"/x.sock"[..])]);
        let mut input = PREFACE.to_vec();
        input.extend(frame(FRAME_HEADERS, 0, 1, &block));
        input.extend(frame(0x0, 0, 1, b"x"));
        let mut out = Vec::new();
        let err = mend(&input[..], &mut out).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_large_block_is_split_into_continuations() {
        let block =
            Block { flags: FLAG_END_STREAM, stream: [0, 0, 0, 1], priority: vec![], fragment: vec![] };
        let encoded = vec![7u8; MAX_FRAME + 10];
        let out = frames(&block, &encoded);
        assert_eq!(out.len(), encoded.len() + 18);
        assert_eq!((out[3], out[4]), (FRAME_HEADERS, FLAG_END_STREAM));
        let second = 9 + MAX_FRAME;
        assert_eq!((out[second + 3], out[second + 4]), (FRAME_CONTINUATION, FLAG_END_HEADERS));
    }
}

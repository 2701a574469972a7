//! SPDY/3.1 framing, for the CRI streaming server. kubelet, crictl and critest reach a
//! container's exec, attach and port forward through Kubernetes' "remotecommand" client, which
//! speaks SPDY/3.1 after an HTTP upgrade. SPDY was retired in 2016 and crates.io has no kept
//! implementation of it, so the frames that protocol uses are read and written here: control
//! frames (SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE)
//! and DATA frames, with SPDY/3's header blocks (name/value pairs compressed by one zlib stream
//! per direction, primed with the dictionary the SPDY/3 specification gives).
//!
//! Bad input is an error, never a panic: lengths are checked against what was received, and a
//! header block may not grow past [`MAX_HEADER_BLOCK`] once decompressed.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// SPDY/3's version number, carried by every control frame.
const VERSION: u16 = 3;
/// A frame's length field has 24 bits.
pub(crate) const MAX_FRAME_LENGTH: usize = 0xFF_FFFF;
/// The largest decompressed header block accepted (remotecommand's blocks are a few bytes).
pub(crate) const MAX_HEADER_BLOCK: usize = 64 * 1024;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// FLAG_FIN: the sender's last frame on the stream.
const FLAG_FIN: u8 = 0x01;

/// RST_STREAM status codes used by the streaming server.
pub(crate) const RST_PROTOCOL_ERROR: u32 = 1;
pub(crate) const RST_REFUSED_STREAM: u32 = 3;

/// A stream's header name/value pairs (names are lower case in SPDY/3).
pub(crate) type Headers = Vec<(String, String)>;

/// One SPDY/3.1 frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    SynStream {
        stream: u32,
        fin: bool,
        headers: Headers,
    },
    SynReply {
        stream: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream: u32,
        status: u32,
    },
    /// The settings' values are not used by the streaming server.
    Settings,
    Ping {
        id: u32,
    },
    GoAway {
        last_stream: u32,
        status: u32,
    },
    Headers {
        stream: u32,
        fin: bool,
        headers: Headers,
    },
    WindowUpdate {
        stream: u32,
        delta: u32,
    },
    Data {
        stream: u32,
        fin: bool,
        data: Vec<u8>,
    },
    /// A control frame of a type SPDY/3.1 does not define: the specification says to ignore it.
    Unknown {
        kind: u16,
    },
}

/// Why a frame could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("SPDY version {0} is not served (only 3)")]
    Version(u16),
    #[error("SPDY frame of type {kind} has a bad length {length}")]
    Length { kind: u16, length: usize },
    #[error("SPDY header block: {0}")]
    HeaderBlock(String),
    #[error("SPDY frame too large: {0} bytes")]
    TooLarge(usize),
}

/// Reads frames from a peer: keeps the peer's header decompression state.
pub(crate) struct Decoder {
    inflate: Decompress,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder { inflate: Decompress::new(true) }
    }
}

impl Decoder {
    /// Takes one whole frame off the front of `buffer`; `Ok(None)` when more bytes are needed.
    pub(crate) fn decode(&mut self, buffer: &mut Vec<u8>) -> Result<Option<Frame>, FrameError> {
        if buffer.len() < 8 {
            return Ok(None);
        }
        let length = u32::from_be_bytes([0, buffer[5], buffer[6], buffer[7]]) as usize;
        if buffer.len() < 8 + length {
            return Ok(None);
        }
        let frame: Vec<u8> = buffer.drain(..8 + length).collect();
        let flags = frame[4];
        let payload = &frame[8..];
        let word = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        if word & 0x8000_0000 == 0 {
            return Ok(Some(Frame::Data {
                stream: word,
                fin: flags & FLAG_FIN != 0,
                data: payload.to_vec(),
            }));
        }
        let version = ((word >> 16) & 0x7FFF) as u16;
        if version != VERSION {
            return Err(FrameError::Version(version));
        }
        let kind = (word & 0xFFFF) as u16;
        let fin = flags & FLAG_FIN != 0;
        let bad_length = || FrameError::Length { kind, length };
        let word_at = |at: usize| -> Result<u32, FrameError> {
            payload
                .get(at..at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(bad_length)
        };
        let frame = match kind {
            SYN_STREAM => {
                // stream ID, associated stream ID, priority and slot, then the header block.
                let stream = word_at(0)? & 0x7FFF_FFFF;
                let block = payload.get(10..).ok_or_else(bad_length)?;
                Frame::SynStream { stream, fin, headers: self.headers(block)? }
            }
            SYN_REPLY | HEADERS => {
                let stream = word_at(0)? & 0x7FFF_FFFF;
                let headers = self.headers(&payload[4..])?;
                if kind == SYN_REPLY {
                    Frame::SynReply { stream, fin, headers }
                } else {
                    Frame::Headers { stream, fin, headers }
                }
            }
            RST_STREAM if length == 8 => {
                Frame::RstStream { stream: word_at(0)? & 0x7FFF_FFFF, status: word_at(4)? }
            }
            SETTINGS => {
                let entries = word_at(0)? as usize;
                if entries.checked_mul(8).and_then(|n| n.checked_add(4)) != Some(length) {
                    return Err(bad_length());
                }
                Frame::Settings
            }
            PING if length == 4 => Frame::Ping { id: word_at(0)? },
            GOAWAY if length == 8 => {
                Frame::GoAway { last_stream: word_at(0)? & 0x7FFF_FFFF, status: word_at(4)? }
            }
            WINDOW_UPDATE if length == 8 => {
                Frame::WindowUpdate { stream: word_at(0)? & 0x7FFF_FFFF, delta: word_at(4)? & 0x7FFF_FFFF }
            }
            RST_STREAM | PING | GOAWAY | WINDOW_UPDATE => return Err(bad_length()),
            kind => Frame::Unknown { kind },
        };
        Ok(Some(frame))
    }

    /// Decompresses and parses one header block.
    fn headers(&mut self, block: &[u8]) -> Result<Headers, FrameError> {
        let plain = self.inflate(block)?;
        parse_header_block(&plain)
    }

    fn inflate(&mut self, input: &[u8]) -> Result<Vec<u8>, FrameError> {
        let error = |e: String| FrameError::HeaderBlock(e);
        let mut out = Vec::with_capacity(input.len() * 4 + 64);
        let mut consumed = 0;
        loop {
            let (before_in, before_out) = (self.inflate.total_in(), self.inflate.total_out());
            let result = self.inflate.decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync);
            consumed += (self.inflate.total_in() - before_in) as usize;
            let produced = self.inflate.total_out() - before_out;
            match result {
                Ok(Status::StreamEnd) => return Ok(out),
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate.set_dictionary(DICTIONARY).map_err(|e| error(e.to_string()))?;
                    continue;
                }
                Err(e) => return Err(error(e.to_string())),
            }
            if consumed == input.len() && out.len() < out.capacity() {
                return Ok(out);
            }
            if out.len() == out.capacity() {
                if out.len() >= MAX_HEADER_BLOCK {
                    return Err(error(format!("larger than {MAX_HEADER_BLOCK} bytes")));
                }
                out.reserve(out.len().max(256));
            } else if produced == 0 && consumed < input.len() && self.inflate.total_in() == before_in {
                return Err(error("the compressed block does not decode".into()));
            }
        }
    }
}

/// Writes frames to a peer: keeps this side's header compression state.
pub(crate) struct Encoder {
    deflate: Compress,
}

impl Default for Encoder {
    fn default() -> Self {
        let mut deflate = Compress::new(Compression::default(), true);
        // Setting the dictionary of a new zlib stream cannot fail.
        let _ = deflate.set_dictionary(DICTIONARY);
        Encoder { deflate }
    }
}

impl Encoder {
    /// Appends `frame` to `out`.
    pub(crate) fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let fin = |fin: bool| if fin { FLAG_FIN } else { 0 };
        let (kind, flags, payload) = match frame {
            Frame::Data { stream, fin: f, data } => {
                if data.len() > MAX_FRAME_LENGTH {
                    return Err(FrameError::TooLarge(data.len()));
                }
                out.extend_from_slice(&(stream & 0x7FFF_FFFF).to_be_bytes());
                push_length(out, fin(*f), data.len());
                out.extend_from_slice(data);
                return Ok(());
            }
            Frame::SynStream { stream, fin: f, headers } => {
                let mut payload = Vec::new();
                payload.extend_from_slice(&(stream & 0x7FFF_FFFF).to_be_bytes());
                payload.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
                payload.extend(self.deflate(&header_block(headers)?)?);
                (SYN_STREAM, fin(*f), payload)
            }
            Frame::SynReply { stream, fin: f, headers } | Frame::Headers { stream, fin: f, headers } => {
                let mut payload = (stream & 0x7FFF_FFFF).to_be_bytes().to_vec();
                payload.extend(self.deflate(&header_block(headers)?)?);
                (if matches!(frame, Frame::SynReply { .. }) { SYN_REPLY } else { HEADERS }, fin(*f), payload)
            }
            Frame::RstStream { stream, status } => (RST_STREAM, 0, two_words(*stream, *status)),
            Frame::Settings => (SETTINGS, 0, vec![0, 0, 0, 0]),
            Frame::Ping { id } => (PING, 0, id.to_be_bytes().to_vec()),
            Frame::GoAway { last_stream, status } => (GOAWAY, 0, two_words(*last_stream, *status)),
            Frame::WindowUpdate { stream, delta } => (WINDOW_UPDATE, 0, two_words(*stream, *delta)),
            Frame::Unknown { kind } => (*kind, 0, Vec::new()),
        };
        if payload.len() > MAX_FRAME_LENGTH {
            return Err(FrameError::TooLarge(payload.len()));
        }
        out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
        out.extend_from_slice(&kind.to_be_bytes());
        push_length(out, flags, payload.len());
        out.extend_from_slice(&payload);
        Ok(())
    }

    fn deflate(&mut self, input: &[u8]) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::with_capacity(input.len() + 64);
        let mut consumed = 0;
        loop {
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(&input[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|e| FrameError::HeaderBlock(e.to_string()))?;
            consumed += (self.deflate.total_in() - before) as usize;
            if consumed == input.len() && out.len() < out.capacity() {
                return Ok(out);
            }
            out.reserve(out.capacity().max(64));
        }
    }
}

fn push_length(out: &mut Vec<u8>, flags: u8, length: usize) {
    let length = (length as u32).to_be_bytes();
    out.extend_from_slice(&[flags, length[1], length[2], length[3]]);
}

fn two_words(a: u32, b: u32) -> Vec<u8> {
    let mut payload = (a & 0x7FFF_FFFF).to_be_bytes().to_vec();
    payload.extend_from_slice(&b.to_be_bytes());
    payload
}

/// A header block before compression: the number of pairs, then each name and value, all
/// lengths 32-bit big-endian.
fn header_block(headers: &Headers) -> Result<Vec<u8>, FrameError> {
    let mut block = (headers.len() as u32).to_be_bytes().to_vec();
    for (name, value) in headers {
        for text in [name.to_ascii_lowercase().as_str(), value.as_str()] {
            block.extend_from_slice(&(text.len() as u32).to_be_bytes());
            block.extend_from_slice(text.as_bytes());
        }
    }
    if block.len() > MAX_HEADER_BLOCK {
        return Err(FrameError::HeaderBlock(format!("larger than {MAX_HEADER_BLOCK} bytes")));
    }
    Ok(block)
}

fn parse_header_block(block: &[u8]) -> Result<Headers, FrameError> {
    let mut rest = block;
    let count = take_word(&mut rest)?;
    // Each pair takes at least 8 bytes: a count larger than that is a lie, not an allocation.
    if count > rest.len() / 8 {
        return Err(FrameError::HeaderBlock("more pairs counted than present".into()));
    }
    let mut headers = Vec::with_capacity(count);
    for _ in 0..count {
        let name = take_text(&mut rest)?;
        let value = take_text(&mut rest)?;
        headers.push((name.to_ascii_lowercase(), value));
    }
    if !rest.is_empty() {
        return Err(FrameError::HeaderBlock("bytes after the last pair".into()));
    }
    Ok(headers)
}

fn take_word(rest: &mut &[u8]) -> Result<usize, FrameError> {
    let (head, tail) = rest.split_at_checked(4).ok_or_else(|| FrameError::HeaderBlock("truncated".into()))?;
    *rest = tail;
    Ok(u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize)
}

fn take_text(rest: &mut &[u8]) -> Result<String, FrameError> {
    let length = take_word(rest)?;
    let (head, tail) =
        rest.split_at_checked(length).ok_or_else(|| FrameError::HeaderBlock("truncated".into()))?;
    *rest = tail;
    String::from_utf8(head.to_vec())
        .map_err(|_| FrameError::HeaderBlock("a name or value is not UTF-8".into()))
}

/// The zlib dictionary of SPDY/3's header compression, as its specification defines it.
const DICTIONARY: &[u8] = b"\
    \x00\x00\x00\x07options\x00\x00\x00\x04head\x00\x00\x00\x04post\x00\x00\x00\x03put\x00\x00\x00\
    \x06delete\x00\x00\x00\x05trace\x00\x00\x00\x06accept\x00\x00\x00\x0eaccept-charset\x00\x00\x00\
    \x0faccept-encoding\x00\x00\x00\x0faccept-language\x00\x00\x00\x0daccept-ranges\x00\x00\x00\x03\
    age\x00\x00\x00\x05allow\x00\x00\x00\x0dauthorization\x00\x00\x00\x0dcache-control\x00\x00\x00\
    \x0aconnection\x00\x00\x00\x0ccontent-base\x00\x00\x00\x10content-encoding\x00\x00\x00\x10co\
    ntent-language\x00\x00\x00\x0econtent-length\x00\x00\x00\x10content-location\x00\x00\x00\x0b\
    content-md5\x00\x00\x00\x0dcontent-range\x00\x00\x00\x0ccontent-type\x00\x00\x00\x04date\x00\
    \x00\x00\x04etag\x00\x00\x00\x06expect\x00\x00\x00\x07expires\x00\x00\x00\x04from\x00\x00\x00\
    \x04host\x00\x00\x00\x08if-match\x00\x00\x00\x11if-modified-since\x00\x00\x00\x0dif-none-mat\
    ch\x00\x00\x00\x08if-range\x00\x00\x00\x13if-unmodified-since\x00\x00\x00\x0dlast-modified\x00\
    \x00\x00\x08location\x00\x00\x00\x0cmax-forwards\x00\x00\x00\x06pragma\x00\x00\x00\x12proxy-\
    authenticate\x00\x00\x00\x13proxy-authorization\x00\x00\x00\x05range\x00\x00\x00\x07referer\x00\
    \x00\x00\x0bretry-after\x00\x00\x00\x06server\x00\x00\x00\x02te\x00\x00\x00\x07trailer\x00\x00\
    \x00\x11transfer-encoding\x00\x00\x00\x07upgrade\x00\x00\x00\x0auser-agent\x00\x00\x00\x04va\
    ry\x00\x00\x00\x03via\x00\x00\x00\x07warning\x00\x00\x00\x10www-authenticate\x00\x00\x00\x06\
    method\x00\x00\x00\x03get\x00\x00\x00\x06status\x00\x00\x00\x06200 OK\x00\x00\x00\x07version\
    \x00\x00\x00\x08HTTP/1.1\x00\x00\x00\x03url\x00\x00\x00\x06public\x00\x00\x00\x0aset-cookie\x00\
    \x00\x00\x0akeep-alive\x00\x00\x00\x06origin100101201202205206300302303304305306307402405406\
    407408409410411412413414415416417502504505203 Non-Authoritative Information204 No Content301\
    \x20Moved Permanently400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal S\
    erver Error501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oc\
    t Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/j\
    pg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatem\
    ax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    /// Every frame kind survives encoding and decoding; header blocks share one zlib stream
    /// per direction, so several in a row must decode in order.
    #[test]
    fn frames_survive_a_round_trip() {
        let frames = vec![
            Frame::SynStream { stream: 1, fin: false, headers: headers(&[("streamtype", "error")]) },
            Frame::SynStream {
                stream: 3,
                fin: true,
                headers: headers(&[("streamtype", "stdout"), ("x", "a\0b")]),
            },
            Frame::SynReply { stream: 1, fin: false, headers: Vec::new() },
            Frame::Headers { stream: 3, fin: true, headers: headers(&[("status", "200")]) },
            Frame::Data { stream: 3, fin: true, data: b"hello".to_vec() },
            Frame::Data { stream: 5, fin: false, data: Vec::new() },
            Frame::RstStream { stream: 7, status: RST_REFUSED_STREAM },
            Frame::Settings,
            Frame::Ping { id: 2 },
            Frame::GoAway { last_stream: 9, status: 0 },
            Frame::WindowUpdate { stream: 0, delta: 65536 },
            Frame::Unknown { kind: 42 },
        ];
        let mut encoder = Encoder::default();
        let mut bytes = Vec::new();
        for frame in &frames {
            encoder.encode(frame, &mut bytes).unwrap();
        }
        let mut decoder = Decoder::default();
        let mut decoded = Vec::new();
        while let Some(frame) = decoder.decode(&mut bytes).unwrap() {
            decoded.push(frame);
        }
        assert_eq!(decoded, frames);
        assert!(bytes.is_empty());
    }

    /// A frame cut anywhere is "not yet", and whole once its last byte is there.
    #[test]
    fn a_partial_frame_waits_for_the_rest() {
        let mut bytes = Vec::new();
        let frame = Frame::SynStream { stream: 1, fin: false, headers: headers(&[("streamtype", "stdin")]) };
        Encoder::default().encode(&frame, &mut bytes).unwrap();
        for cut in 0..bytes.len() {
            let mut part = bytes[..cut].to_vec();
            assert_eq!(Decoder::default().decode(&mut part), Ok(None), "cut at {cut}");
            assert_eq!(part.len(), cut, "nothing is consumed before the frame is whole");
        }
        assert_eq!(Decoder::default().decode(&mut bytes), Ok(Some(frame)));
    }

    /// The header blocks are primed with SPDY/3's dictionary: the zlib header names it by its
    /// Adler-32 checksum, which the specification's dictionary has as 0xe3c6a7c2.
    #[test]
    fn header_blocks_name_spdy3s_dictionary() {
        let mut bytes = Vec::new();
        Encoder::default()
            .encode(&Frame::SynReply { stream: 1, fin: false, headers: Vec::new() }, &mut bytes)
            .unwrap();
        // 8 bytes of frame header, 4 of stream ID, then zlib's CMF and FLG (FDICT set) and DICTID.
        assert_eq!(bytes[13] & 0x20, 0x20);
        assert_eq!(u32::from_be_bytes([bytes[14], bytes[15], bytes[16], bytes[17]]), 0xe3c6_a7c2);
        assert_eq!(DICTIONARY.len(), 1423);
    }

    #[test]
    fn bad_frames_are_errors() {
        let control = |kind: u16, version: u16, payload: &[u8]| {
            let mut bytes = (0x8000 | version).to_be_bytes().to_vec();
            bytes.extend_from_slice(&kind.to_be_bytes());
            let length = (payload.len() as u32).to_be_bytes();
            bytes.extend_from_slice(&[0, length[1], length[2], length[3]]);
            bytes.extend_from_slice(payload);
            Decoder::default().decode(&mut bytes)
        };
        assert_eq!(control(PING, 2, &[0, 0, 0, 1]), Err(FrameError::Version(2)));
        assert!(matches!(control(PING, 3, &[0, 0, 1]), Err(FrameError::Length { .. })));
        assert!(matches!(control(RST_STREAM, 3, &[0, 0, 0, 1]), Err(FrameError::Length { .. })));
        assert!(matches!(control(SETTINGS, 3, &[0, 0, 0, 9]), Err(FrameError::Length { .. })));
        assert!(matches!(control(SETTINGS, 3, &[0xFF, 0xFF, 0xFF, 0xFF]), Err(FrameError::Length { .. })));
        assert!(matches!(control(SYN_STREAM, 3, &[0, 0, 0, 1]), Err(FrameError::Length { .. })));
        assert!(matches!(control(SYN_REPLY, 3, &[0, 0]), Err(FrameError::Length { .. })));
        // A header block that is not zlib at all.
        assert!(matches!(
            control(SYN_STREAM, 3, &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5]),
            Err(FrameError::HeaderBlock(_))
        ));
        assert_eq!(control(SETTINGS, 3, &[0, 0, 0, 0]), Ok(Some(Frame::Settings)));
    }

    /// Well-compressed header blocks whose contents lie about their lengths are refused.
    #[test]
    fn lying_header_blocks_are_errors() {
        let compress = |plain: &[u8]| {
            let mut encoder = Encoder::default();
            let mut bytes = vec![0x80, 3, 0, SYN_REPLY as u8, 0, 0, 0, 0, 0, 0, 0, 1];
            bytes.extend(encoder.deflate(plain).unwrap());
            let length = ((bytes.len() - 8) as u32).to_be_bytes();
            bytes[5..8].copy_from_slice(&length[1..]);
            Decoder::default().decode(&mut bytes)
        };
        let huge_count = [0x7F, 0xFF, 0xFF, 0xFF];
        assert!(matches!(compress(&huge_count), Err(FrameError::HeaderBlock(_))));
        let long_name = [0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF, b'a', 0, 0, 0, 0];
        assert!(matches!(compress(&long_name), Err(FrameError::HeaderBlock(_))));
        let trailing = [0, 0, 0, 0, 9];
        assert!(matches!(compress(&trailing), Err(FrameError::HeaderBlock(_))));
        let not_utf8 = [0, 0, 0, 1, 0, 0, 0, 1, 0xFF, 0, 0, 0, 0];
        assert!(matches!(compress(&not_utf8), Err(FrameError::HeaderBlock(_))));
        let too_big = vec![0; MAX_HEADER_BLOCK * 4];
        assert!(matches!(compress(&too_big), Err(FrameError::HeaderBlock(_))));
    }

    /// Arbitrary bytes never panic the decoder.
    #[test]
    fn arbitrary_bytes_do_not_panic() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for round in 0..2000 {
            let mut bytes = Vec::new();
            let length = round % 64;
            for _ in 0..length {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                bytes.push(seed as u8);
            }
            if round % 2 == 0 && bytes.len() >= 8 {
                // Mostly valid control headers, so the payload parsers are reached.
                bytes[0] = 0x80;
                bytes[1] = 3;
                bytes[2] = 0;
                bytes[3] %= 10;
                let length = ((bytes.len() - 8) as u32).to_be_bytes();
                bytes[5..8].copy_from_slice(&length[1..]);
            }
            let mut decoder = Decoder::default();
            while let Ok(Some(_)) = decoder.decode(&mut bytes) {}
        }
    }

    #[test]
    fn oversized_data_is_refused() {
        let frame = Frame::Data { stream: 1, fin: false, data: vec![0; MAX_FRAME_LENGTH + 1] };
        assert_eq!(
            Encoder::default().encode(&frame, &mut Vec::new()),
            Err(FrameError::TooLarge(MAX_FRAME_LENGTH + 1))
        );
    }
}

//! sha256 digests: computing them while data streams by. The digest type itself is oci-spec's
//! [`Digest`], so manifests, descriptors and the store all speak the same type.

use std::io::{self, Read, Write};

use oci_spec::image::{Digest, Sha256Digest};
use sha2::{Digest as _, Sha256};

/// The digest of a byte slice.
pub fn sha256_of(bytes: &[u8]) -> Digest {
    from_hasher(Sha256::new_with_prefix(bytes))
}

fn from_hasher(hasher: Sha256) -> Digest {
    let hex = hex::encode(hasher.finalize());
    // A sha256 hex string is always a valid Sha256Digest.
    hex.parse::<Sha256Digest>().expect("sha256 hex is valid").into()
}

/// Parses `sha256:<64 hex>`; anything else (other algorithms included) is refused.
pub fn parse_sha256(s: &str) -> crate::Result<Digest> {
    let hex = s.strip_prefix("sha256:").ok_or_else(|| {
        crate::Error::InvalidInput(format!("invalid digest {s:?}: want sha256:<64 hex digits>"))
    })?;
    hex.parse::<Sha256Digest>()
        .map(Into::into)
        .map_err(|_| crate::Error::InvalidInput(format!("invalid digest {s:?}: want sha256:<64 hex digits>")))
}

/// A reader that hashes and counts everything read through it.
pub struct Sha256Reader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Sha256Reader<R> {
    pub fn new(inner: R) -> Self {
        Sha256Reader { inner, hasher: Sha256::new(), bytes: 0 }
    }

    /// Bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The digest of everything read, and the inner reader (which may hold unread data).
    pub fn finish(self) -> (Digest, u64, R) {
        (from_hasher(self.hasher), self.bytes, self.inner)
    }
}

impl<R: Read> Read for Sha256Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts everything written through it.
pub struct Sha256Writer<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Sha256Writer<W> {
    pub fn new(inner: W) -> Self {
        Sha256Writer { inner, hasher: Sha256::new(), bytes: 0 }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    pub fn finish(self) -> (Digest, u64, W) {
        (from_hasher(self.hasher), self.bytes, self.inner)
    }
}

impl<W: Write> Write for Sha256Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_empty_input_is_the_well_known_one() {
        assert_eq!(
            sha256_of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn reader_and_writer_agree_with_sha256_of() {
        let data = b"hello berth".repeat(1000);
        let mut r = Sha256Reader::new(&data[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        let (d1, n1, _) = r.finish();
        let mut w = Sha256Writer::new(Vec::new());
        w.write_all(&data).unwrap();
        let (d2, n2, out) = w.finish();
        assert_eq!(d1, sha256_of(&data));
        assert_eq!(d2, d1);
        assert_eq!((n1, n2), (data.len() as u64, data.len() as u64));
        assert_eq!(out, data);
    }

    #[test]
    fn parse_refuses_other_algorithms_and_bad_hex() {
        assert!(parse_sha256("sha512:abcd").is_err());
        assert!(parse_sha256("sha256:xyz").is_err());
        assert!(parse_sha256(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(parse_sha256(&format!("sha256:{}", "a".repeat(64))).is_ok());
    }
}

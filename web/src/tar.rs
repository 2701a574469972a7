//! A build context made in the browser from a pasted Dockerfile: a tar archive with that one
//! file. Hand-written because one regular file needs only a 512-byte ustar header, and the tar
//! crate would add its file-system code to the wasm for nothing.

/// A tar archive holding `name` with `content` (mode 0644), ended by two zero blocks.
pub fn single_file(name: &str, content: &[u8]) -> Result<Vec<u8>, String> {
    if name.is_empty() || name.len() > 99 {
        return Err(format!("file name {name:?} must have 1 to 99 bytes"));
    }
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut header[100..108], 0o644);
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], content.len() as u64);
    octal(&mut header[136..148], 0);
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    // The checksum is computed with its own field as spaces.
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    let field = format!("{sum:06o}\0 ");
    header[148..156].copy_from_slice(field.as_bytes());
    let padded = content.len().div_ceil(512) * 512;
    let mut archive = Vec::with_capacity(512 + padded + 1024);
    archive.extend_from_slice(&header);
    archive.extend_from_slice(content);
    archive.resize(512 + padded + 1024, 0);
    Ok(archive)
}

/// Writes `value` as zero-padded octal digits and a NUL, filling `field`.
fn octal(field: &mut [u8], value: u64) {
    let digits = format!("{value:0width$o}\0", width = field.len() - 1);
    field.copy_from_slice(digits.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_archive_layout() {
        let tar = single_file("Dockerfile", b"FROM busybox\n").unwrap();
        assert_eq!(tar.len(), 512 + 512 + 1024);
        assert_eq!(&tar[..10], b"Dockerfile");
        assert_eq!(&tar[124..136], b"00000000015\0");
        assert_eq!(&tar[257..262], b"ustar");
        assert_eq!(&tar[512..525], b"FROM busybox\n");
        assert!(tar[525..].iter().all(|b| *b == 0));
        // The stored checksum is the sum of the header with the field as spaces.
        let mut header = tar[..512].to_vec();
        let stored = u32::from_str_radix(std::str::from_utf8(&header[148..154]).unwrap(), 8).unwrap();
        header[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, header.iter().map(|b| u32::from(*b)).sum::<u32>());
        assert!(single_file("", b"").is_err());
        assert!(single_file(&"x".repeat(100), b"").is_err());
    }
}

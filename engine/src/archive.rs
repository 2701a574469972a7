//! Tar archives that are not layers: packing an OCI image layout directory into a tar and
//! extracting one into a new directory (what the CLI does with `save`/`load` of layout
//! directories, without touching the store), and the small stream helpers that import and load
//! share (sniffing and undoing the compression of an incoming stream).

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::layer::Compression;

/// Tars the directory `dir` (its contents, with paths relative to it) into `writer`. Entries are
/// in a deterministic order (names sorted bytewise, a directory before its contents) with fixed
/// owners and times, so the same tree always gives the same bytes. Symbolic links are stored as
/// links. Returns the writer, flushed, so the caller can finish whatever it wraps.
pub fn pack_dir<W: Write>(dir: &Path, writer: W) -> Result<W> {
    let meta = fs::metadata(dir).context(|| format!("reading {}", dir.display()))?;
    if !meta.is_dir() {
        return Err(Error::InvalidInput(format!("{} is not a directory", dir.display())));
    }
    let mut builder = tar::Builder::new(writer);
    builder.mode(tar::HeaderMode::Deterministic);
    builder.follow_symlinks(false);
    pack_children(&mut builder, dir, Path::new(""))?;
    builder.finish().context(|| format!("writing the tar of {}", dir.display()))?;
    let mut writer = builder.into_inner().context(|| format!("writing the tar of {}", dir.display()))?;
    writer.flush().context(|| format!("writing the tar of {}", dir.display()))?;
    Ok(writer)
}

fn pack_children<W: Write>(builder: &mut tar::Builder<W>, dir: &Path, rel: &Path) -> Result<()> {
    let mut entries = fs::read_dir(dir)
        .context(|| format!("listing {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<Vec<_>>>()
        .context(|| format!("listing {}", dir.display()))?;
    entries.sort();
    for name in entries {
        let path = dir.join(&name);
        let rel = rel.join(&name);
        let meta = fs::symlink_metadata(&path).context(|| format!("reading {}", path.display()))?;
        let ft = meta.file_type();
        if !(ft.is_dir() || ft.is_file() || ft.is_symlink()) {
            return Err(Error::InvalidInput(format!(
                "{}: only files, directories and symbolic links can be archived",
                path.display()
            )));
        }
        builder.append_path_with_name(&path, &rel).context(|| format!("archiving {}", path.display()))?;
        if ft.is_dir() {
            pack_children(builder, &path, &rel)?;
        }
    }
    Ok(())
}

/// Extracts the tar read from `reader` into `dir`, which must not exist yet or be an empty
/// directory. The archive is untrusted: absolute paths, `..`, links that lead outside `dir`,
/// device nodes and FIFOs are refused with an error naming the entry, and on any error what was
/// extracted is removed again.
///
/// `crate::layer`'s extraction is not reused on purpose: it applies OCI whiteouts (a `.wh.` file
/// becomes an overlay whiteout), which is right for layers and wrong for plain archives.
pub fn unpack_into_dir(reader: impl Read, dir: &Path) -> Result<()> {
    let created = match fs::create_dir(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let mut entries = fs::read_dir(dir).context(|| format!("listing {}", dir.display()))?;
            if entries.next().is_some() {
                return Err(Error::InvalidInput(format!("{} exists and is not empty", dir.display())));
            }
            false
        }
        Err(e) => return Err(Error::io(format!("creating {}", dir.display()), e)),
    };
    let result = unpack_entries(reader, dir);
    if result.is_err() {
        // Leave the directory as we found it: gone if we made it, empty otherwise.
        if created {
            let _ = fs::remove_dir_all(dir);
        } else if let Ok(entries) = fs::read_dir(dir) {
            for entry in entries.flatten() {
                let p = entry.path();
                let _ =
                    if p.is_dir() && !p.is_symlink() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
            }
        }
    }
    result
}

fn unpack_entries(reader: impl Read, dir: &Path) -> Result<()> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_unpack_xattrs(false);
    let entries = archive.entries().map_err(|e| Error::InvalidInput(format!("reading archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::InvalidInput(format!("reading archive: {e}")))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let unsafe_entry =
            |reason: &str| Error::UnsafeEntry { entry: raw.clone(), reason: reason.to_string() };
        let rel =
            safe_relative(Path::new(&raw)).ok_or_else(|| unsafe_entry("path leaves the target directory"))?;
        if rel.as_os_str().is_empty() {
            continue; // "./" itself
        }
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::Directory => {}
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| Error::InvalidInput(format!("reading archive entry {raw:?}: {e}")))?
                    .ok_or_else(|| unsafe_entry("symbolic link without a target"))?;
                // Resolved lexically from the link's own directory, the target must stay inside.
                let parent = rel.parent().unwrap_or(Path::new(""));
                if target.is_absolute() || safe_relative(&parent.join(&target)).is_none() {
                    return Err(unsafe_entry("symbolic link points outside the target directory"));
                }
                // A lexical check is only sound if no step of the way is itself a link (`a -> b/..`
                // with `b -> ..` resolves outside although it reads as inside).
                if passes_through_symlink(dir, &parent.join(&target)) {
                    return Err(unsafe_entry("symbolic link points through another symbolic link"));
                }
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| Error::InvalidInput(format!("reading archive entry {raw:?}: {e}")))?
                    .ok_or_else(|| unsafe_entry("hard link without a target"))?;
                if safe_relative(&target).is_none() {
                    return Err(unsafe_entry("hard link points outside the target directory"));
                }
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
            other => return Err(unsafe_entry(&format!("entries of type {other:?} are not allowed"))),
        }
        // unpack_in also refuses to write through a symbolic link that leaves `dir`.
        let inside = entry.unpack_in(dir).context(|| format!("extracting {raw:?} into {}", dir.display()))?;
        if !inside {
            return Err(unsafe_entry("path leaves the target directory"));
        }
    }
    Ok(())
}

/// Whether some prefix of `rel` (relative to `root`, followed lexically) is a symbolic link.
fn passes_through_symlink(root: &Path, rel: &Path) -> bool {
    let mut at = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => {
                at.push(n);
                if fs::symlink_metadata(root.join(&at)).is_ok_and(|m| m.file_type().is_symlink()) {
                    return true;
                }
            }
            Component::ParentDir => {
                at.pop();
            }
            _ => {}
        }
    }
    false
}

/// `path` as a relative path of normal components only, or `None` when it is absolute or
/// climbs out with `..` (after resolving `..` lexically against the components before it).
fn safe_relative(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// A stream whose first bytes were read ahead and are given back first.
pub(crate) type HeadAndRest<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

/// Reads up to `n` bytes from the start of `reader` (fewer only at the end of the stream) and
/// returns them with a reader that yields the whole stream again, those bytes included.
pub(crate) fn read_head<R: Read>(mut reader: R, n: usize) -> io::Result<(Vec<u8>, HeadAndRest<R>)> {
    let mut head = Vec::with_capacity(n);
    (&mut reader).take(n as u64).read_to_end(&mut head)?;
    Ok((head.clone(), io::Cursor::new(head).chain(reader)))
}

/// Names a compression that [`Compression::detect`] does not handle but that people commonly
/// use, so that the error says what the input is rather than "not a tar".
pub(crate) fn unsupported_compression(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Some("xz")
    } else if head.starts_with(b"BZh") {
        Some("bzip2")
    } else {
        None
    }
}

/// A reader that undoes `compression`.
pub(crate) fn decompress<'a>(
    reader: impl Read + Send + 'a,
    compression: Compression,
) -> io::Result<Box<dyn Read + Send + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(reader),
        // Multi-member: `pigz` and concatenated gzip streams are valid gzip.
        Compression::Gzip => {
            Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::with_capacity(1 << 16, reader)))
        }
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(reader)?),
    })
}

/// Whether `block` (the first 512 bytes of a stream) is a tar header: its checksum adds up, or
/// it is all zeros (the end-of-archive marker of an empty archive).
pub(crate) fn is_tar_header(block: &[u8]) -> bool {
    if block.len() < 512 {
        return false;
    }
    let block = &block[..512];
    if block.iter().all(|&b| b == 0) {
        return true;
    }
    // The checksum field (bytes 148..156) counts as eight spaces in the sum.
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| if (148..156).contains(&i) { u32::from(b' ') } else { u32::from(b) })
        .sum();
    let field = String::from_utf8_lossy(&block[148..156]);
    let field = field.trim_matches(|c: char| c == '\0' || c == ' ');
    u32::from_str_radix(field, 8).is_ok_and(|stored| stored == sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(if *kind == tar::EntryType::Directory { 0o755 } else { 0o644 });
            h.set_size(data.len() as u64);
            // Write the name bytes directly so that unsafe names reach the reader unchanged.
            let name = &mut h.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn pack_then_unpack_gives_the_same_tree_and_bytes_are_deterministic() {
        let src = tempfile::tempdir().unwrap();
        fs::create_dir_all(src.path().join("blobs/sha256")).unwrap();
        fs::write(src.path().join("blobs/sha256/aa"), b"blob").unwrap();
        fs::write(src.path().join("index.json"), b"{}").unwrap();
        fs::write(src.path().join("oci-layout"), b"{\"imageLayoutVersion\":\"1.0.0\"}").unwrap();
        std::os::unix::fs::symlink("blobs/sha256/aa", src.path().join("link")).unwrap();
        let one = pack_dir(src.path(), Vec::new()).unwrap();
        let two = pack_dir(src.path(), Vec::new()).unwrap();
        assert_eq!(one, two);
        let names: Vec<String> = tar::Archive::new(&one[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["blobs", "blobs/sha256", "blobs/sha256/aa", "index.json", "link", "oci-layout"]);

        let out = tempfile::tempdir().unwrap();
        let target = out.path().join("layout");
        unpack_into_dir(&one[..], &target).unwrap();
        assert_eq!(fs::read(target.join("blobs/sha256/aa")).unwrap(), b"blob");
        assert_eq!(fs::read(target.join("index.json")).unwrap(), b"{}");
        assert_eq!(fs::read_link(target.join("link")).unwrap(), Path::new("blobs/sha256/aa"));
    }

    #[test]
    fn unpack_refuses_a_non_empty_directory() {
        let out = tempfile::tempdir().unwrap();
        fs::write(out.path().join("x"), b"").unwrap();
        let tar = tar_with(&[("a", tar::EntryType::Regular, b"1", None)]);
        let err = unpack_into_dir(&tar[..], out.path()).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
        assert!(out.path().join("x").exists());
    }

    #[test]
    fn unpack_refuses_escapes_and_leaves_nothing() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "dotdot",
                tar_with(&[
                    ("ok", tar::EntryType::Regular, b"1", None),
                    ("../evil", tar::EntryType::Regular, b"x", None),
                ]),
            ),
            ("absolute", tar_with(&[("/tmp/evil", tar::EntryType::Regular, b"x", None)])),
            ("symlink out", tar_with(&[("l", tar::EntryType::Symlink, b"", Some("../../etc"))])),
            ("absolute symlink", tar_with(&[("l", tar::EntryType::Symlink, b"", Some("/etc"))])),
            ("hard link out", tar_with(&[("h", tar::EntryType::Link, b"", Some("../x"))])),
            ("device", tar_with(&[("dev", tar::EntryType::Char, b"", None)])),
        ];
        let out = tempfile::tempdir().unwrap();
        for (what, tar) in cases {
            let target = out.path().join("t");
            let err = unpack_into_dir(&tar[..], &target).unwrap_err();
            assert!(matches!(err, Error::UnsafeEntry { .. }), "{what}: {err}");
            assert!(!target.exists(), "{what}: target left behind");
        }
        assert!(!out.path().join("evil").exists());
    }

    #[test]
    fn links_inside_are_kept_and_chains_that_lead_out_refused() {
        let out = tempfile::tempdir().unwrap();
        let target = out.path().join("t");
        let tar = tar_with(&[
            ("d", tar::EntryType::Directory, b"", None),
            ("d/l", tar::EntryType::Symlink, b"", Some("..")),
            ("d/l/file", tar::EntryType::Regular, b"ok", None),
            ("h", tar::EntryType::Link, b"", Some("file")),
        ]);
        // d/l -> .. is the root itself, so d/l/file lands in the root.
        unpack_into_dir(&tar[..], &target).unwrap();
        assert_eq!(fs::read(target.join("file")).unwrap(), b"ok");
        assert_eq!(fs::read(target.join("h")).unwrap(), b"ok");

        // x -> d/l/.. reads as inside, but d/l is the root, so it is the root's parent.
        let target = out.path().join("t2");
        let tar = tar_with(&[
            ("d", tar::EntryType::Directory, b"", None),
            ("d/l", tar::EntryType::Symlink, b"", Some("..")),
            ("x", tar::EntryType::Symlink, b"", Some("d/l/..")),
        ]);
        let err = unpack_into_dir(&tar[..], &target).unwrap_err();
        assert!(matches!(err, Error::UnsafeEntry { ref entry, .. } if entry == "x"), "{err}");
        assert!(!target.exists());
    }

    #[test]
    fn not_a_tar_is_invalid_input() {
        let out = tempfile::tempdir().unwrap();
        let target = out.path().join("t");
        let junk = vec![0x41u8; 2048];
        let err = unpack_into_dir(&junk[..], &target).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err}");
        assert!(!target.exists());
    }

    #[test]
    fn tar_header_check() {
        let tar = tar_with(&[("a", tar::EntryType::Regular, b"1", None)]);
        assert!(is_tar_header(&tar));
        assert!(is_tar_header(&[0u8; 1024]));
        assert!(!is_tar_header(&[0x41u8; 1024]));
        assert!(!is_tar_header(b"short"));
        let mut bad = tar.clone();
        bad[0] ^= 1;
        assert!(!is_tar_header(&bad));
    }

    #[test]
    fn read_head_gives_the_stream_back_whole() {
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let (head, mut rest) = read_head(&data[..], 100).unwrap();
        assert_eq!(head, &data[..100]);
        let mut all = Vec::new();
        rest.read_to_end(&mut all).unwrap();
        assert_eq!(all, data);
        let (head, _) = read_head(&data[..5], 100).unwrap();
        assert_eq!(head.len(), 5);
    }
}

//! The build context: the tar stream the client sent, spooled once to one file while every
//! entry is indexed (path, type, mode, size, sha256 of the content, where its bytes are in the
//! spool). Nothing is extracted: a cached COPY needs only the hashes, and a COPY that runs reads
//! its files from the spool by offset. One spool file (rather than an extracted tree) also spares
//! the file system thousands of inodes created and deleted per build.
//!
//! Also here: `.dockerignore` and the path patterns of `.dockerignore` and COPY sources (Go's
//! `filepath.Match` syntax plus `**`), compiled to regular expressions. Hand-written because
//! Docker's rules (a pattern that matches a directory excludes what is under it, the last
//! matching pattern wins, `!` re-includes) are not gitignore's, which is what the common crates
//! implement.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::rc::Rc;

use sha2::{Digest as _, Sha256};

use crate::error::{Error, IoContext, Result};

/// What kind of entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink(String),
}

/// One entry of the context.
#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits (and setuid/setgid/sticky).
    pub mode: u32,
    pub mtime: i64,
    pub size: u64,
    /// Where the content starts in the spool.
    pub offset: u64,
    /// sha256 of the content (files) or of the link target (symlinks).
    pub hash: [u8; 32],
}

/// An indexed build context.
pub struct Context {
    spool: File,
    /// Clean relative paths (`a/b`, no `./`, no trailing `/`) → entry; the root is `""`.
    entries: BTreeMap<String, Entry>,
}

/// Copies what is read into the spool.
///
/// It also completes a tar that ends right after its last entry's data, without the padding
/// to 512 bytes and the end marker: the docker CLI sends such a tar with `build -f -` (Go's
/// tar reader accepts it, the `tar` crate does not). Only a stream that ends exactly where the
/// current entry's data ends (`data_end`, set by the reader of the entries) is completed; one
/// cut anywhere else stays cut.
struct Tee<'a, R> {
    inner: R,
    spool: &'a mut io::BufWriter<File>,
    /// Bytes read so far.
    position: u64,
    /// Where the data of the entry being read ends.
    data_end: Rc<Cell<u64>>,
    /// Zeros still to give after the end of `inner` (padding and end marker).
    tail: Option<u64>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.tail {
            None => self.inner.read(buf)?,
            Some(_) => 0,
        };
        let n = if n == 0 && !buf.is_empty() {
            let tail = self.tail.get_or_insert_with(|| {
                let misaligned = !self.position.is_multiple_of(512);
                if misaligned && self.position == self.data_end.get() {
                    (512 - self.position % 512) + 1024
                } else {
                    0
                }
            });
            let zeros = (*tail).min(buf.len() as u64) as usize;
            buf[..zeros].fill(0);
            *tail -= zeros as u64;
            zeros
        } else {
            n
        };
        self.spool.write_all(&buf[..n])?;
        self.position += n as u64;
        Ok(n)
    }
}

/// A relative path as the context indexes it, or `None` if it leaves the context.
pub fn clean(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Like [`clean`], but `..` at the top stays at the top (as Docker resolves COPY sources).
pub use berth_types::mount::clean_clamped;

impl Context {
    /// Reads the tar stream `body` (plain, gzip or zstd) into `spool_path` and indexes it.
    pub fn read(body: impl Read, spool_path: &Path) -> Result<Context> {
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(spool_path)
            .context(|| format!("creating {}", spool_path.display()))?;
        // The spool is needed only through the open descriptor.
        let _ = std::fs::remove_file(spool_path);
        let (head, body) =
            crate::archive::read_head(body, 64 * 1024).context(|| "reading the build context".into())?;
        let compression = crate::layer::Compression::detect(&head);
        let mut writer = io::BufWriter::with_capacity(
            1 << 20,
            file.try_clone().context(|| "duplicating the spool".into())?,
        );
        let mut entries = BTreeMap::new();
        entries.insert(String::new(), dir_entry(0o755));
        {
            let decompressed: Box<dyn Read> = match compression {
                crate::layer::Compression::None => Box::new(body),
                crate::layer::Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(body)),
                crate::layer::Compression::Zstd => Box::new(
                    zstd::stream::read::Decoder::new(body).context(|| "starting the zstd decoder".into())?,
                ),
            };
            let data_end = Rc::new(Cell::new(0));
            let tee = Tee {
                inner: decompressed,
                spool: &mut writer,
                position: 0,
                data_end: data_end.clone(),
                tail: None,
            };
            let mut archive = tar::Archive::new(tee);
            let bad = |e: io::Error| Error::InvalidInput(format!("reading the build context: {e}"));
            for entry in archive.entries().map_err(bad)? {
                let mut entry = entry.map_err(bad)?;
                let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                let Some(path) = clean(&raw) else {
                    return Err(Error::UnsafeEntry {
                        entry: raw,
                        reason: "path leaves the build context".into(),
                    });
                };
                let header = entry.header();
                let mode = header.mode().map_err(bad)? & 0o7777;
                let mtime = header.mtime().map_err(bad)? as i64;
                let kind = match header.entry_type() {
                    tar::EntryType::Directory => Kind::Dir,
                    tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
                    tar::EntryType::Symlink => Kind::Symlink(
                        entry
                            .link_name()
                            .map_err(bad)?
                            .map(|l| l.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    ),
                    tar::EntryType::Link => {
                        // A hard link in the context is a copy of its target.
                        let target = entry
                            .link_name()
                            .map_err(bad)?
                            .and_then(|l| clean(&l.to_string_lossy()))
                            .unwrap_or_default();
                        let Some(found) = entries.get(&target).cloned() else {
                            return Err(Error::InvalidInput(format!(
                                "build context: hard link {raw:?} to {target:?}, which is not before it"
                            )));
                        };
                        add_parents(&mut entries, &path);
                        entries.insert(path, found);
                        continue;
                    }
                    tar::EntryType::XGlobalHeader | tar::EntryType::XHeader | tar::EntryType::GNULongName => continue,
                    other => {
                        return Err(Error::InvalidInput(format!(
                            "build context: {raw:?} is a {other:?}; only files, directories and symbolic links can be sent"
                        )))
                    }
                };
                let offset = entry.raw_file_position();
                let size = entry.size();
                data_end.set(offset + size);
                let mut hasher = Sha256::new();
                match &kind {
                    Kind::File => {
                        let mut buf = vec![0u8; 256 * 1024];
                        loop {
                            let n = entry.read(&mut buf).map_err(bad)?;
                            if n == 0 {
                                break;
                            }
                            hasher.update(&buf[..n]);
                        }
                    }
                    Kind::Symlink(target) => hasher.update(target.as_bytes()),
                    Kind::Dir => {}
                }
                if path.is_empty() {
                    entries.insert(path, Entry { mode, mtime, ..dir_entry(mode) });
                    continue;
                }
                add_parents(&mut entries, &path);
                entries
                    .insert(path, Entry { kind, mode, mtime, size, offset, hash: hasher.finalize().into() });
            }
            // Whatever follows the end marker belongs to no entry.
            let mut rest = archive.into_inner();
            io::copy(&mut rest, &mut io::sink()).context(|| "reading the build context".into())?;
        }
        writer.flush().context(|| "writing the build context spool".into())?;
        drop(writer);
        Ok(Context { spool: file, entries })
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// Every path, sorted.
    pub fn paths(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.entries.iter()
    }

    /// The entries under `dir` (not `dir` itself), sorted.
    pub fn under<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = (&'a String, &'a Entry)> + 'a {
        let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
        self.entries
            .range(prefix.clone()..)
            .skip_while(move |(p, _)| p.is_empty() && !prefix.is_empty())
            .take_while({
                let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
                move |(p, _)| p.starts_with(&prefix)
            })
            .filter(|(p, _)| !p.is_empty())
    }

    /// The content of a file entry.
    pub fn read_file(&self, entry: &Entry) -> Result<Vec<u8>> {
        let mut buf = vec![0; entry.size as usize];
        let mut file = &self.spool;
        file.seek(SeekFrom::Start(entry.offset)).context(|| "reading the build context spool".into())?;
        file.read_exact(&mut buf).context(|| "reading the build context spool".into())?;
        Ok(buf)
    }

    /// The spool, for a child process that copies from it.
    pub fn spool(&self) -> &File {
        &self.spool
    }

    /// Drops what `.dockerignore` excludes (the Dockerfile and `.dockerignore` are read before).
    pub fn apply_ignore(&mut self, ignore: &IgnoreRules) {
        self.entries.retain(|path, _| path.is_empty() || !ignore.excluded(path));
    }
}

fn dir_entry(mode: u32) -> Entry {
    Entry { kind: Kind::Dir, mode, mtime: 0, size: 0, offset: 0, hash: [0; 32] }
}

fn add_parents(entries: &mut BTreeMap<String, Entry>, path: &str) {
    let mut end = 0;
    while let Some(i) = path[end..].find('/') {
        let parent = &path[..end + i];
        entries.entry(parent.to_string()).or_insert_with(|| dir_entry(0o755));
        end += i + 1;
    }
}

/// A compiled path pattern (Go `filepath.Match` syntax, plus `**` for any number of
/// directories).
#[derive(Debug, Clone)]
pub struct Pattern {
    regex: regex::Regex,
}

impl Pattern {
    pub fn new(pattern: &str) -> std::result::Result<Pattern, String> {
        let mut re = String::from("^");
        let chars: Vec<char> = pattern.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            match c {
                '*' if chars.get(i + 1) == Some(&'*') => {
                    i += 1;
                    if chars.get(i + 1) == Some(&'/') {
                        i += 1;
                        re.push_str("(?:.*/)?");
                    } else {
                        re.push_str(".*");
                    }
                }
                '*' => re.push_str("[^/]*"),
                '?' => re.push_str("[^/]"),
                '[' => {
                    let end = chars[i + 1..].iter().position(|&c| c == ']').map(|p| p + i + 1);
                    let Some(end) = end else { return Err(format!("syntax error in pattern {pattern:?}")) };
                    let mut class: String = chars[i + 1..end].iter().collect();
                    if let Some(rest) = class.strip_prefix('^') {
                        class = format!("^{}", rest.replace('\\', "\\\\"));
                    } else {
                        class = class.replace('\\', "\\\\");
                    }
                    re.push('[');
                    re.push_str(&class);
                    re.push(']');
                    i = end;
                }
                '\\' if i + 1 < chars.len() => {
                    i += 1;
                    re.push_str(&regex::escape(&chars[i].to_string()));
                }
                c => re.push_str(&regex::escape(&c.to_string())),
            }
            i += 1;
        }
        re.push('$');
        regex::Regex::new(&re)
            .map(|regex| Pattern { regex })
            .map_err(|_| format!("syntax error in pattern {pattern:?}"))
    }

    pub fn matches(&self, path: &str) -> bool {
        self.regex.is_match(path)
    }
}

/// Whether a string has pattern characters.
pub fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The rules of a `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    rules: Vec<(Pattern, bool)>,
}

impl IgnoreRules {
    /// Parses a `.dockerignore`: one pattern a line, `#` comments, `!` exceptions.
    pub fn parse(text: &str) -> Result<IgnoreRules> {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negated, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let pattern = clean_clamped(pattern);
            if pattern.is_empty() {
                continue;
            }
            let compiled =
                Pattern::new(&pattern).map_err(|e| Error::InvalidInput(format!(".dockerignore: {e}")))?;
            rules.push((compiled, negated));
        }
        Ok(IgnoreRules { rules })
    }

    /// Whether `path` is excluded: the last rule that matches it or one of its parent
    /// directories decides.
    pub fn excluded(&self, path: &str) -> bool {
        let mut excluded = false;
        for (pattern, negated) in &self.rules {
            let mut matched = pattern.matches(path);
            if !matched {
                let mut end = 0;
                while let Some(i) = path[end..].find('/') {
                    if pattern.matches(&path[..end + i]) {
                        matched = true;
                        break;
                    }
                    end += i + 1;
                }
            }
            if matched {
                excluded = !negated;
            }
        }
        excluded
    }

    /// Whether any rule re-includes something (then a directory's exclusion is decided per path).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_follow_go_match() {
        let p = Pattern::new("*.txt").unwrap();
        assert!(p.matches("a.txt") && !p.matches("d/a.txt"));
        let p = Pattern::new("**/*.log").unwrap();
        assert!(p.matches("a.log") && p.matches("x/y/a.log"));
        let p = Pattern::new("f[0-9]?").unwrap();
        assert!(p.matches("f1x") && !p.matches("fxx"));
    }

    #[test]
    fn dockerignore_rules() {
        let rules = IgnoreRules::parse("# c\nsecret\n*.tmp\n!keep.tmp\n/build/**\n").unwrap();
        assert!(rules.excluded("secret"));
        assert!(rules.excluded("secret/inner/file"));
        assert!(rules.excluded("x.tmp"));
        assert!(!rules.excluded("keep.tmp"));
        assert!(rules.excluded("build/a/b"));
        assert!(!rules.excluded("src/main.rs"));
    }

    #[test]
    fn indexes_a_tar_without_extracting() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o640);
        h.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut h, "./d/f.txt", &b"hello"[..]).unwrap();
        let bytes = builder.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ctx = Context::read(&bytes[..], &dir.path().join("spool")).unwrap();
        let e = ctx.get("d/f.txt").unwrap();
        assert_eq!(e.mode, 0o640);
        assert_eq!(ctx.read_file(e).unwrap(), b"hello");
        assert_eq!(ctx.get("d").unwrap().kind, Kind::Dir);
        assert_eq!(ctx.under("d").count(), 1);
        assert_eq!(ctx.under("").count(), 2);
    }

    fn two_files() -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in [("Dockerfile", &b"FROM scratch\n"[..]), (".dockerignore", &b"secret"[..])] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut h, name, data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn a_tar_cut_right_after_its_last_data_is_completed() {
        // What the docker CLI sends with `build -f -`: no padding after the last entry's data,
        // no end marker.
        let full = two_files();
        let cut = &full[..512 + 512 + 512 + 6];
        let dir = tempfile::tempdir().unwrap();
        let ctx = Context::read(cut, &dir.path().join("spool")).unwrap();
        assert_eq!(ctx.read_file(ctx.get(".dockerignore").unwrap()).unwrap(), b"secret");
        assert_eq!(ctx.read_file(ctx.get("Dockerfile").unwrap()).unwrap(), b"FROM scratch\n");
        // Cut inside the data, it stays an error.
        for len in [512 + 512 + 512 + 3, 512 + 100, 512 + 512 + 200] {
            let dir = tempfile::tempdir().unwrap();
            assert!(Context::read(&full[..len], &dir.path().join("spool")).is_err(), "cut at {len}");
        }
    }
}

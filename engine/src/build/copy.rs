//! COPY and ADD planning: which files of the context, an earlier stage or an archive a step
//! copies where, with what owner, and the content hash that keys its cache record.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::PathBuf;

use super::context::{self, Kind, Pattern};
use super::dockerfile::{self, CopySpec};
use super::step::{CopyOp, Source};
use super::{layers, Builder, Built, State};
use crate::error::Result;

impl Builder<'_> {
    /// How a COPY/ADD shows in the history (and in its cache key): sources and destination as
    /// evaluated.
    pub(super) fn copy_shown(
        &self,
        spec: &CopySpec,
        vars: &dyn dockerfile::Vars,
        line: usize,
    ) -> Result<String> {
        let escape = self.file.escape;
        let expand = |s: &str| dockerfile::expand(s, vars, escape).map_err(|e| self.err_at(line, e));
        let keyword = if spec.add { "ADD" } else { "COPY" };
        let sources = spec.sources.iter().map(|s| expand(s)).collect::<Result<Vec<_>>>()?;
        let dest = expand(&spec.dest)?;
        let mut flags = String::new();
        if let Some(f) = &spec.from {
            flags.push_str(&format!("--from={f} "));
        }
        if let Some(c) = &spec.chown {
            flags.push_str(&format!("--chown={c} "));
        }
        if let Some(c) = &spec.chmod {
            flags.push_str(&format!("--chmod={c} "));
        }
        Ok(format!("/bin/sh -c #(nop) {keyword} {flags}{} {dest}", sources.join(" ")))
    }
    /// `--chown`: names resolved in the destination's /etc/passwd and /etc/group.
    pub(super) fn resolve_chown(
        &mut self,
        state: &State,
        ops: Vec<CopyOp>,
        chown: Option<&str>,
    ) -> Result<Vec<CopyOp>> {
        let Some(chown) = chown.filter(|c| !c.is_empty()) else { return Ok(ops) };
        let (uid, gid) = match chown.split_once(':') {
            Some((u, g)) => match (u.parse::<u32>(), g.parse::<u32>()) {
                (Ok(u), Ok(g)) => (u, g),
                _ => self.lookup_user(state, chown)?,
            },
            None => match chown.parse::<u32>() {
                Ok(u) => (u, u),
                Err(_) => {
                    let (u, _) = self.lookup_user(state, chown)?;
                    let (_, g) = self.lookup_user(state, &format!("{chown}:{chown}")).unwrap_or((u, u));
                    (u, g)
                }
            },
        };
        Ok(ops
            .into_iter()
            .map(|op| match op {
                CopyOp::MkdirAll { path, .. } => CopyOp::MkdirAll { path, uid, gid },
                CopyOp::Dir { path, mode, mtime, .. } => CopyOp::Dir { path, mode, uid, gid, mtime },
                CopyOp::File { path, source, mode, mtime, .. } => {
                    CopyOp::File { path, source, mode, uid, gid, mtime }
                }
                CopyOp::Symlink { path, target, .. } => CopyOp::Symlink { path, target, uid, gid },
                CopyOp::Extract { path, source, .. } => {
                    CopyOp::Extract { path, source, owner: Some((uid, gid)) }
                }
            })
            .collect())
    }

    pub(super) fn lookup_user(&mut self, state: &State, spec: &str) -> Result<(u32, u32)> {
        let (key, rootfs) = self.writable(state)?;
        let user = crate::runtime::spec::resolve_user(&rootfs, spec);
        self.inner.snapshots.remove_writable(&key)?;
        self.cleanup.writables.retain(|k| k != &key);
        let user = user?;
        Ok((user.uid(), user.gid()))
    }

    /// The file operations of a COPY/ADD and how the step shows in the history.
    pub(super) fn plan_copy(
        &self,
        spec: &CopySpec,
        vars: &dyn dockerfile::Vars,
        line: usize,
        current: &Built,
        built: &HashMap<usize, Built>,
        stage: usize,
    ) -> Result<(Vec<CopyOp>, String, Vec<String>)> {
        let escape = self.file.escape;
        let keyword = if spec.add { "ADD" } else { "COPY" };
        let expand = |s: &str| dockerfile::expand(s, vars, escape).map_err(|e| self.err_at(line, e));
        let mode_override = match &spec.chmod {
            Some(m) => Some(u32::from_str_radix(m, 8).ok().filter(|m| *m <= 0o7777).ok_or_else(|| {
                self.err_at(line, format!("invalid chmod parameter {m:?}: want an octal mode"))
            })?),
            None => None,
        };
        let dest_raw = expand(&spec.dest)?;
        let dest_is_dir_syntax = dest_raw.ends_with('/') || dest_raw.ends_with("/.") || dest_raw == ".";
        let dest = if dest_raw.starts_with('/') {
            dest_raw.clone()
        } else {
            format!("{}/{dest_raw}", current.state.workdir())
        };
        let dest = format!("/{}", context::clean_clamped(&dest));

        // Sources: from the context, from an earlier stage, or from an image.
        let from_tree = match &spec.from {
            Some(from) => {
                let from = expand(from)?;
                let layers = match self.stage_index(&from, stage) {
                    Some(j) => built
                        .get(&j)
                        .map(|b| b.state.diff_ids())
                        .ok_or_else(|| self.err_at(line, format!("stage {from} was not built")))?,
                    None => {
                        if spec.add {
                            return Err(self.err_at(line, "ADD does not take --from"));
                        }
                        self.base_image(&from)
                            .map_err(|e| self.err_at(line, format!("COPY --from={from}: {e}")))?
                            .state
                            .diff_ids()
                    }
                };
                let dirs: Vec<PathBuf> = layers.iter().map(|d| self.inner.snapshots.layer_path(d)).collect();
                Some(layers::merged_view(&dirs)?)
            }
            None => None,
        };

        struct Src {
            rel: String,
            kind: Kind,
            mode: u32,
            mtime: i64,
            source: Source,
            size: u64,
            /// Content identity for the cache key.
            hash: String,
        }
        let lookup = |path: &str| -> Option<Src> {
            match &from_tree {
                Some(tree) => {
                    if path.is_empty() {
                        return Some(Src {
                            rel: String::new(),
                            kind: Kind::Dir,
                            mode: 0o755,
                            mtime: 0,
                            source: Source::Spool { offset: 0, size: 0 },
                            size: 0,
                            hash: String::new(),
                        });
                    }
                    let e = tree.get(path)?;
                    use std::os::unix::fs::MetadataExt;
                    let kind = if e.meta.is_dir() {
                        Kind::Dir
                    } else if e.meta.file_type().is_symlink() {
                        Kind::Symlink(fs::read_link(&e.host).ok()?.to_string_lossy().into_owned())
                    } else {
                        Kind::File
                    };
                    // The host path names the layer (by diff ID) that provides the file: its identity.
                    let hash = e.host.display().to_string();
                    Some(Src {
                        rel: path.to_string(),
                        kind,
                        mode: e.meta.mode() & 0o7777,
                        mtime: e.meta.mtime(),
                        source: Source::Host(e.host.clone()),
                        size: e.meta.size(),
                        hash,
                    })
                }
                None => {
                    let e = self.ctx.get(path)?;
                    Some(Src {
                        rel: path.to_string(),
                        kind: e.kind.clone(),
                        mode: e.mode,
                        mtime: e.mtime,
                        source: Source::Spool { offset: e.offset, size: e.size },
                        size: e.size,
                        hash: hex::encode(e.hash),
                    })
                }
            }
        };
        let all_paths: Vec<String> = match &from_tree {
            Some(tree) => tree.keys().cloned().collect(),
            None => self.ctx.paths().map(|(p, _)| p.clone()).filter(|p| !p.is_empty()).collect(),
        };
        let children = |dir: &str| -> Vec<String> {
            let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
            all_paths.iter().filter(|p| p.starts_with(&prefix) && p.len() > prefix.len()).cloned().collect()
        };

        // A source that is a symbolic link is followed (inside the context or the stage), as
        // Docker and buildah do; the destination keeps the link's name.
        let follow = |first: Src| -> Option<(String, Src)> {
            let name = first.rel.rsplit('/').next().unwrap_or(&first.rel).to_string();
            let mut current = first;
            for _ in 0..32 {
                let Kind::Symlink(target) = &current.kind else { return Some((name, current)) };
                let base = current.rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                let next = if target.starts_with('/') {
                    context::clean_clamped(target)
                } else {
                    context::clean_clamped(&format!("{base}/{target}"))
                };
                current = lookup(&next)?;
            }
            None
        };
        let mut matches: Vec<(String, Src)> = Vec::new();
        for raw in &spec.sources {
            let src = expand(raw)?;
            if spec.add
                && (src.starts_with("http://") || src.starts_with("https://") || src.starts_with("git@"))
            {
                return Err(self.err_at(line, format!("ADD from a remote URL is not supported (download it in a RUN step or into the context): {src}")));
            }
            let clean = context::clean_clamped(&src);
            if context::has_wildcards(&clean) {
                let pattern = Pattern::new(&clean).map_err(|e| self.err_at(line, e))?;
                let found: Vec<&String> = all_paths.iter().filter(|p| pattern.matches(p)).collect();
                if found.is_empty() {
                    return Err(self.err_at(
                        line,
                        format!("{keyword} failed: no source files were specified matching {src:?}"),
                    ));
                }
                for p in found {
                    matches.extend(lookup(p).and_then(&follow));
                }
            } else {
                match lookup(&clean).and_then(&follow) {
                    Some(s) => matches.push(s),
                    None => {
                        return Err(self.err_at(line, format!(
                            "{keyword} failed: file not found in build context or excluded by .dockerignore: stat {src}: file does not exist"
                        )))
                    }
                }
            }
        }
        if spec.sources.len() > 1 && !dest_is_dir_syntax {
            return Err(self.err_at(line, format!("When using {keyword} with more than one source file, the destination must be a directory and end with a /")));
        }
        let dest_is_dir = dest_is_dir_syntax || matches.len() > 1 || self.is_dir_in(&current.state, &dest);

        let mut fingerprint = Vec::new();
        let mut ops = vec![CopyOp::MkdirAll {
            path: if dest_is_dir { dest.clone() } else { parent_of(&dest) },
            uid: 0,
            gid: 0,
        }];
        let join = |base: &str, rel: &str| {
            if rel.is_empty() {
                base.to_string()
            } else if base == "/" {
                format!("/{rel}")
            } else {
                format!("{base}/{rel}")
            }
        };
        for (name, m) in &matches {
            let mode = |own: u32| mode_override.unwrap_or(own);
            match &m.kind {
                Kind::Dir => {
                    // A directory's contents go to the destination, not the directory itself.
                    let base = dest.clone();
                    for child in children(&m.rel) {
                        let Some(c) = lookup(&child) else { continue };
                        let rel = if m.rel.is_empty() {
                            child.clone()
                        } else {
                            child[m.rel.len() + 1..].to_string()
                        };
                        let path = join(&base, &rel);
                        fingerprint.push(format!("{path} {:o} {}", mode(c.mode), c.hash));
                        ops.push(match c.kind {
                            Kind::Dir => {
                                CopyOp::Dir { path, mode: mode(c.mode), uid: 0, gid: 0, mtime: Some(c.mtime) }
                            }
                            Kind::File => CopyOp::File {
                                path,
                                source: c.source,
                                mode: mode(c.mode),
                                uid: 0,
                                gid: 0,
                                mtime: c.mtime,
                            },
                            Kind::Symlink(target) => CopyOp::Symlink { path, target, uid: 0, gid: 0 },
                        });
                    }
                }
                Kind::File => {
                    let path = if dest_is_dir { join(&dest, name) } else { dest.clone() };
                    fingerprint.push(format!("{path} {:o} {}", mode(m.mode), m.hash));
                    if spec.add && self.is_local_archive(&m.source, m.size) {
                        ops.push(CopyOp::Extract {
                            // An archive is extracted into the destination directory.
                            path: dest.clone(),
                            source: m.source.clone(),
                            owner: None,
                        });
                    } else {
                        ops.push(CopyOp::File {
                            path,
                            source: m.source.clone(),
                            mode: mode(m.mode),
                            uid: 0,
                            gid: 0,
                            mtime: m.mtime,
                        });
                    }
                }
                Kind::Symlink(target) => {
                    let path = if dest_is_dir { join(&dest, name) } else { dest.clone() };
                    fingerprint.push(format!("{path} -> {target}"));
                    ops.push(CopyOp::Symlink { path, target: target.clone(), uid: 0, gid: 0 });
                }
            }
        }
        let shown = self.copy_shown(spec, vars, line)?;
        Ok((ops, shown, fingerprint))
    }

    /// Whether an ADD source is a tar archive (plain, gzip or zstd) to extract.
    pub(super) fn is_local_archive(&self, source: &Source, size: u64) -> bool {
        let head = match source {
            Source::Spool { offset, .. } => {
                let e = context::Entry {
                    kind: Kind::File,
                    mode: 0,
                    mtime: 0,
                    size: size.min(1024 * 1024),
                    offset: *offset,
                    hash: [0; 32],
                };
                match self.ctx.read_file(&e) {
                    Ok(b) => b,
                    Err(_) => return false,
                }
            }
            Source::Host(path) => {
                let mut buf = Vec::new();
                match fs::File::open(path) {
                    Ok(f) => {
                        let _ = f.take(1024 * 1024).read_to_end(&mut buf);
                    }
                    Err(_) => return false,
                }
                buf
            }
        };
        let compression = crate::layer::Compression::detect(&head);
        let mut block = Vec::new();
        let reader: Box<dyn Read> = match compression {
            crate::layer::Compression::Gzip => Box::new(flate2::read::GzDecoder::new(&head[..])),
            crate::layer::Compression::Zstd => match zstd::stream::read::Decoder::new(&head[..]) {
                Ok(d) => Box::new(d),
                Err(_) => return false,
            },
            crate::layer::Compression::None => Box::new(&head[..]),
        };
        let _ = reader.take(512).read_to_end(&mut block);
        block.len() == 512 && crate::archive::is_tar_header(&block)
    }

    /// Whether `path` (absolute) is a directory in `state`'s layers (the topmost layer that has
    /// the path, or a whiteout of it, decides).
    pub(super) fn is_dir_in(&self, state: &State, path: &str) -> bool {
        let rel = path.trim_start_matches('/');
        if rel.is_empty() {
            return true;
        }
        for layer in state.layers.iter().rev() {
            let p = self.inner.snapshots.layer_path(&layer.diff_id).join(rel);
            if let Ok(meta) = fs::symlink_metadata(&p) {
                use std::os::unix::fs::{FileTypeExt, MetadataExt};
                if meta.file_type().is_char_device() && meta.rdev() == 0 {
                    return false;
                }
                return meta.is_dir();
            }
        }
        false
    }
}

fn parent_of(path: &str) -> String {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/".to_string(),
        Some((p, _)) => p.to_string(),
    }
}

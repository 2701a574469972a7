//! `import`: a root filesystem tarball becomes a one-layer image, with `--change` instructions
//! applied to its config.
//!
//! The body streams once: its bytes go into the content store (as given, compressed or not)
//! while the same bytes are unpacked into the snapshot store, which yields the diff ID. Then the
//! config and manifest are written and the image recorded. Nothing is visible before the end: a
//! bad tarball leaves neither blob nor layer nor image.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

use chrono::{SecondsFormat, Utc};
use oci_spec::image::{Descriptor, DescriptorBuilder, Digest, ImageManifestBuilder, MediaType};
use serde_json::{json, Map, Value};

use crate::archive::{decompress, is_tar_header, read_head, unsupported_compression};
use crate::error::{Error, IoContext, Result};
use crate::layer::Compression;
use crate::store::ImageRecord;
use crate::{Engine, EngineInner, Reference};

/// How much of the body is looked at before anything is written: enough to recognise the
/// compression and to decompress the first tar header.
const HEAD_BYTES: usize = 64 * 1024;

impl Engine {
    /// `docker import`: makes an image of the root filesystem tarball `body` (plain, gzip or
    /// zstd), applies `changes` (Dockerfile instructions: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL,
    /// ONBUILD, USER, VOLUME, WORKDIR, STOPSIGNAL) to its config, records `message` as the
    /// history comment, and tags it `reference` if given. The reference and the changes are
    /// checked before the body is read.
    pub async fn import_image(
        &self,
        body: impl tokio::io::AsyncRead + Send + Unpin + 'static,
        reference: Option<String>,
        changes: Vec<String>,
        message: Option<String>,
    ) -> Result<berth_types::ImportReport> {
        let reference = reference.map(|r| import_reference(&r)).transpose()?;
        let run_config = RunConfig::from_changes(&changes)?;
        let comment = message.filter(|m| !m.is_empty()).unwrap_or_else(|| "Imported from -".to_string());
        let body = tokio_util::io::SyncIoBridge::new(body);
        self.blocking(move |inner| {
            let id = import_blocking(inner, body, &run_config, &comment, reference.as_ref())?;
            Ok(berth_types::ImportReport { id: id.to_string(), reference: reference.map(|r| r.to_string()) })
        })
        .await
    }
}

/// The reference an import tags: a name with a tag (`:latest` if none), never a digest.
fn import_reference(s: &str) -> Result<Reference> {
    let reference = Reference::parse(s)?;
    if reference.digest().is_some() {
        return Err(Error::InvalidInput("cannot import digest reference".into()));
    }
    Ok(reference)
}

fn import_blocking(
    inner: &EngineInner,
    body: impl Read + Send,
    run_config: &RunConfig,
    comment: &str,
    reference: Option<&Reference>,
) -> Result<Digest> {
    let (head, body) = read_head(body, HEAD_BYTES).context(|| "reading the import body".into())?;
    let compression = check_tarball_head(&head)?;

    // Nothing the blobs and the layer are written for is referenced until the record exists.
    let _gc = inner.gc_lock.read().expect("gc lock poisoned");
    let mut blob = inner.content.writer()?;
    let mut tee = TeeReader { inner: body, copy: &mut blob };
    let diff_id = inner.snapshots.unpack_layer(&mut tee, compression, None)?;
    // Whatever the unpack did not need (tar padding after the end marker) is part of the blob.
    io::copy(&mut tee, &mut io::sink()).context(|| "reading the import body".into())?;
    let (layer_digest, layer_size) = blob.commit(None)?;

    let (os, arch, variant) = node_platform();
    let created = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
    let mut config = json!({
        "architecture": arch,
        "os": os,
        "created": created,
        "config": run_config.to_json(),
        "rootfs": { "type": "layers", "diff_ids": [diff_id.to_string()] },
        "history": [{ "created": created, "comment": comment }],
    });
    if let Some(v) = variant {
        config["variant"] = json!(v);
    }
    let config_bytes = serde_json::to_vec(&config).expect("config serialises");
    let config_digest = inner.content.write_bytes(&config_bytes)?;
    let layer = descriptor(layer_media_type(compression), layer_digest, layer_size)?;
    let config_desc = descriptor(MediaType::ImageConfig, config_digest.clone(), config_bytes.len() as u64)?;
    let manifest_digest = write_manifest(inner, config_desc, vec![layer])?;

    inner.images.add(ImageRecord {
        id: config_digest.clone(),
        manifest: manifest_digest,
        manifest_media_type: MediaType::ImageManifest.to_string(),
        added: Utc::now(),
    })?;
    if let Some(reference) = reference {
        inner.images.tag(reference, &config_digest)?;
    }
    tracing::info!(id = %config_digest, diff_id = %diff_id, "imported image");
    Ok(config_digest)
}

/// Recognises the compression of a tarball from its first bytes and checks that what it holds
/// starts like a tar, so that garbage is refused before anything is written.
fn check_tarball_head(head: &[u8]) -> Result<Compression> {
    if head.is_empty() {
        return Err(Error::InvalidInput("the tarball is empty".into()));
    }
    if let Some(name) = unsupported_compression(head) {
        return Err(Error::Unsupported(format!("{name}-compressed tarballs; use plain tar, gzip or zstd")));
    }
    let compression = Compression::detect(head);
    let complete = head.len() < HEAD_BYTES;
    let mut block = Vec::with_capacity(512);
    let read = decompress(head, compression).and_then(|r| r.take(512).read_to_end(&mut block));
    // A head cut off in the middle of a compressed stream may fail to decompress although the
    // whole stream is fine; only a complete input that fails, or a header that is not one, is
    // surely bad.
    if (block.len() == 512 || complete || read.is_ok()) && !is_tar_header(&block) {
        let what = match compression {
            Compression::None => "",
            Compression::Gzip => "gzip-compressed ",
            Compression::Zstd => "zstd-compressed ",
        };
        return Err(Error::InvalidInput(format!("the {what}input is not a tar archive")));
    }
    Ok(compression)
}

/// Copies everything read through it into `copy`.
struct TeeReader<'a, R> {
    inner: R,
    copy: &'a mut crate::store::BlobWriter,
}

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// This node's platform as OCI names it: (os, architecture, variant).
pub(crate) fn node_platform() -> (&'static str, &'static str, Option<&'static str>) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "loongarch64" => "loong64",
        "mips64" if cfg!(target_endian = "little") => "mips64le",
        other => other, // arm, s390x, riscv64 are spelled alike
    };
    let variant = match arch {
        "arm64" => Some("v8"),
        _ => None,
    };
    (std::env::consts::OS, arch, variant)
}

/// The OCI media type of a layer blob compressed with `compression`.
pub(crate) fn layer_media_type(compression: Compression) -> MediaType {
    match compression {
        Compression::None => MediaType::ImageLayer,
        Compression::Gzip => MediaType::ImageLayerGzip,
        Compression::Zstd => MediaType::ImageLayerZstd,
    }
}

pub(crate) fn descriptor(media_type: MediaType, digest: Digest, size: u64) -> Result<Descriptor> {
    DescriptorBuilder::default()
        .media_type(media_type)
        .digest(digest)
        .size(size)
        .build()
        .map_err(|e| Error::InvalidInput(format!("building a descriptor: {e}")))
}

/// Writes an OCI image manifest for `config` and `layers`; returns its digest.
pub(crate) fn write_manifest(
    inner: &EngineInner,
    config: Descriptor,
    layers: Vec<Descriptor>,
) -> Result<Digest> {
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(layers)
        .build()
        .map_err(|e| Error::InvalidInput(format!("building a manifest: {e}")))?;
    let bytes = serde_json::to_vec(&manifest).expect("manifest serialises");
    inner.content.write_bytes(&bytes)
}

/// The runnable part of an image config as Docker writes it (`Cmd`, `Env`, ...), built up by
/// `--change` instructions. `OnBuild` is Docker's, not OCI's; OCI readers ignore it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RunConfig {
    user: Option<String>,
    exposed_ports: BTreeSet<String>,
    env: Vec<String>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    volumes: BTreeSet<String>,
    working_dir: Option<String>,
    labels: BTreeMap<String, String>,
    stop_signal: Option<String>,
    on_build: Vec<String>,
}

impl RunConfig {
    /// Applies `changes` in order to an empty config.
    pub(crate) fn from_changes(changes: &[String]) -> Result<RunConfig> {
        let mut config = RunConfig::default();
        let mut cmd_set = false;
        for change in changes {
            config.apply(change, &mut cmd_set)?;
        }
        Ok(config)
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        let set = |s: &BTreeSet<String>| Value::Object(s.iter().map(|k| (k.clone(), json!({}))).collect());
        if let Some(u) = &self.user {
            m.insert("User".into(), json!(u));
        }
        if !self.exposed_ports.is_empty() {
            m.insert("ExposedPorts".into(), set(&self.exposed_ports));
        }
        if !self.env.is_empty() {
            m.insert("Env".into(), json!(self.env));
        }
        if let Some(e) = &self.entrypoint {
            m.insert("Entrypoint".into(), json!(e));
        }
        if let Some(c) = &self.cmd {
            m.insert("Cmd".into(), json!(c));
        }
        if !self.volumes.is_empty() {
            m.insert("Volumes".into(), set(&self.volumes));
        }
        if let Some(w) = &self.working_dir {
            m.insert("WorkingDir".into(), json!(w));
        }
        if !self.labels.is_empty() {
            m.insert("Labels".into(), json!(self.labels));
        }
        if let Some(s) = &self.stop_signal {
            m.insert("StopSignal".into(), json!(s));
        }
        if !self.on_build.is_empty() {
            m.insert("OnBuild".into(), json!(self.on_build));
        }
        Value::Object(m)
    }

    fn get_env(&self, key: &str) -> Option<&str> {
        self.env.iter().rev().find_map(|kv| kv.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
    }

    fn set_env(&mut self, key: String, value: String) {
        let entry = format!("{key}={value}");
        match self.env.iter_mut().find(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k) == key) {
            Some(existing) => *existing = entry,
            None => self.env.push(entry),
        }
    }

    /// Applies one Dockerfile instruction, as Docker's `BuildFromConfig` does for `--change`.
    fn apply(&mut self, line: &str, cmd_set: &mut bool) -> Result<()> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(());
        }
        let (instruction, rest) = match line.split_once(char::is_whitespace) {
            Some((i, r)) => (i, r.trim()),
            None => (line, ""),
        };
        let name = instruction.to_ascii_uppercase();
        let invalid = |msg: String| Error::InvalidInput(msg);
        let at_least_one = || invalid(format!("{name} requires at least one argument"));
        let exactly_one = || invalid(format!("{name} requires exactly one argument"));
        match name.as_str() {
            "CMD" | "ENTRYPOINT" => {
                if rest.is_empty() {
                    return Err(at_least_one());
                }
                let args = exec_or_shell_form(rest);
                if name == "CMD" {
                    self.cmd = Some(args);
                    *cmd_set = true;
                } else {
                    self.entrypoint = Some(args);
                    // As in a Dockerfile, a new entrypoint drops a CMD that this set of
                    // instructions did not give.
                    if !*cmd_set {
                        self.cmd = None;
                    }
                }
            }
            "ENV" | "LABEL" => {
                for (key, value) in self.name_value_pairs(&name, rest)? {
                    if name == "ENV" {
                        self.set_env(key, value);
                    } else {
                        self.labels.insert(key, value);
                    }
                }
            }
            "EXPOSE" => {
                let words = self.expanded_words(rest)?;
                if words.is_empty() {
                    return Err(at_least_one());
                }
                for w in words {
                    self.exposed_ports.extend(parse_port_spec(&w)?);
                }
            }
            "USER" | "STOPSIGNAL" => {
                let words = self.expanded_words(rest)?;
                let [word] = words.as_slice() else { return Err(exactly_one()) };
                if name == "USER" {
                    self.user = Some(word.clone());
                } else {
                    check_signal(word)?;
                    self.stop_signal = Some(word.clone());
                }
            }
            "WORKDIR" => {
                if rest.is_empty() {
                    return Err(exactly_one());
                }
                let dir = expand(rest, self)?;
                self.working_dir = Some(join_workdir(self.working_dir.as_deref().unwrap_or("/"), &dir));
            }
            "VOLUME" => {
                let volumes = match json_array(rest) {
                    Some(v) => v,
                    None => self.expanded_words(rest)?,
                };
                if volumes.is_empty() {
                    return Err(at_least_one());
                }
                for v in volumes {
                    let v = v.trim();
                    if v.is_empty() {
                        return Err(invalid("VOLUME specified can not be an empty string".into()));
                    }
                    self.volumes.insert(v.to_string());
                }
            }
            "ONBUILD" => {
                if rest.is_empty() {
                    return Err(at_least_one());
                }
                let trigger = rest.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
                match trigger.as_str() {
                    "ONBUILD" => {
                        return Err(invalid("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()))
                    }
                    "FROM" | "MAINTAINER" => {
                        return Err(invalid(format!("{trigger} isn't allowed as an ONBUILD trigger")))
                    }
                    _ => self.on_build.push(rest.to_string()),
                }
            }
            _ => {
                return Err(invalid(format!(
                    "{} is not a valid change command",
                    instruction.to_ascii_lowercase()
                )))
            }
        }
        Ok(())
    }

    /// Words split at unquoted white space, each with quotes removed and variables expanded.
    fn expanded_words(&self, rest: &str) -> Result<Vec<String>> {
        split_words(rest)?.iter().map(|w| expand(w, self)).collect()
    }

    /// `KEY=value ...`, or the legacy `KEY value with spaces` (one pair), as ENV and LABEL take.
    fn name_value_pairs(&self, name: &str, rest: &str) -> Result<Vec<(String, String)>> {
        let words = split_words(rest)?;
        let Some(first) = words.first() else {
            return Err(Error::InvalidInput(format!("{name} requires at least one argument")));
        };
        if !first.contains('=') {
            // Legacy form: the key, then everything after it is the value.
            let value = rest[first.len()..].trim();
            if value.is_empty() && name == "ENV" {
                return Err(Error::InvalidInput("ENV must have two arguments".into()));
            }
            return Ok(vec![(expand(first, self)?, expand(value, self)?)]);
        }
        let mut pairs = Vec::new();
        for w in &words {
            let Some((k, v)) = w.split_once('=') else {
                return Err(Error::InvalidInput(format!(
                    "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
                )));
            };
            let key = expand(k, self)?;
            if key.is_empty() {
                return Err(Error::InvalidInput(format!("{name} names can not be blank")));
            }
            pairs.push((key, expand(v, self)?));
        }
        Ok(pairs)
    }
}

/// CMD and ENTRYPOINT: a JSON array of strings is the exec form; anything else (including JSON
/// that does not parse, as in Docker) is a shell command run by `/bin/sh -c`.
fn exec_or_shell_form(rest: &str) -> Vec<String> {
    json_array(rest).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), rest.to_string()])
}

fn json_array(rest: &str) -> Option<Vec<String>> {
    rest.starts_with('[').then(|| serde_json::from_str::<Vec<String>>(rest).ok()).flatten()
}

/// Splits at white space outside quotes. Quotes and backslashes stay in the words; [`expand`]
/// removes them, as Docker's parser splits before its shell lexer processes each word.
fn split_words(s: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                continue;
            }
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('\''), _) => {}
            (_, '\\') => {
                word.push(c);
                if let Some(next) = chars.next() {
                    word.push(next);
                }
                in_word = true;
                continue;
            }
            _ => {}
        }
        word.push(c);
        in_word = true;
    }
    if quote.is_some() {
        return Err(Error::InvalidInput(format!(
            "unexpected end of statement while looking for matching quote in {s:?}"
        )));
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Docker's word processing for ENV, LABEL, EXPOSE, USER, WORKDIR, VOLUME and STOPSIGNAL:
/// removes quotes, resolves backslash escapes and expands `$VAR`, `${VAR}`, `${VAR:-default}`
/// and `${VAR:+alternative}` from the environment set so far. Hand-written because it is this
/// small subset of Dockerfile syntax, not a shell.
fn expand(word: &str, config: &RunConfig) -> Result<String> {
    let mut out = String::new();
    let chars: Vec<char> = word.chars().collect();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => out.push(c),
            (Some('"'), '\\') => {
                // Inside double quotes a backslash escapes only what would be special there.
                match chars.get(i) {
                    Some(&n @ ('"' | '\\' | '$')) => {
                        out.push(n);
                        i += 1;
                    }
                    _ => out.push('\\'),
                }
            }
            (None, '\\') => {
                if let Some(&n) = chars.get(i) {
                    out.push(n);
                    i += 1;
                }
            }
            (_, '$') => i = expand_variable(&chars, i, config, &mut out)?,
            (_, c) => out.push(c),
        }
    }
    if quote.is_some() {
        return Err(Error::InvalidInput(format!(
            "unexpected end of statement while looking for matching quote in {word:?}"
        )));
    }
    Ok(out)
}

/// Expands the variable whose name starts at `chars[i]` (just after `$`); returns the index
/// after it.
fn expand_variable(chars: &[char], mut i: usize, config: &RunConfig, out: &mut String) -> Result<usize> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if chars.get(i) == Some(&'{') {
        let end = chars[i..]
            .iter()
            .position(|&c| c == '}')
            .map(|p| i + p)
            .ok_or_else(|| Error::InvalidInput("missing '}' in variable substitution".into()))?;
        let inner: String = chars[i + 1..end].iter().collect();
        let (name, modifier) = match inner.find(|c: char| !is_name(c)) {
            Some(p) => (&inner[..p], Some(&inner[p..])),
            None => (inner.as_str(), None),
        };
        if name.is_empty() {
            return Err(Error::InvalidInput(format!("bad substitution: ${{{inner}}}")));
        }
        let value = config.get_env(name);
        match modifier {
            None => out.push_str(value.unwrap_or_default()),
            Some(m) if m.starts_with(":-") => match value.filter(|v| !v.is_empty()) {
                Some(v) => out.push_str(v),
                None => out.push_str(&expand(&m[2..], config)?),
            },
            Some(m) if m.starts_with(":+") => {
                if value.is_some_and(|v| !v.is_empty()) {
                    out.push_str(&expand(&m[2..], config)?);
                }
            }
            Some(m) => {
                return Err(Error::InvalidInput(format!("unsupported modifier ({m}) in substitution")))
            }
        }
        return Ok(end + 1);
    }
    let start = i;
    while i < chars.len() && is_name(chars[i]) {
        i += 1;
    }
    if start == i {
        out.push('$'); // a lone `$` is literal
    } else {
        let name: String = chars[start..i].iter().collect();
        out.push_str(config.get_env(&name).unwrap_or_default());
    }
    Ok(i)
}

/// `80`, `80/udp`, `8000-8010/tcp` → `80/tcp`, ... (one entry per port, as Docker stores them).
fn parse_port_spec(spec: &str) -> Result<Vec<String>> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(Error::InvalidInput(format!("invalid proto: {proto}")));
    }
    let bad = || Error::InvalidInput(format!("invalid containerPort: {ports}"));
    let port = |s: &str| s.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(bad);
    let (first, last) = match ports.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(ports)?, port(ports)?),
    };
    if last < first {
        return Err(bad());
    }
    Ok((first..=last).map(|p| format!("{p}/{proto}")).collect())
}

/// A stop signal as Docker accepts it: a name with or without `SIG`, `SIGRTMIN+n`/`SIGRTMAX-n`,
/// or a number.
fn check_signal(s: &str) -> Result<()> {
    s.parse::<berth_types::signal::Signal>()?;
    Ok(())
}

/// WORKDIR: relative paths continue from the current one; the result is clean and absolute.
fn join_workdir(current: &str, requested: &str) -> String {
    let joined =
        if requested.starts_with('/') { requested.to_string() } else { format!("{current}/{requested}") };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(changes: &[&str]) -> Result<RunConfig> {
        RunConfig::from_changes(&changes.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn err(changes: &[&str]) -> String {
        let e = config(changes).unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
        e.to_string()
    }

    #[test]
    fn cmd_and_entrypoint_take_exec_and_shell_forms() {
        let c = config(&[r#"CMD ["/bin/sh", "-c", "echo hi"]"#]).unwrap();
        assert_eq!(c.cmd.unwrap(), ["/bin/sh", "-c", "echo hi"]);
        let c = config(&["cmd echo $HOME \"quoted\""]).unwrap();
        assert_eq!(c.cmd.unwrap(), ["/bin/sh", "-c", "echo $HOME \"quoted\""]);
        // Broken JSON falls back to the shell form, as in Docker.
        let c = config(&["ENTRYPOINT [not json"]).unwrap();
        assert_eq!(c.entrypoint.unwrap(), ["/bin/sh", "-c", "[not json"]);
    }

    #[test]
    fn entrypoint_resets_cmd_unless_cmd_was_given_too() {
        let c = config(&["CMD [\"a\"]", "ENTRYPOINT [\"e\"]"]).unwrap();
        assert_eq!(c.cmd.unwrap(), ["a"]);
        assert_eq!(c.entrypoint.unwrap(), ["e"]);
    }

    #[test]
    fn env_forms_quotes_and_expansion() {
        let c = config(&[
            "ENV A=1 B=\"two words\"",
            "ENV LEGACY value with spaces",
            // Docker expands every word of one ENV against the environment before it.
            "ENV A=3 C=${A}x",
            "ENV D=${MISSING:-dflt} E=${A:+set} F='$A' G=\\$A H=\"$A\"",
        ])
        .unwrap();
        assert_eq!(
            c.env,
            [
                "A=3",
                "B=two words",
                "LEGACY=value with spaces",
                "C=1x",
                "D=dflt",
                "E=set",
                "F=$A",
                "G=$A",
                "H=3"
            ]
        );
    }

    #[test]
    fn label_expose_user_workdir_volume_stopsignal_onbuild() {
        let c = config(&[
            "LABEL org.example.v=\"1.0\" maintainer=me",
            "EXPOSE 80 53/udp 8000-8002",
            "USER 1000:1000",
            "WORKDIR /app",
            "WORKDIR sub/../data",
            "VOLUME [\"/data\", \"/logs\"]",
            "VOLUME /cache",
            "STOPSIGNAL SIGINT",
            "ONBUILD RUN echo hi",
        ])
        .unwrap();
        assert_eq!(c.labels.get("org.example.v").unwrap(), "1.0");
        assert_eq!(c.labels.get("maintainer").unwrap(), "me");
        let ports: Vec<&str> = c.exposed_ports.iter().map(|s| s.as_str()).collect();
        assert_eq!(ports, ["53/udp", "80/tcp", "8000/tcp", "8001/tcp", "8002/tcp"]);
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        assert_eq!(c.working_dir.as_deref(), Some("/app/data"));
        assert_eq!(c.volumes.iter().collect::<Vec<_>>(), ["/cache", "/data", "/logs"]);
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(c.on_build, ["RUN echo hi"]);
        let j = c.to_json();
        assert_eq!(j["ExposedPorts"]["80/tcp"], json!({}));
        assert_eq!(j["Volumes"]["/data"], json!({}));
        assert_eq!(j["WorkingDir"], "/app/data");
        assert_eq!(j["OnBuild"], json!(["RUN echo hi"]));
    }

    #[test]
    fn bad_changes_are_refused_with_docker_like_messages() {
        assert_eq!(err(&["RUN echo hi"]), "run is not a valid change command");
        assert_eq!(err(&["FROM busybox"]), "from is not a valid change command");
        assert_eq!(err(&["HEALTHCHECK NONE"]), "healthcheck is not a valid change command");
        assert_eq!(err(&["BOGUS x"]), "bogus is not a valid change command");
        assert_eq!(err(&["CMD"]), "CMD requires at least one argument");
        assert_eq!(err(&["ENV"]), "ENV requires at least one argument");
        assert_eq!(err(&["ENV ONLYKEY"]), "ENV must have two arguments");
        assert!(err(&["ENV A=1 B"]).contains("can't find = in \"B\""));
        assert_eq!(err(&["LABEL =x"]), "LABEL names can not be blank");
        assert_eq!(err(&["USER a b"]), "USER requires exactly one argument");
        assert_eq!(err(&["WORKDIR"]), "WORKDIR requires exactly one argument");
        assert_eq!(err(&["EXPOSE http"]), "invalid containerPort: http");
        assert_eq!(err(&["EXPOSE 80/icmp"]), "invalid proto: icmp");
        assert_eq!(err(&["EXPOSE 70000"]), "invalid containerPort: 70000");
        assert_eq!(err(&["EXPOSE 90-80"]), "invalid containerPort: 90-80");
        assert_eq!(err(&["STOPSIGNAL SIGNOPE"]), "invalid signal: SIGNOPE");
        assert_eq!(err(&["STOPSIGNAL 99"]), "invalid signal: 99");
        assert_eq!(err(&["VOLUME [\"\"]"]), "VOLUME specified can not be an empty string");
        assert!(err(&["ONBUILD ONBUILD RUN x"]).contains("Chaining ONBUILD"));
        assert_eq!(err(&["ONBUILD FROM x"]), "FROM isn't allowed as an ONBUILD trigger");
        assert!(err(&["ENV A=\"unterminated"]).contains("matching quote"));
        assert!(err(&["ENV A=${B"]).contains("missing '}'"));
    }

    #[test]
    fn signals_accepted_as_docker_does() {
        for s in ["SIGTERM", "TERM", "sigkill", "9", "SIGRTMIN+3", "RTMAX-1", "SIGRTMIN"] {
            check_signal(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        for s in ["0", "-1", "SIGFOO", "SIGRTMIN+99", ""] {
            assert!(check_signal(s).is_err(), "{s}");
        }
    }

    #[test]
    fn blank_and_comment_changes_do_nothing() {
        assert_eq!(config(&["", "   ", "# note"]).unwrap(), RunConfig::default());
    }

    #[test]
    fn tarball_head_check() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(3);
        h.set_cksum();
        b.append_data(&mut h, "f", &b"abc"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        assert_eq!(check_tarball_head(&tar).unwrap(), Compression::None);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        assert_eq!(check_tarball_head(&gz.finish().unwrap()).unwrap(), Compression::Gzip);
        let zst = zstd::encode_all(&tar[..], 1).unwrap();
        assert_eq!(check_tarball_head(&zst).unwrap(), Compression::Zstd);

        assert!(matches!(check_tarball_head(b""), Err(Error::InvalidInput(_))));
        let e = check_tarball_head(&[b'x'; 4096]).unwrap_err();
        assert_eq!(e.to_string(), "the input is not a tar archive");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&[b'x'; 4096]).unwrap();
        let e = check_tarball_head(&gz.finish().unwrap()).unwrap_err();
        assert_eq!(e.to_string(), "the gzip-compressed input is not a tar archive");
        let e = check_tarball_head(&[0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2]).unwrap_err();
        assert!(matches!(e, Error::Unsupported(_)), "{e}");
    }

    #[test]
    fn workdir_joins() {
        assert_eq!(join_workdir("/", "app"), "/app");
        assert_eq!(join_workdir("/a/b", "../c"), "/a/c");
        assert_eq!(join_workdir("/a", "/x/./y/"), "/x/y");
        assert_eq!(join_workdir("/", "../.."), "/");
    }
}

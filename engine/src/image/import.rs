//! `import`: a root filesystem tarball becomes a one-layer image, with `--change` instructions
//! applied to its config.
//!
//! The body streams once: its bytes go into the content store (as given, compressed or not)
//! while the same bytes are unpacked into the snapshot store, which yields the diff ID. Then the
//! config and manifest are written and the image recorded. Nothing is visible before the end: a
//! bad tarball leaves neither blob nor layer nor image.

use std::io::{self, Read, Write};

use chrono::{SecondsFormat, Utc};
use oci_spec::image::{Descriptor, DescriptorBuilder, Digest, ImageManifestBuilder, MediaType};
use serde_json::{json, Map, Value};

use crate::archive::{decompress, is_tar_header, read_head, unsupported_compression};
use crate::build::dockerfile;
use crate::build::instructions::{self, ConfigChange, Scope};
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
        let run_config = config_from_changes(&changes)?;
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
    run_config: &Map<String, Value>,
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
    inner.snapshots.record_layer_source(&diff_id, &layer_digest)?;

    let (os, arch, variant) = node_platform();
    let created = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
    let mut config = json!({
        "architecture": arch,
        "os": os,
        "created": created,
        "config": run_config,
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

/// The instructions `--change` takes, as Docker's import names them in its error.
const CHANGE_COMMANDS: &[&str] =
    &["cmd", "entrypoint", "env", "expose", "label", "onbuild", "stopsignal", "user", "volume", "workdir"];

/// The runnable part of the config (`Cmd`, `Env`, ...) that `changes` make from an empty one.
/// Each change is a Dockerfile instruction, parsed and interpreted as `build` does.
pub(crate) fn config_from_changes(changes: &[String]) -> Result<Map<String, Value>> {
    let mut config = Map::new();
    apply_changes(&mut Map::new(), &mut config, changes)?;
    Ok(config)
}

/// Applies `changes` (Dockerfile instructions, as `--change` takes them) to an image's runnable
/// `config` and its top level `top` (`MAINTAINER` sets the author), as `build` interprets them.
pub(crate) fn apply_changes(
    top: &mut Map<String, Value>,
    config: &mut Map<String, Value>,
    changes: &[String],
) -> Result<()> {
    let mut cmd_set = false;
    for change in changes {
        let line = change.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let name = keyword.to_ascii_lowercase();
        if !CHANGE_COMMANDS.contains(&name.as_str()) {
            return Err(Error::InvalidInput(format!("{name} is not a valid change command")));
        }
        if rest.trim().is_empty() {
            // Docker's wording rather than the parser's.
            let count = match name.as_str() {
                "user" | "workdir" | "stopsignal" => "exactly one argument",
                _ => "at least one argument",
            };
            return Err(Error::InvalidInput(format!("{} requires {count}", name.to_ascii_uppercase())));
        }
        let inst = dockerfile::parse_instruction(line)?;
        let vars = |name: &str| instructions::env_value(config, name);
        let (shell, workdir) = (instructions::shell_of(config), instructions::workdir_of(config));
        let scope = Scope { vars: &vars, escape: '\\', shell: &shell, workdir: &workdir, cmd_set };
        let Some(change) = instructions::evaluate(&inst, &scope)? else {
            unreachable!("every change command changes the config")
        };
        cmd_set |= matches!(change, ConfigChange::Cmd(_));
        change.apply(top, config);
    }
    // The CMD an ENTRYPOINT resets is left out, not written as null.
    config.retain(|_, v| !v.is_null());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(changes: &[&str]) -> Result<Value> {
        config_from_changes(&changes.iter().map(|s| s.to_string()).collect::<Vec<_>>()).map(Value::Object)
    }

    fn err(changes: &[&str]) -> String {
        let e = config(changes).unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
        e.to_string()
    }

    #[test]
    fn cmd_and_entrypoint_take_exec_and_shell_forms() {
        let c = config(&[r#"CMD ["/bin/sh", "-c", "echo hi"]"#]).unwrap();
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
        let c = config(&["cmd echo $HOME \"quoted\""]).unwrap();
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo $HOME \"quoted\""]));
        // Broken JSON falls back to the shell form, as in Docker.
        let c = config(&["ENTRYPOINT [not json"]).unwrap();
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "[not json"]));
    }

    #[test]
    fn entrypoint_resets_cmd_unless_cmd_was_given_too() {
        let c = config(&["CMD [\"a\"]", "ENTRYPOINT [\"e\"]"]).unwrap();
        assert_eq!(c["Cmd"], json!(["a"]));
        assert_eq!(c["Entrypoint"], json!(["e"]));
        let c = config(&["ENTRYPOINT [\"e\"]"]).unwrap();
        assert!(c.get("Cmd").is_none(), "{c}");
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
            c["Env"],
            json!([
                "A=3",
                "B=two words",
                "LEGACY=value with spaces",
                "C=1x",
                "D=dflt",
                "E=set",
                "F=$A",
                "G=$A",
                "H=3"
            ])
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
        assert_eq!(c["Labels"], json!({"org.example.v": "1.0", "maintainer": "me"}));
        let ports: Vec<&String> = c["ExposedPorts"].as_object().unwrap().keys().collect();
        assert_eq!(ports, ["53/udp", "80/tcp", "8000/tcp", "8001/tcp", "8002/tcp"]);
        assert_eq!(c["User"], "1000:1000");
        assert_eq!(c["WorkingDir"], "/app/data");
        assert_eq!(c["Volumes"], json!({"/cache": {}, "/data": {}, "/logs": {}}));
        assert_eq!(c["StopSignal"], "SIGINT");
        assert_eq!(c["OnBuild"], json!(["RUN echo hi"]));
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
        assert!(err(&["ENV A=\"unterminated"]).contains("matching double-quote"));
        assert!(err(&["ENV A=${B"]).contains("missing '}'"));
    }

    /// The cases `import --change` and `build` once decided differently, decided as Docker does.
    #[test]
    fn port_zero_ranges_and_real_time_stop_signals_as_docker() {
        let c = config(&["EXPOSE 0 7000-7001/UDP"]).unwrap();
        assert_eq!(c["ExposedPorts"], json!({"0/tcp": {}, "7000/udp": {}, "7001/udp": {}}));
        for signal in ["SIGRTMIN+3", "rtmax-2", "TERM", "sigkill", "9", "SIGRTMIN"] {
            let c = config(&[&format!("STOPSIGNAL {signal}")]).unwrap();
            assert_eq!(c["StopSignal"], signal);
        }
        for signal in ["0", "65", "SIGFOO", "RTMIN+40"] {
            assert_eq!(err(&[&format!("STOPSIGNAL {signal}")]), format!("invalid signal: {signal}"));
        }
    }

    #[test]
    fn blank_and_comment_changes_do_nothing() {
        assert_eq!(config(&["", "   ", "# note"]).unwrap(), json!({}));
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
}

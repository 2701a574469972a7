//! `berth build` and `berth history`.
//!
//! The context directory is sent as a tar stream (honouring `.dockerignore`, owners zeroed, modes
//! and times kept, as the docker CLI sends it), and the daemon's build events are printed as
//! `docker build --progress=plain` prints them, on stderr; `-q` prints only the image ID.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use berth_engine::build::context::IgnoreRules;
use berth_types::build::BuildEvent;
use berth_types::{HistoryEntry, ImageInspect};
use clap::Args;
use futures_util::TryStreamExt;
use http_body_util::BodyExt;
use hyper::Method;
use tokio::io::AsyncBufReadExt;

use super::client::{channel_body, path_segment, query, CliError, Client};
use super::format::{human_size, short_id, time_ago, Template};
use super::out;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name and optionally a tag (name:tag); may be given several times
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: PATH/Dockerfile)
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Set build-time variables (NAME=VALUE, or NAME to take it from the environment)
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    pub build_args: Vec<String>,
    /// Set metadata for the image (KEY=VALUE)
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Networking mode for the RUN instructions: none (default) or host
    #[arg(long)]
    pub network: Option<String>,
    /// Suppress the build output and print the image ID on success
    #[arg(short, long)]
    pub quiet: bool,
    /// Build context directory
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Print sizes and dates in human readable format (no `-H`: that is berth's global --host)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub human: bool,
    /// Format output: "table" (default), "json" (one JSON object per line), or a template
    /// such as 'table {{.ID}}\t{{.CreatedBy}}' or '{{.Size}}'
    #[arg(long)]
    pub format: Option<String>,
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

/// The name the Dockerfile gets in the context when it lives outside the context directory.
const OUTSIDE_DOCKERFILE: &str = ".berth-dockerfile";

/// `berth build PATH`.
pub async fn build(client: &Client, args: BuildArgs) -> Result<(), CliError> {
    let dir = args.path.clone();
    let meta = std::fs::metadata(&dir).map_err(|e| {
        CliError::Local(format!(
            "unable to prepare context: path {:?} not found: {e}",
            dir.display().to_string()
        ))
    })?;
    if !meta.is_dir() {
        return Err(CliError::Local(format!(
            "unable to prepare context: {} is not a directory",
            dir.display()
        )));
    }
    let dockerfile = args.file.clone().unwrap_or_else(|| dir.join("Dockerfile"));
    let (dockerfile_name, extra) = dockerfile_in_context(&dir, &dockerfile)?;
    let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
        Ok(text) => IgnoreRules::parse(&text).map_err(|e| CliError::Local(e.to_string()))?,
        Err(_) => IgnoreRules::default(),
    };

    let mut pairs: Vec<(&str, String)> = Vec::new();
    for t in &args.tags {
        pairs.push(("t", t.clone()));
    }
    pairs.push(("dockerfile", dockerfile_name.clone()));
    for a in &args.build_args {
        // `--build-arg NAME` takes the value from the environment, as Docker does.
        if !a.contains('=') {
            if let Ok(v) = std::env::var(a) {
                pairs.push(("buildarg", format!("{a}={v}")));
            }
            continue;
        }
        pairs.push(("buildarg", a.clone()));
    }
    for l in &args.labels {
        pairs.push(("label", l.clone()));
    }
    if args.no_cache {
        pairs.push(("nocache", "1".into()));
    }
    if let Some(t) = &args.target {
        pairs.push(("target", t.clone()));
    }
    if let Some(n) = &args.network {
        pairs.push(("network", n.clone()));
    }
    let path = format!("/api/v1/build{}", query(pairs.iter().map(|(k, v)| (*k, v.as_str()))));

    let body = pack_context(dir, ignore, extra);
    let response = client.request(Method::POST, &path, Some("application/x-tar"), body).await?;
    let stream = response.into_body().into_data_stream().map_err(std::io::Error::other);
    let mut lines = tokio::io::BufReader::new(tokio_util::io::StreamReader::new(stream)).lines();
    let started = Instant::now();
    let mut printer = Printer { quiet: args.quiet, last_step: 0 };
    while let Some(line) = lines
        .next_line()
        .await
        .map_err(|e| CliError::Local(format!("reading the daemon's build stream: {e}")))?
    {
        if line.trim().is_empty() {
            continue;
        }
        let event: BuildEvent = serde_json::from_str(&line)
            .map_err(|e| CliError::Local(format!("decoding the daemon's build stream: {e}")))?;
        match event {
            BuildEvent::Error { message, .. } => {
                printer.err(&format!("ERROR: {message}\n"));
                return Err(CliError::Daemon(message));
            }
            BuildEvent::Built { id, tags } => {
                let n = printer.last_step + 1;
                printer.err(&format!("#{n} exporting to image\n#{n} writing image {id} done\n"));
                for t in &tags {
                    let full = berth_engine::Reference::parse(t)
                        .map(|r| r.to_string())
                        .unwrap_or_else(|_| t.clone());
                    printer.err(&format!("#{n} naming to {full} done\n"));
                }
                printer.err(&format!("#{n} DONE {:.1}s\n", started.elapsed().as_secs_f64()));
                if args.quiet {
                    return out(&format!("{id}\n"));
                }
                return Ok(());
            }
            other => printer.show(other),
        }
    }
    Err(CliError::Local("the daemon's build stream ended without a result".into()))
}

/// Prints build events as `--progress=plain` does.
struct Printer {
    quiet: bool,
    last_step: usize,
}

impl Printer {
    fn err(&self, text: &str) {
        if !self.quiet {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(text.as_bytes());
            let _ = e.flush();
        }
    }

    fn show(&mut self, event: BuildEvent) {
        match event {
            BuildEvent::Step { step, stage, index, total, instruction, .. } => {
                self.last_step = step;
                self.err(&format!("#{step} [{stage} {index}/{total}] {instruction}\n"));
            }
            BuildEvent::Cached { step } => self.err(&format!("#{step} CACHED\n")),
            BuildEvent::Output { step, text, .. } => {
                for line in text.lines() {
                    self.err(&format!("#{step} {line}\n"));
                }
            }
            BuildEvent::Done { step, seconds } => self.err(&format!("#{step} DONE {seconds:.1}s\n")),
            BuildEvent::Warning { message } => self.err(&format!("[Warning] {message}\n")),
            BuildEvent::Built { .. } | BuildEvent::Error { .. } => {}
        }
    }
}

/// The Dockerfile's name inside the context, and its content when it lives outside the
/// context directory (then it is added to the tar under [`OUTSIDE_DOCKERFILE`]).
fn dockerfile_in_context(dir: &Path, dockerfile: &Path) -> Result<(String, Option<Vec<u8>>), CliError> {
    let canonical_dir =
        std::fs::canonicalize(dir).map_err(|e| CliError::Local(format!("{}: {e}", dir.display())))?;
    let canonical_file = std::fs::canonicalize(dockerfile).map_err(|_| {
        CliError::Local(format!(
            "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: no such file or directory",
            dockerfile.display()
        ))
    })?;
    match canonical_file.strip_prefix(&canonical_dir) {
        Ok(rel) => Ok((rel.to_string_lossy().into_owned(), None)),
        Err(_) => {
            let text = std::fs::read(&canonical_file)
                .map_err(|e| CliError::Local(format!("reading {}: {e}", dockerfile.display())))?;
            Ok((OUTSIDE_DOCKERFILE.into(), Some(text)))
        }
    }
}

/// Tars the context directory into the request body, on a blocking thread.
fn pack_context(dir: PathBuf, ignore: IgnoreRules, extra: Option<Vec<u8>>) -> super::client::RequestBody {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        let writer = std::io::BufWriter::with_capacity(256 * 1024, ChunkWriter(tx.clone()));
        let mut builder = tar::Builder::new(writer);
        let result = pack_children(&mut builder, &dir, "", &ignore)
            .and_then(|()| {
                if let Some(text) = &extra {
                    let mut h = tar::Header::new_gnu();
                    h.set_size(text.len() as u64);
                    h.set_mode(0o644);
                    h.set_entry_type(tar::EntryType::Regular);
                    builder.append_data(&mut h, OUTSIDE_DOCKERFILE, &text[..])?;
                }
                builder.finish()
            })
            .and_then(|()| builder.into_inner().map(|_| ()).map_err(std::io::Error::other));
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(std::io::Error::other(format!("packing the build context: {e}"))));
        }
    });
    let chunks =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    channel_body(chunks)
}

fn pack_children<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: &Path,
    rel: &str,
    ignore: &IgnoreRules,
) -> std::io::Result<()> {
    let mut names: Vec<_> =
        std::fs::read_dir(dir)?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let rel = if rel.is_empty() {
            name.to_string_lossy().into_owned()
        } else {
            format!("{rel}/{}", name.to_string_lossy())
        };
        let meta = std::fs::symlink_metadata(&path)?;
        let excluded = ignore.excluded(&rel) && rel != "Dockerfile" && rel != ".dockerignore";
        if excluded && !meta.is_dir() {
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        h.set_uid(0);
        h.set_gid(0);
        let _ = h.set_username("");
        let _ = h.set_groupname("");
        let ft = meta.file_type();
        if ft.is_dir() {
            if !excluded {
                h.set_size(0);
                builder.append_data(&mut h, format!("{rel}/"), std::io::empty())?;
            }
            // Exceptions (`!pattern`) may re-include paths below an excluded directory.
            pack_children(builder, &path, &rel, ignore)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&path)?;
            h.set_size(0);
            builder.append_link(&mut h, &rel, target)?;
        } else if ft.is_file() {
            let file = std::fs::File::open(&path)?;
            builder.append_data(&mut h, &rel, file)?;
        }
        // Sockets, FIFOs and devices are not sent (Docker skips them too).
    }
    Ok(())
}

/// `std::io::Write` into a channel of body chunks.
pub(crate) struct ChunkWriter(pub(crate) tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>);

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(bytes::Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the request ended"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The fields of one `history` row, as Docker's `--format` knows them, and their table headers.
const HISTORY_FIELDS: [(&str, &str); 6] = [
    ("Comment", "COMMENT"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("CreatedSince", "CREATED"),
    ("ID", "IMAGE"),
    ("Size", "SIZE"),
];

/// Docker's default `history` table.
const HISTORY_TABLE: &str = "table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}";

/// `berth history IMAGE`: the image's layers, newest first, through `--format` if given (`-q`
/// counts only without it, as with Docker).
pub async fn history(client: &Client, args: HistoryArgs) -> Result<(), CliError> {
    let template = Template::for_list(args.format.as_deref(), HISTORY_TABLE, &HISTORY_FIELDS)
        .map_err(CliError::Usage)?;
    let name = path_segment(&args.image);
    let image: ImageInspect = client.get_json(&format!("/api/v1/images/{name}")).await?;
    let entries: Vec<HistoryEntry> = client.get_json(&format!("/api/v1/images/{name}/history")).await?;
    let id = if args.no_trunc { image.id.clone() } else { short_id(&image.id).to_string() };
    if args.quiet && args.format.is_none() {
        let mut text = String::new();
        for (i, _) in entries.iter().enumerate() {
            text.push_str(if i == 0 { &id } else { "<missing>" });
            text.push('\n');
        }
        return out(&text);
    }
    let now = chrono::Utc::now();
    let mut lines = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        // Docker's `time.RFC3339` of the creation second.
        let created_at = chrono::DateTime::parse_from_rfc3339(&e.created)
            .map(|t| t.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        let mut created_by = e.created_by.replace(['\n', '\t'], " ");
        if !args.no_trunc && created_by.chars().count() > 45 {
            created_by = format!("{}…", created_by.chars().take(44).collect::<String>());
        }
        // The keys and values of Docker's `{{json .}}`, sorted as Go prints a map.
        let serde_json::Value::Object(fields) = serde_json::json!({
            "Comment": e.comment,
            "CreatedAt": created_at,
            "CreatedBy": created_by,
            "CreatedSince": if args.human { time_ago(&e.created, now) } else { created_at.clone() },
            "ID": if i == 0 { id.clone() } else { "<missing>".into() },
            "Size": if args.human { human_size(e.size) } else { e.size.to_string() },
        }) else {
            unreachable!("json! of an object is an object")
        };
        lines.push(template.render(&fields));
    }
    out(&template.output(lines, &HISTORY_FIELDS))
}

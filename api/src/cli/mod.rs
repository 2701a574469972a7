//! The command-line client: every subcommand but `serve` talks to the daemon's API, with
//! Docker's command names, flags, output and error wording.

pub mod admin;
pub mod build;
pub mod client;
pub mod compose;
pub mod containers;
pub mod format;
pub mod network;
pub mod opts;
pub mod registry;
pub mod search;
pub mod stream;
pub mod system;
pub mod volume;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use berth_types::{
    ImageDeleteItem, ImagePruneReport, ImageSummary, ImportReport, LoadReport, SystemInfo, TagRequest,
    VersionInfo,
};
use clap::{Args, Subcommand};
use hyper::Method;

use client::{
    channel_body, empty_body, json_body, path_segment, query, stream_body, CliError, Client, RequestBody,
};
use format::{
    created_at, familiar_repo_tag, glob_match, human_size, human_size_with_precision, short_id, time_ago,
    Template,
};

/// Image subcommands, under `berth image`.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Download an image from a registry
    Pull(registry::PullArgs),
    /// Upload an image to a registry
    Push(registry::PushArgs),
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
    /// Show the history of an image
    History(build::HistoryArgs),
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output: "table" (default), "json" (one JSON object per line), or a template
    /// such as 'table {{.Repository}}\t{{.Tag}}' or '{{.ID}}'
    #[arg(long)]
    pub format: Option<String>,
    /// Show only images of this repository (and tag); * and ? match as in Docker
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a Go template, e.g. '{{.Id}}' or '{{json .Config}}'
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "IMAGE")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true, value_name = "IMAGE")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change", value_name = "CHANGE")]
    pub changes: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long)]
    pub message: Option<String>,
    /// A rootfs tarball, or - for STDIN
    #[arg(value_name = "file|-")]
    pub file: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file (or an OCI image layout directory), instead of STDIN
    #[arg(short, long, value_name = "FILE|DIR")]
    pub input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file (or, for an existing directory or a path ending in /, an OCI image
    /// layout directory), instead of STDOUT
    #[arg(short, long, value_name = "FILE|DIR")]
    pub output: Option<PathBuf>,
    #[arg(required = true, value_name = "IMAGE")]
    pub names: Vec<String>,
}

/// Turns an error into Docker's way of reporting it: the message on stderr, exit code 1.
pub fn report(result: Result<(), CliError>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// Prints to stdout; a closed pipe (`berth images | head -1`) ends quietly as with Docker.
fn out(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::Local(format!("writing to stdout: {e}"))),
    }
}

/// The fields of one `images` row, as Docker's `--format` knows them, and their table headers.
const IMAGE_FIELDS: [(&str, &str); 11] = [
    ("Containers", "CONTAINERS"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedSince", "CREATED"),
    ("Digest", "DIGEST"),
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("SharedSize", "SHARED SIZE"),
    ("Size", "SIZE"),
    ("Tag", "TAG"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
];

/// Docker's default `images` table.
const IMAGES_TABLE: &str = "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}";

/// `berth images`, `berth image ls`.
pub async fn images(client: &Client, args: ImagesArgs) -> Result<(), CliError> {
    let template =
        Template::for_list(args.format.as_deref(), IMAGES_TABLE, &IMAGE_FIELDS).map_err(CliError::Usage)?;
    // No intermediate images exist without builds, so --all shows what the default shows.
    let _ = args.all;
    let images: Vec<ImageSummary> = client.get_json("/api/v1/images").await?;
    let now = chrono::Utc::now();
    let id_of = |id: &str| if args.no_trunc { id.to_string() } else { short_id(id).to_string() };

    let mut rows = Vec::new();
    for image in &images {
        let names: Vec<(String, String)> = if image.repo_tags.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            image.repo_tags.iter().map(|t| familiar_repo_tag(t)).collect()
        };
        for (repository, tag) in names {
            if let Some(filter) = &args.reference {
                if !matches_reference(filter, &repository, &tag) {
                    continue;
                }
            }
            rows.push((repository, tag, image));
        }
    }

    let mut text = String::new();
    if args.quiet {
        for (_, _, image) in &rows {
            text.push_str(&id_of(&image.id));
            text.push('\n');
        }
        return out(&text);
    }
    let mut lines = Vec::new();
    for (repository, tag, image) in rows {
        lines.push(template.render(&image_row(image, repository, tag, id_of(&image.id), now)));
    }
    out(&template.output(lines, &IMAGE_FIELDS))
}

/// One image as Docker's image formatter shows it (`images`, `system df -v`): the keys and
/// values of its `{{json .}}`, sorted as Go prints a map.
fn image_row(
    image: &ImageSummary,
    repository: String,
    tag: String,
    id: String,
    now: chrono::DateTime<chrono::Utc>,
) -> serde_json::Map<String, serde_json::Value> {
    let digest = image.repo_digests.first().and_then(|d| d.split_once('@')).map(|(_, d)| d.to_string());
    let serde_json::Value::Object(fields) = serde_json::json!({
        "Containers": "N/A",
        "CreatedAt": created_at(&image.created),
        "CreatedSince": time_ago(&image.created, now),
        "Digest": digest.unwrap_or_else(|| "<none>".into()),
        "ID": id,
        "Repository": repository,
        "SharedSize": "N/A",
        // Docker's two precisions: 3 digits for Size, 4 for VirtualSize.
        "Size": human_size_with_precision(image.size, 3),
        "Tag": tag,
        "UniqueSize": "N/A",
        "VirtualSize": human_size(image.size),
    }) else {
        unreachable!("json! of an object is an object")
    };
    fields
}

/// Docker's `images REPOSITORY[:TAG]` filter: the repository (and the tag, when given) match,
/// with `*` and `?` wildcards; `busybox` also matches `docker.io/library/busybox`.
fn matches_reference(filter: &str, repository: &str, tag: &str) -> bool {
    let last_slash = filter.rfind('/').map_or(0, |i| i + 1);
    let (repo_pattern, tag_pattern) = match filter[last_slash..].rfind(':') {
        Some(i) => (&filter[..last_slash + i], Some(&filter[last_slash + i + 1..])),
        None => (filter, None),
    };
    let repo_ok = glob_match(repo_pattern, repository)
        || berth_engine::Reference::parse(repository)
            .is_ok_and(|r| glob_match(repo_pattern, &r.repository()) || glob_match(repo_pattern, r.path()));
    repo_ok && tag_pattern.is_none_or(|t| glob_match(t, tag))
}

/// `berth image inspect`: `berth inspect --type image` (a JSON array of what was found, or
/// each through `--format`; every name not found is reported and makes the exit code 1).
pub async fn inspect(client: &Client, args: InspectArgs) -> Result<(), CliError> {
    let args = containers::InspectArgs { format: args.format, kind: Some("image".into()), names: args.names };
    containers::inspect(client, args).await
}

/// Prints what `inspect` found as Docker does: a JSON array indented with four spaces.
fn print_inspect_json(found: &impl serde::Serialize) -> Result<(), CliError> {
    let mut json = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut json, formatter);
    serde::Serialize::serialize(found, &mut ser).expect("inspect output serialises");
    json.push(b'\n');
    out(&String::from_utf8_lossy(&json))
}

/// Prints all but the last error; returns the last (printed by the caller).
fn last_error(mut errors: Vec<CliError>) -> Result<(), CliError> {
    let last = errors.pop();
    for e in errors {
        eprintln!("{e}");
    }
    last.map_or(Ok(()), Err)
}

/// `berth tag`.
pub async fn tag(client: &Client, args: TagArgs) -> Result<(), CliError> {
    let path = format!("/api/v1/images/{}/tag", path_segment(&args.source));
    client
        .request(
            Method::POST,
            &path,
            Some("application/json"),
            json_body(&TagRequest { target: args.target }),
        )
        .await?;
    Ok(())
}

/// `berth rmi`, `berth image rm`: each name in turn; failures are reported and the others go on.
pub async fn rmi(client: &Client, args: RmiArgs) -> Result<(), CliError> {
    let mut errors = Vec::new();
    for name in &args.names {
        let force = if args.force { "true" } else { "false" };
        let path = format!("/api/v1/images/{}{}", path_segment(name), query([("force", force)]));
        match client.call_json::<Vec<ImageDeleteItem>>(Method::DELETE, &path, None, empty_body()).await {
            Ok(items) => out(&delete_lines(&items, "Untagged", "Deleted"))?,
            Err(e @ CliError::Connect { .. }) => return Err(e),
            Err(e) => errors.push(e),
        }
    }
    last_error(errors)
}

pub(crate) fn delete_lines(items: &[ImageDeleteItem], untagged: &str, deleted: &str) -> String {
    let mut text = String::new();
    for item in items {
        match item {
            ImageDeleteItem::Untagged(r) => {
                let shown =
                    berth_engine::Reference::parse(r).map(|r| r.familiar()).unwrap_or_else(|_| r.clone());
                text.push_str(&format!("{untagged}: {shown}\n"));
            }
            ImageDeleteItem::Deleted(id) => text.push_str(&format!("{deleted}: {id}\n")),
        }
    }
    text
}

/// `berth image prune`: asks first unless `-f`, as Docker does.
pub async fn prune(client: &Client, args: PruneArgs) -> Result<(), CliError> {
    if !args.force {
        let warning = if args.all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        if !confirm(warning)? {
            return out("Total reclaimed space: 0B\n");
        }
    }
    let path = format!("/api/v1/images/prune{}", query(args.all.then_some(("all", "true"))));
    let report: ImagePruneReport = client.call_json(Method::POST, &path, None, empty_body()).await?;
    let mut text = String::new();
    if !report.images_deleted.is_empty() {
        text.push_str("Deleted Images:\n");
        text.push_str(&delete_lines(&report.images_deleted, "untagged", "deleted"));
        text.push('\n');
    }
    text.push_str(&format!("Total reclaimed space: {}\n", human_size(report.space_reclaimed)));
    out(&text)
}

/// Docker's prompt: anything but y/Y (including no input at all) is a no.
pub(crate) fn confirm(warning: &str) -> Result<bool, CliError> {
    out(&format!("{warning}\nAre you sure you want to continue? [y/N] "))?;
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| CliError::Local(format!("reading the answer: {e}")))?;
    Ok(matches!(answer.trim(), "y" | "Y"))
}

/// `berth import FILE|- [REF]`: streams the tarball to the daemon.
pub async fn import(client: &Client, args: ImportArgs) -> Result<(), CliError> {
    let (body, bar) = if args.file == "-" {
        upload(tokio::io::stdin(), None, "Importing", false)
    } else {
        let file = tokio::fs::File::open(&args.file)
            .await
            .map_err(|e| CliError::Local(format!("open {}: {e}", args.file)))?;
        let size = file.metadata().await.ok().map(|m| m.len());
        upload(file, size, "Importing", false)
    };
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    if let Some(r) = &args.reference {
        pairs.push(("reference", r));
    }
    for c in &args.changes {
        pairs.push(("change", c));
    }
    if let Some(m) = &args.message {
        pairs.push(("message", m));
    }
    let path = format!("/api/v1/images/import{}", query(pairs));
    let report = client.call_json::<ImportReport>(Method::POST, &path, Some("application/x-tar"), body).await;
    finish(bar);
    out(&format!("{}\n", report?.id))
}

/// `berth load [-i FILE|DIR]`: a directory (an OCI image layout) is packed into a tar on the fly.
pub async fn load(client: &Client, args: LoadArgs) -> Result<(), CliError> {
    // -q hides the progress bar; the result lines stay, as with Docker.
    let (body, bar) = match &args.input {
        None => {
            if std::io::stdin().is_terminal() {
                return Err(CliError::Usage("requested load from stdin, but stdin is empty".into()));
            }
            upload(tokio::io::stdin(), None, "Loading", args.quiet)
        }
        Some(path) if path.is_dir() => (pack_dir(path.clone()), None),
        Some(path) => {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| CliError::Local(format!("open {}: {e}", path.display())))?;
            let size = file.metadata().await.ok().map(|m| m.len());
            upload(file, size, "Loading", args.quiet)
        }
    };
    let report = client
        .call_json::<LoadReport>(Method::POST, "/api/v1/images/load", Some("application/x-tar"), body)
        .await;
    finish(bar);
    let report = report?;
    let mut text = String::new();
    for image in &report.loaded {
        match &image.reference {
            Some(r) => {
                let shown =
                    berth_engine::Reference::parse(r).map(|r| r.familiar()).unwrap_or_else(|_| r.clone());
                text.push_str(&format!("Loaded image: {shown}\n"));
            }
            None => text.push_str(&format!("Loaded image ID: {}\n", image.id)),
        }
    }
    out(&text)
}

/// A request body streaming `reader`, with a progress bar on stderr when it is a terminal
/// (and not `quiet`): bytes sent of `total`, or a running count when the size is unknown.
fn upload(
    reader: impl tokio::io::AsyncRead + Send + Sync + Unpin + 'static,
    total: Option<u64>,
    what: &'static str,
    quiet: bool,
) -> (RequestBody, Option<indicatif::ProgressBar>) {
    if quiet || !std::io::stderr().is_terminal() {
        return (stream_body(reader), None);
    }
    let (bar, template) = match total {
        Some(total) => {
            (indicatif::ProgressBar::new(total), "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec})")
        }
        None => (indicatif::ProgressBar::no_length(), "{msg} {bytes} ({bytes_per_sec})"),
    };
    let style =
        indicatif::ProgressStyle::with_template(template).expect("valid template").progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what);
    (stream_body(bar.wrap_async_read(reader)), Some(bar))
}

fn finish(bar: Option<indicatif::ProgressBar>) {
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

/// A tar of `dir`, produced by a blocking thread while the request streams it. When packing
/// fails half-way, the body ends in an error, so the request is cut off and the daemon never
/// takes the part it got for a whole archive.
fn pack_dir(dir: PathBuf) -> RequestBody {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        let writer = std::io::BufWriter::with_capacity(256 * 1024, ChannelWriter(tx.clone()));
        let packed = berth_engine::archive::pack_dir(&dir, writer).and_then(|w| {
            w.into_inner().map_err(|e| berth_engine::Error::InvalidInput(e.error().to_string()))
        });
        if let Err(e) = packed {
            let _ = tx.blocking_send(Err(std::io::Error::other(format!("packing {}: {e}", dir.display()))));
        }
    });
    let chunks =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    channel_body(chunks)
}

/// `std::io::Write` into a channel of body chunks, for blocking producers.
struct ChannelWriter(tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>);

impl std::io::Write for ChannelWriter {
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

/// `berth save`: to a file (written atomically), a directory (unpacked), or stdout.
pub async fn save(client: &Client, args: SaveArgs) -> Result<(), CliError> {
    let target = match &args.output {
        None => {
            if std::io::stdout().is_terminal() {
                return Err(CliError::Usage(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
                ));
            }
            SaveTarget::Stdout
        }
        Some(p) if p.is_dir() || p.as_os_str().to_string_lossy().ends_with('/') => SaveTarget::Dir(p.clone()),
        Some(p) => SaveTarget::File(p.clone()),
    };
    let path = format!("/api/v1/images/save{}", query(args.names.iter().map(|n| ("name", n.as_str()))));
    let response = client.request(Method::GET, &path, None, empty_body()).await?;
    let body = response_reader(response);
    match target {
        SaveTarget::Stdout => {
            let mut body = body;
            tokio::io::copy(&mut { body }, &mut tokio::io::stdout())
                .await
                .map_err(|e| CliError::Local(format!("saving: {e}")))?;
            Ok(())
        }
        SaveTarget::File(path) => save_to_file(body, &path).await,
        SaveTarget::Dir(dir) => tokio::task::spawn_blocking(move || {
            let bridge = tokio_util::io::SyncIoBridge::new(body);
            berth_engine::archive::unpack_into_dir(bridge, &dir)
                .map_err(|e| CliError::Local(format!("saving into {}: {e}", dir.display())))
        })
        .await
        .map_err(|e| CliError::Local(format!("saving: {e}")))?,
    }
}

enum SaveTarget {
    Stdout,
    File(PathBuf),
    Dir(PathBuf),
}

/// Writes to a temporary file beside `path` and renames it into place only when the whole
/// stream arrived, so an interrupted save never leaves a truncated tar under the name.
async fn save_to_file(mut body: impl tokio::io::AsyncRead + Unpin, path: &Path) -> Result<(), CliError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name =
        path.file_name().ok_or_else(|| CliError::Usage(format!("invalid output file {}", path.display())))?;
    let tmp = dir.join(format!(".{}.berth-save-{}", name.to_string_lossy(), std::process::id()));
    let result = async {
        let mut file = tokio::fs::File::create(&tmp).await?;
        tokio::io::copy(&mut body, &mut file).await?;
        file.sync_all().await?;
        tokio::fs::rename(&tmp, path).await
    }
    .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(CliError::Local(format!("saving to {}: {e}", path.display())));
    }
    Ok(())
}

/// The response body as an `AsyncRead`; a body cut short is an error, not an end.
pub(crate) fn response_reader(
    response: hyper::Response<hyper::body::Incoming>,
) -> impl tokio::io::AsyncRead + Send + Unpin {
    use futures_util::TryStreamExt;
    use http_body_util::BodyExt;
    let stream = response.into_body().into_data_stream().map_err(std::io::Error::other);
    tokio_util::io::StreamReader::new(stream)
}

#[derive(clap::Args, Debug)]
pub struct VersionArgs {
    /// Format the output using the given Go template (`{{.Server.Version}}`, `{{json .}}`)
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// Format the output using the given Go template (`{{.ServerVersion}}`, `{{json .}}`)
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

/// `berth version`: the client's part always, the daemon's when it answers.
pub async fn version(client: &Client, args: VersionArgs) -> Result<(), CliError> {
    if let Some(format) = args.format {
        let template = containers::InspectTemplate::parse(&format).map_err(CliError::Usage)?;
        let server = client.get_json::<VersionInfo>("/api/v1/version").await;
        // Docker's names for the client's part, so the same templates work.
        let object = serde_json::json!({
            "Client": {
                "Version": env!("CARGO_PKG_VERSION"),
                "ApiVersion": crate::serve::API_VERSION,
                "Os": std::env::consts::OS,
                "Arch": crate::serve::go_arch(std::env::consts::ARCH),
            },
            "Server": server.as_ref().ok(),
        });
        out(&format!("{}\n", template.render(&object)?))?;
        return server.map(drop);
    }
    let mut text = String::new();
    text.push_str("Client:\n");
    text.push_str(&format!(" Version:           {}\n", env!("CARGO_PKG_VERSION")));
    text.push_str(&format!(" API version:       {}\n", crate::serve::API_VERSION));
    text.push_str(&format!(
        " OS/Arch:           {}/{}\n",
        std::env::consts::OS,
        crate::serve::go_arch(std::env::consts::ARCH)
    ));
    out(&text)?;
    let server: VersionInfo = client.get_json("/api/v1/version").await?;
    out(&format!(
        "\nServer:\n Version:           {}\n API version:       {}\n OS/Arch:           {}/{}\n",
        server.version, server.api_version, server.os, server.arch
    ))
}

/// `berth info`.
pub async fn info(client: &Client, args: InfoArgs) -> Result<(), CliError> {
    let info: SystemInfo = client.get_json("/api/v1/info").await?;
    if let Some(format) = args.format {
        let template = containers::InspectTemplate::parse(&format).map_err(CliError::Usage)?;
        let mut object = serde_json::to_value(&info).map_err(|e| CliError::Local(e.to_string()))?;
        // Docker's names of the same facts, so its users' templates work.
        if let serde_json::Value::Object(map) = &mut object {
            map.insert("ServerVersion".into(), info.version.clone().into());
            map.insert("Driver".into(), info.snapshotter.clone().into());
            map.insert("DockerRootDir".into(), info.root.clone().into());
        }
        return out(&format!("{}\n", template.render(&object)?));
    }
    out(&format!(
        "Server Version: {}\nImages: {}\nStorage Driver: {}\nBerth Root Dir: {}\nRun Dir: {}\n\
         Content Store Size: {}\nLayers Size: {}\n",
        info.version,
        info.images,
        info.snapshotter,
        info.root,
        info.run_dir,
        human_size(info.blobs_size),
        human_size(info.layers_size),
    ))
}

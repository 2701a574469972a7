//! `berth cp`: files between a container and the local file system, with docker cp's rules for
//! what the copy is named (a directory copied to a path that does not exist takes that name, a
//! file copied onto a file replaces it, `dir/.` copies the directory's contents, `-` is a tar on
//! stdin or stdout). The local side is packed and unpacked here with the `tar` crate; the
//! daemon does the container's side.

use std::io::IsTerminal;
use std::path::{Component, Path, PathBuf};

use berth_types::PathStat;
use clap::Args;
use hyper::Method;

use super::container_path;
use crate::cli::build::ChunkWriter;
use crate::cli::client::{channel_body, empty_body, query, stream_body, CliError, Client};

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short, long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH or SRC_PATH|-
    #[arg(value_name = "SRC")]
    pub source: String,
    /// CONTAINER:DEST_PATH or DEST_PATH|-
    #[arg(value_name = "DEST")]
    pub destination: String,
}

/// One side of a copy.
enum Side {
    Local(String),
    Container { name: String, path: String },
}

/// docker cp's reading: a path that starts with `/` or `.` is local even with a `:` in it.
fn side(arg: &str) -> Side {
    if arg.starts_with('/') || arg.starts_with('.') {
        return Side::Local(arg.to_string());
    }
    match arg.split_once(':') {
        Some((name, path)) if !name.is_empty() => {
            Side::Container { name: name.to_string(), path: path.to_string() }
        }
        _ => Side::Local(arg.to_string()),
    }
}

pub async fn cp(client: &Client, args: CpArgs) -> Result<(), CliError> {
    match (side(&args.source), side(&args.destination)) {
        (Side::Container { .. }, Side::Container { .. }) => {
            Err(CliError::Usage("copying between containers is not supported".into()))
        }
        (Side::Local(_), Side::Local(_)) => {
            Err(CliError::Usage("must specify at least one container source".into()))
        }
        (Side::Container { name, path }, Side::Local(dest)) => {
            from_container(client, &args, &name, &path, &dest).await
        }
        (Side::Local(source), Side::Container { name, path }) => {
            to_container(client, &args, &source, &name, &path).await
        }
    }
}

/// A container path as docker cp sends it: absolute (relative to `/`), a trailing `/` or `/.`
/// kept.
fn container_abs(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

async fn stat(client: &Client, name: &str, path: &str) -> Result<PathStat, CliError> {
    let at = container_path(name, &format!("/archive{}", query([("path", path)])));
    // A HEAD answer has no body, so no message: Docker's CLI words it.
    let response = client.send(Method::HEAD, &at, None, empty_body()).await?;
    match response.status() {
        s if s.is_success() => decode_stat(response.headers()),
        hyper::StatusCode::NOT_FOUND => {
            Err(CliError::NotFound(format!("No such container:path: {name}:{path}")))
        }
        _ => Err(crate::cli::client::error_response(response).await),
    }
}

fn decode_stat(headers: &hyper::HeaderMap) -> Result<PathStat, CliError> {
    use base64::Engine as _;
    let value = headers
        .get(berth_types::PATH_STAT_HEADER)
        .ok_or_else(|| CliError::Local("the daemon sent no path stat".into()))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.as_bytes())
        .map_err(|e| CliError::Local(format!("a bad path stat: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| CliError::Local(format!("a bad path stat: {e}")))
}

async fn from_container(
    client: &Client,
    args: &CpArgs,
    name: &str,
    path: &str,
    dest: &str,
) -> Result<(), CliError> {
    let mut source = container_abs(path);
    let mut rename = None;
    if args.follow_link {
        let stat = stat(client, name, &source).await?;
        if stat.is_symlink() {
            // The copy keeps the link's name.
            rename = Some(stat.name.clone());
            source = stat.link_target.clone();
        }
    }
    let response = client
        .request(
            Method::GET,
            &container_path(name, &format!("/archive{}", query([("path", source.as_str())]))),
            None,
            empty_body(),
        )
        .await?;
    let stat = decode_stat(response.headers())?;
    let body = crate::cli::response_reader(response);
    if dest == "-" {
        let mut body = body;
        tokio::io::copy(&mut body, &mut tokio::io::stdout())
            .await
            .map_err(|e| CliError::Local(format!("copying to stdout: {e}")))?;
        return Ok(());
    }
    let wanted = rename.unwrap_or_else(|| stat.name.clone());
    let plan = local_destination(dest, stat.is_dir(), &stat.name, &wanted, source.ends_with("/."))?;
    let bridge = tokio_util::io::SyncIoBridge::new(body);
    let copied = tokio::task::spawn_blocking(move || unpack(bridge, &plan))
        .await
        .map_err(|e| CliError::Local(format!("copying: {e}")))??;
    if !args.quiet && std::io::stderr().is_terminal() {
        eprintln!("Successfully copied {} to {dest}", berth_types::format::human_size(copied));
    }
    Ok(())
}

/// Where entries of the container's archive go: `dir`, with the archive's top entry `from`
/// renamed `to`.
struct LocalPlan {
    dir: PathBuf,
    from: String,
    to: Option<String>,
}

/// docker cp's decision for a local destination (`PrepareArchiveCopy`): the archive's top entry
/// is `top`; copied into a directory it is named `wanted` (a followed link's own name).
fn local_destination(
    dest: &str,
    source_is_dir: bool,
    top: &str,
    wanted: &str,
    contents: bool,
) -> Result<LocalPlan, CliError> {
    let path = Path::new(dest);
    // The root's entries (`/bin`, ...) go in as a directory's contents do.
    let contents = contents || top == "/";
    let from = if contents { ".".to_string() } else { top.to_string() };
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(LocalPlan {
            dir: path.to_path_buf(),
            from: from.clone(),
            to: (wanted != from && !contents).then(|| wanted.to_string()),
        }),
        Ok(_) if source_is_dir => Err(CliError::Local("cannot copy a directory to a file".into())),
        Ok(_) => Ok(LocalPlan { dir: parent_of(path), from, to: Some(base_of(path)?) }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = parent_of(path);
            if !parent.is_dir() {
                return Err(CliError::Local(format!("no such directory: {}", parent.display())));
            }
            if !source_is_dir && dest.ends_with('/') {
                return Err(CliError::Local(format!("no such directory: {dest}")));
            }
            Ok(LocalPlan { dir: parent, from, to: Some(base_of(path)?) })
        }
        Err(e) => Err(CliError::Local(format!("{dest}: {e}"))),
    }
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn base_of(path: &Path) -> Result<String, CliError> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| CliError::Usage(format!("invalid destination {}", path.display())))
}

/// An entry's path after the top entry's renaming; `None` for what is not below the top entry.
fn rebased(name: &str, plan: &LocalPlan) -> Option<PathBuf> {
    let clean: Vec<&str> = name.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    let mut out = PathBuf::new();
    if plan.from == "." {
        if let Some(to) = &plan.to {
            out.push(to);
        }
        clean.iter().for_each(|c| out.push(c));
        return Some(out);
    }
    let (first, rest) = clean.split_first()?;
    if *first != plan.from {
        return None;
    }
    out.push(plan.to.as_deref().unwrap_or(first));
    rest.iter().for_each(|c| out.push(c));
    Some(out)
}

/// Unpacks the container's archive locally; returns the bytes of file content written.
fn unpack(reader: impl std::io::Read, plan: &LocalPlan) -> Result<u64, CliError> {
    let fail = |e: std::io::Error| CliError::Local(format!("copying into {}: {e}", plan.dir.display()));
    let root = std::fs::canonicalize(&plan.dir).map_err(fail)?;
    let mut archive = tar::Archive::new(reader);
    let mut copied = 0;
    // Directories get their modes and times at the end, once nothing more is written in them.
    let mut dirs = Vec::new();
    for entry in archive.entries().map_err(fail)? {
        let mut entry = entry.map_err(fail)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if name.split('/').any(|c| c == "..") {
            return Err(CliError::Local(format!("invalid entry in the archive: {name}")));
        }
        let Some(rel) = rebased(&name, plan) else { continue };
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(CliError::Local(format!("invalid entry in the archive: {name}")));
        }
        let target = root.join(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(fail)?;
            // Nothing is written through a link that leads out of the destination.
            let real = std::fs::canonicalize(parent).map_err(fail)?;
            if !real.starts_with(&root) {
                return Err(CliError::Local(format!(
                    "{name}: the path leads outside {}",
                    plan.dir.display()
                )));
            }
        }
        let kind = entry.header().entry_type();
        match std::fs::symlink_metadata(&target) {
            Ok(meta) if meta.is_dir() && kind.is_dir() => {}
            Ok(meta) if meta.is_dir() => {
                return Err(CliError::Local(format!(
                    "cannot overwrite directory {} with non-directory",
                    target.display()
                )))
            }
            Ok(_) if kind.is_dir() => {
                return Err(CliError::Local(format!(
                    "cannot overwrite non-directory {} with directory",
                    target.display()
                )))
            }
            // A file or link there is replaced, never written through.
            Ok(_) => std::fs::remove_file(&target).map_err(fail)?,
            Err(_) => {}
        }
        if kind.is_dir() {
            std::fs::create_dir_all(&target).map_err(fail)?;
            let header = entry.header();
            dirs.push((target, header.mode().unwrap_or(0o755), header.mtime().unwrap_or(0)));
            continue;
        }
        if kind.is_file() {
            copied += entry.size();
        }
        entry.set_preserve_permissions(true);
        entry.set_preserve_mtime(true);
        entry.unpack(&target).map_err(fail)?;
    }
    for (dir, mode, mtime) in dirs.into_iter().rev() {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode & 0o7777));
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
        if let Ok(file) = std::fs::File::open(&dir) {
            let _ = file.set_times(std::fs::FileTimes::new().set_modified(time).set_accessed(time));
        }
    }
    Ok(copied)
}

async fn to_container(
    client: &Client,
    args: &CpArgs,
    source: &str,
    name: &str,
    path: &str,
) -> Result<(), CliError> {
    let mut dest = container_abs(path);
    // What the destination is; a missing one is fine if its parent exists (the daemon says).
    let mut found = stat(client, name, &dest).await;
    if let Ok(s) = &found {
        if s.is_symlink() {
            dest = s.link_target.clone();
            found = stat(client, name, &dest).await;
        }
    }
    let existing = match found {
        Ok(s) => Some(s),
        Err(CliError::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    if let Some(s) = &existing {
        let kind = s.mode & 0o170000;
        if kind != 0o040000 && kind != 0o100000 {
            return Err(CliError::Local(format!(
                "destination \"{name}:{path}\" must be a directory or a regular file"
            )));
        }
    }
    let dest_is_dir = existing.as_ref().is_some_and(PathStat::is_dir);
    let options = [
        ("path", String::new()),
        ("no_overwrite_dir_non_dir", "1".to_string()),
        ("copy_uid_gid", if args.archive { "1" } else { "0" }.to_string()),
    ];
    let (dir, body) = if source == "-" {
        if !dest_is_dir {
            return Err(CliError::Local(format!("destination \"{name}:{path}\" must be a directory")));
        }
        (dest.clone(), stream_body(tokio::io::stdin()))
    } else {
        let plan = container_destination(source, args.follow_link, &dest, existing.as_ref())?;
        let dir = plan.dir.clone();
        (dir, pack(plan))
    };
    let mut pairs: Vec<(&str, &str)> = options.iter().map(|(k, v)| (*k, v.as_str())).collect();
    pairs[0].1 = &dir;
    let response = client
        .request(
            Method::PUT,
            &container_path(name, &format!("/archive{}", query(pairs))),
            Some("application/x-tar"),
            body,
        )
        .await?;
    drop(response);
    if !args.quiet && std::io::stderr().is_terminal() {
        eprintln!("Successfully copied to {name}:{path}");
    }
    Ok(())
}

/// What is packed for the container: the local `source` (contents only for `dir/.`) named
/// `name`, extracted into the container's `dir`.
struct UploadPlan {
    source: PathBuf,
    /// Follow the source if it is a symlink (`-L`, or a trailing `/`).
    follow: bool,
    contents: bool,
    name: String,
    dir: String,
}

/// docker cp's decision for a container destination (`PrepareArchiveCopy`).
fn container_destination(
    source: &str,
    follow_link: bool,
    dest: &str,
    existing: Option<&PathStat>,
) -> Result<UploadPlan, CliError> {
    let path = Path::new(source);
    let follow = follow_link || source.ends_with('/');
    let meta = if follow { std::fs::metadata(path) } else { std::fs::symlink_metadata(path) }
        .map_err(|e| CliError::Local(format!("{}: {e}", source)))?;
    let contents = source.ends_with("/.");
    if (source.ends_with('/') || contents) && !meta.is_dir() {
        return Err(CliError::Local(format!("{source}: not a directory")));
    }
    let base = if contents {
        ".".to_string()
    } else {
        Path::new(source.trim_end_matches('/'))
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| ".".to_string())
    };
    let dest_parent = match dest.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/".to_string(),
        Some((p, _)) => p.to_string(),
    };
    let dest_base = dest.trim_end_matches('/').rsplit('/').next().unwrap_or("").to_string();
    let (dir, name) = match existing {
        Some(s) if s.is_dir() => (dest.to_string(), base),
        Some(_) if meta.is_dir() => return Err(CliError::Local("cannot copy a directory to a file".into())),
        Some(_) => (dest_parent, dest_base),
        None if !meta.is_dir() && dest.ends_with('/') => {
            return Err(CliError::Local(format!("no such directory: {dest}")));
        }
        None => (dest_parent, dest_base),
    };
    Ok(UploadPlan { source: path.to_path_buf(), follow, contents, name, dir })
}

/// Tars the local side into the request body, on a blocking thread; a failure cuts the body
/// short with an error, so the daemon never takes half a tar for a whole one.
fn pack(plan: UploadPlan) -> crate::cli::client::RequestBody {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        let writer = std::io::BufWriter::with_capacity(256 * 1024, ChunkWriter(tx.clone()));
        let mut builder = tar::Builder::new(writer);
        // Links inside are archived as links; only the source itself is followed, when asked.
        builder.follow_symlinks(false);
        let result = (|| {
            let source = if plan.follow { std::fs::canonicalize(&plan.source)? } else { plan.source.clone() };
            let meta = std::fs::symlink_metadata(&source)?;
            // `dir/.` into an existing directory: the contents; to a new name: the directory so named.
            if plan.contents && plan.name == "." {
                let mut children: Vec<_> = std::fs::read_dir(&source)?.collect::<Result<_, _>>()?;
                children.sort_by_key(|e| e.file_name());
                for entry in children {
                    if entry.file_type()?.is_dir() {
                        builder.append_dir_all(entry.file_name(), entry.path())?;
                    } else {
                        builder.append_path_with_name(entry.path(), entry.file_name())?;
                    }
                }
            } else if meta.is_dir() {
                builder.append_dir_all(&plan.name, &source)?;
            } else {
                builder.append_path_with_name(&source, &plan.name)?;
            }
            builder.finish()?;
            builder.into_inner().map(|_| ()).map_err(std::io::Error::other)
        })();
        if let Err(e) = result {
            let _ = tx
                .blocking_send(Err(std::io::Error::other(format!("packing {}: {e}", plan.source.display()))));
        }
    });
    let chunks =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    channel_body(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_read_like_docker_cp() {
        assert!(
            matches!(side("web:/etc"), Side::Container { ref name, ref path } if name == "web" && path == "/etc")
        );
        assert!(matches!(side("./a:b"), Side::Local(_)));
        assert!(matches!(side("/tmp/x"), Side::Local(_)));
        assert!(matches!(side("-"), Side::Local(_)));
        assert!(matches!(side("file"), Side::Local(_)));
    }

    #[test]
    fn entries_are_renamed_as_the_destination_asks() {
        let plan = LocalPlan { dir: PathBuf::from("/x"), from: "etc".into(), to: Some("copy".into()) };
        assert_eq!(rebased("etc/", &plan), Some(PathBuf::from("copy")));
        assert_eq!(rebased("etc/passwd", &plan), Some(PathBuf::from("copy/passwd")));
        assert_eq!(rebased("other", &plan), None);
        let contents = LocalPlan { dir: PathBuf::from("/x"), from: ".".into(), to: None };
        assert_eq!(rebased("./", &contents), Some(PathBuf::new()));
        assert_eq!(rebased("passwd", &contents), Some(PathBuf::from("passwd")));
    }
}

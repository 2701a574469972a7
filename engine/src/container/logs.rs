//! Reading a container's log file (JSON lines of [`LogEntry`], appended by its monitor).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_types::container::LogEntry;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::LogOptions;
use crate::error::{Error, Result};
use crate::monitor::log_file::log_files;

/// How often a followed log is checked for new lines.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(100);

/// Whether an entry passes the stream and time filters.
pub(crate) fn wanted(entry: &LogEntry, options: &LogOptions) -> bool {
    let stream_ok = match entry.stream.as_str() {
        "stderr" => options.stderr,
        _ => options.stdout,
    };
    if !stream_ok {
        return false;
    }
    if options.since.is_none() && options.until.is_none() {
        return true;
    }
    let Ok(time) = DateTime::parse_from_rfc3339(&entry.time) else { return true };
    let time = time.with_timezone(&Utc);
    options.since.is_none_or(|since| time >= since) && options.until.is_none_or(|until| time < until)
}

fn parse(line: &str, path: &Path) -> Result<LogEntry> {
    serde_json::from_str(line)
        .map_err(|e| Error::InvalidInput(format!("corrupt log line in {}: {e}", path.display())))
}

/// The log's files oldest first (rotated ones, then the current one), opened, with their inode
/// numbers. Opened again when a rotation renamed them meanwhile, so no file is skipped or read
/// twice. A file that does not exist (yet, or any more) is left out.
fn open_files(path: &Path) -> Result<Vec<(File, u64)>> {
    let mut opened = Vec::new();
    for _ in 0..10 {
        opened.clear();
        let names = log_files(path);
        for name in &names {
            match File::open(name) {
                Ok(f) => {
                    let ino =
                        f.metadata().map_err(|e| Error::io(format!("reading {}", name.display()), e))?.ino();
                    opened.push((f, ino));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("opening {}", name.display()), e)),
            }
        }
        let now: Vec<u64> = log_files(path).iter().filter_map(|n| inode(n)).collect();
        if now == opened.iter().map(|(_, ino)| *ino).collect::<Vec<_>>() {
            break;
        }
    }
    Ok(opened)
}

fn inode(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// Reads the entries already written (filtered, the last `tail` of them), across the rotated
/// files and the current one; returns them, the offset where the next complete line of the
/// current file starts, and that file open to follow it with (a log followed after its
/// container was removed is read to its end: Docker's clients remove the container before they
/// read what they followed, as docker-py's `containers.run`).
pub(crate) fn read_existing(path: &Path, options: &LogOptions) -> Result<(Vec<LogEntry>, u64, Option<File>)> {
    let mut files = open_files(path)?;
    let Some((current, _)) = files.pop() else { return Ok((Vec::new(), 0, None)) };
    let mut kept: VecDeque<LogEntry> = VecDeque::new();
    let mut keep = |entry: LogEntry| {
        if wanted(&entry, options) {
            kept.push_back(entry);
            if let Some(tail) = options.tail {
                if kept.len() > tail {
                    kept.pop_front();
                }
            }
        }
    };
    for (mut file, _) in files {
        read_lines(&mut file, path, 0, &mut keep)?;
    }
    let mut current = current;
    let offset = read_lines(&mut current, path, 0, &mut keep)?;
    if options.tail == Some(0) {
        kept.clear();
    }
    Ok((kept.into(), offset, Some(current)))
}

/// Follows the log from `offset`, sending entries until `running` says the container stopped
/// (then the rest is sent) or the receiver goes away. When the log is rotated, the file being
/// read is read to its end, then the files after it.
pub(crate) async fn follow(
    path: PathBuf,
    mut file: Option<File>,
    mut offset: u64,
    options: LogOptions,
    tx: mpsc::Sender<Result<LogEntry>>,
    running: impl Fn() -> bool + Send + 'static,
) {
    loop {
        // Decide before reading: what was written before the container stopped is all read.
        let live = running();
        let (path2, options2) = (path.clone(), options.clone());
        let open = file.take();
        let read = tokio::task::spawn_blocking(move || read_more(&path2, open, offset, &options2)).await;
        let (entries, next) = match read {
            Ok(Ok((entries, next, f))) => {
                file = f;
                (entries, next)
            }
            Ok(Err(e)) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
            Err(_) => return,
        };
        offset = next;
        for entry in entries {
            if tx.send(Ok(entry)).await.is_err() {
                return;
            }
        }
        if !live {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_INTERVAL) => {}
            _ = tx.closed() => return,
        }
    }
}

/// One round of a follow: the complete lines after `offset` in `open` (or in the log, when it
/// was not there yet), and those of the files a rotation started since.
fn read_more(
    path: &Path,
    open: Option<File>,
    offset: u64,
    options: &LogOptions,
) -> Result<(Vec<LogEntry>, u64, Option<File>)> {
    let mut entries = Vec::new();
    let mut keep = |entry: LogEntry| {
        if wanted(&entry, options) {
            entries.push(entry);
        }
    };
    let Some(mut file) = open else {
        return match File::open(path) {
            Ok(mut f) => {
                let next = read_lines(&mut f, path, 0, &mut keep)?;
                Ok((entries, next, Some(f)))
            }
            // Not written yet.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((entries, 0, None)),
            Err(e) => Err(Error::io(format!("opening {}", path.display()), e)),
        };
    };
    let ino = file.metadata().map_err(|e| Error::io(format!("reading {}", path.display()), e))?.ino();
    // Checked before reading: once rotated, the file gets no more lines, so reading it to its
    // end now reads all of it. (A log removed with its container is not a rotation.)
    let rotated = inode(path).is_some_and(|now| now != ino);
    let next = read_lines(&mut file, path, offset, &mut keep)?;
    if !rotated {
        return Ok((entries, next, Some(file)));
    }
    let mut files = open_files(path)?;
    // The files after ours; all of them when ours was already deleted by further rotations.
    let after = files.iter().position(|(_, i)| *i == ino).map_or(0, |p| p + 1);
    let Some((mut current, _)) = files.pop() else { return Ok((entries, next, Some(file))) };
    if after > files.len() {
        // Ours is the current one after all.
        return Ok((entries, next, Some(file)));
    }
    for (mut rotated, _) in files.drain(after..) {
        read_lines(&mut rotated, path, 0, &mut keep)?;
    }
    let next = read_lines(&mut current, path, 0, &mut keep)?;
    Ok((entries, next, Some(current)))
}

/// Passes every complete line from `offset` on to `keep`; returns the offset after the last
/// one (a line the monitor is still writing is read on the next round).
fn read_lines(file: &mut File, path: &Path, offset: u64, keep: &mut impl FnMut(LogEntry)) -> Result<u64> {
    file.seek(SeekFrom::Start(offset)).map_err(|e| Error::io(format!("seeking in {}", path.display()), e))?;
    let mut reader = BufReader::new(file);
    let mut offset = offset;
    let mut line = String::new();
    loop {
        line.clear();
        let n =
            reader.read_line(&mut line).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        offset += n as u64;
        keep(parse(&line, path)?);
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(stream: &str, time: &str, line: &str) -> String {
        serde_json::to_string(&LogEntry { stream: stream.into(), time: time.into(), line: line.into() })
            .unwrap()
    }

    #[test]
    fn tail_streams_and_times_filter_and_a_partial_line_waits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut text = String::new();
        for (i, stream) in ["stdout", "stderr", "stdout", "stdout"].iter().enumerate() {
            text += &entry(stream, &format!("2026-01-01T00:00:0{i}.000000000Z"), &format!("l{i}\n"));
            text += "\n";
        }
        let complete = text.len() as u64;
        text += "{\"stream\":\"stdout\",\"ti";
        std::fs::write(&path, &text).unwrap();

        let all = LogOptions::default();
        let (entries, offset, _) = read_existing(&path, &all).unwrap();
        assert_eq!(entries.len(), 4);
        assert_eq!(offset, complete);

        let tail = LogOptions { tail: Some(2), ..LogOptions::default() };
        let lines: Vec<_> = read_existing(&path, &tail).unwrap().0.into_iter().map(|e| e.line).collect();
        assert_eq!(lines, ["l2\n", "l3\n"]);

        let stderr = LogOptions { stdout: false, ..LogOptions::default() };
        assert_eq!(read_existing(&path, &stderr).unwrap().0[0].line, "l1\n");

        let window = LogOptions {
            since: Some("2026-01-01T00:00:01Z".parse().unwrap()),
            until: Some("2026-01-01T00:00:03Z".parse().unwrap()),
            ..LogOptions::default()
        };
        let lines: Vec<_> = read_existing(&path, &window).unwrap().0.into_iter().map(|e| e.line).collect();
        assert_eq!(lines, ["l1\n", "l2\n"]);

        let none = LogOptions { tail: Some(0), ..LogOptions::default() };
        assert!(read_existing(&path, &none).unwrap().0.is_empty());
    }

    /// A follow reads the log to its end even when the file is removed with its container
    /// meanwhile (docker-py removes the container before it reads what it followed).
    #[tokio::test]
    async fn a_followed_log_is_read_to_its_end_after_its_removal() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, entry("stdout", "2026-01-01T00:00:00Z", "first\n") + "\n").unwrap();
        let options = LogOptions { follow: true, ..LogOptions::default() };
        let (entries, offset, file) = read_existing(&path, &options).unwrap();
        assert_eq!(entries.len(), 1);
        let mut append = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        append.write_all((entry("stdout", "2026-01-01T00:00:01Z", "last\n") + "\n").as_bytes()).unwrap();
        std::fs::remove_file(&path).unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        follow(path, file, offset, options, tx, || false).await;
        assert_eq!(rx.recv().await.unwrap().unwrap().line, "last\n");
        assert!(rx.recv().await.is_none());
    }

    /// Reads and follows across rotations (several between two rounds of the follow, and one
    /// that deletes the file the follower had open): every line once, in order.
    #[tokio::test]
    async fn reads_and_follows_across_rotated_files_without_loss_or_duplication() {
        use crate::monitor::log_file::{LogFile, LogRotation};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let line = |i: usize| entry("stdout", "2026-01-01T00:00:00Z", &format!("{i:03}\n")) + "\n";
        let size = line(0).len() as u64;
        // Four lines per file, three files kept.
        let mut log = LogFile::open(&path, LogRotation { max_size: Some(4 * size), max_files: 3 }).unwrap();
        for i in 0..10 {
            log.append(line(i).as_bytes()).unwrap();
        }
        let numbers = |entries: Vec<LogEntry>| -> Vec<usize> {
            entries.iter().map(|e| e.line.trim().parse().unwrap()).collect()
        };
        let options = LogOptions { follow: true, ..LogOptions::default() };
        let (entries, offset, file) = read_existing(&path, &options).unwrap();
        assert_eq!(numbers(entries), (0..10).collect::<Vec<_>>());
        let tail = LogOptions { tail: Some(5), ..LogOptions::default() };
        assert_eq!(numbers(read_existing(&path, &tail).unwrap().0), (5..10).collect::<Vec<_>>());

        // Two rotations before the follower looks again; the file it has open stays readable.
        for i in 10..20 {
            log.append(line(i).as_bytes()).unwrap();
        }
        let (entries, offset, file) = read_more(&path, file, offset, &options).unwrap();
        assert_eq!(numbers(entries), (10..20).collect::<Vec<_>>());
        // Three more rotations: the follower's file is deleted, then it continues with the
        // oldest file that is left (what was deleted unread is gone, as with Docker).
        for i in 20..33 {
            log.append(line(i).as_bytes()).unwrap();
        }
        let (entries, _, _) = read_more(&path, file, offset, &options).unwrap();
        assert_eq!(numbers(entries), (24..33).collect::<Vec<_>>());

        // The async follow sends the rest once the container stopped.
        let (_, offset, file) = read_existing(&path, &options).unwrap();
        for i in 33..40 {
            log.append(line(i).as_bytes()).unwrap();
        }
        let (tx, mut rx) = mpsc::channel(64);
        follow(path, file, offset, options, tx, || false).await;
        let mut got = Vec::new();
        while let Some(entry) = rx.recv().await {
            got.push(entry.unwrap());
        }
        assert_eq!(numbers(got), (33..40).collect::<Vec<_>>());
    }

    #[test]
    fn a_corrupt_line_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "not json\n").unwrap();
        let e = read_existing(&path, &LogOptions::default()).unwrap_err();
        assert!(e.to_string().contains("corrupt log line"), "{e}");
    }
}

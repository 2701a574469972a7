//! Reading a container's log file (JSON lines of [`LogEntry`], appended by its monitor).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use berth_types::container::LogEntry;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::LogOptions;
use crate::error::{Error, Result};

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

fn parse(line: &str, path: &std::path::Path) -> Result<LogEntry> {
    serde_json::from_str(line)
        .map_err(|e| Error::InvalidInput(format!("corrupt log line in {}: {e}", path.display())))
}

/// Reads the entries already written (filtered, the last `tail` of them); returns them, the
/// offset where the next complete line starts, and the open file to follow it with (a log
/// followed after its container was removed is read to its end: Docker's clients remove the
/// container before they read what they followed, as docker-py's `containers.run`).
pub(crate) fn read_existing(
    path: &PathBuf,
    options: &LogOptions,
) -> Result<(Vec<LogEntry>, u64, Option<File>)> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0, None)),
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    let mut reader = BufReader::new(file);
    let mut kept: VecDeque<LogEntry> = VecDeque::new();
    let mut offset = 0u64;
    let mut line = String::new();
    loop {
        line.clear();
        let n =
            reader.read_line(&mut line).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if n == 0 || !line.ends_with('\n') {
            // A line the monitor is still writing is read on the next round.
            break;
        }
        offset += n as u64;
        let entry = parse(&line, path)?;
        if wanted(&entry, options) {
            kept.push_back(entry);
            if let Some(tail) = options.tail {
                if kept.len() > tail {
                    kept.pop_front();
                }
            }
        }
    }
    if options.tail == Some(0) {
        kept.clear();
    }
    Ok((kept.into(), offset, Some(reader.into_inner())))
}

/// Follows the log from `offset`, sending entries until `running` says the container stopped
/// (then the rest is sent) or the receiver goes away.
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
        let read = tokio::task::spawn_blocking(move || {
            let mut f = match open {
                Some(f) => f,
                None => match File::open(&path2) {
                    Ok(f) => f,
                    // Not written yet.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Ok((Vec::new(), offset, None))
                    }
                    Err(e) => return Err(Error::io(format!("opening {}", path2.display()), e)),
                },
            };
            let (entries, next) = read_from(&mut f, &path2, offset, &options2)?;
            Ok((entries, next, Some(f)))
        })
        .await;
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

fn read_from(
    file: &mut File,
    path: &std::path::Path,
    offset: u64,
    options: &LogOptions,
) -> Result<(Vec<LogEntry>, u64)> {
    file.seek(SeekFrom::Start(offset)).map_err(|e| Error::io(format!("seeking in {}", path.display()), e))?;
    let mut reader = BufReader::new(file);
    let mut entries = Vec::new();
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
        let entry = parse(&line, path)?;
        if wanted(&entry, options) {
            entries.push(entry);
        }
    }
    Ok((entries, offset))
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

    #[test]
    fn a_corrupt_line_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "not json\n").unwrap();
        let e = read_existing(&path, &LogOptions::default()).unwrap_err();
        assert!(e.to_string().contains("corrupt log line"), "{e}");
    }
}

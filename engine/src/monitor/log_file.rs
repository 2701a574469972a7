//! The container's log file and its rotation, as Docker's json-file driver does it: when the
//! file would pass `max-size`, it is renamed to `container.log.1` (the older ones shift to `.2`,
//! …, the oldest beyond `max-file - 1` is deleted) and a new `container.log` is started. Readers
//! (`container::logs`) read the rotated files oldest first, then the current one.
//!
//! Unlike Docker, whose json-file driver keeps logs without a limit unless told, berth limits
//! every container by default to the `local` driver's 20 MB × 5 files, so a chatty container
//! cannot fill the disk; `--log-opt max-size=-1` asks for an unbounded log.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use berth_types::container::LogEntry;
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Default `max-size`: 20 MB (Docker's `local` driver's).
pub const DEFAULT_MAX_SIZE: u64 = 20_000_000;
/// Default `max-file`: 5 (Docker's `local` driver's).
pub const DEFAULT_MAX_FILES: u32 = 5;

/// How a container's log is rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRotation {
    /// Bytes a log file may reach before it is rotated; `None`: never rotated.
    pub max_size: Option<u64>,
    /// Files kept, the current one included (at least 1).
    pub max_files: u32,
}

impl Default for LogRotation {
    fn default() -> Self {
        LogRotation { max_size: Some(DEFAULT_MAX_SIZE), max_files: DEFAULT_MAX_FILES }
    }
}

impl LogRotation {
    /// From `--log-driver` and `--log-opt`, checked as Docker's json-file driver checks them;
    /// other drivers are refused by name.
    pub fn from_options(driver: Option<&str>, opts: &BTreeMap<String, String>) -> Result<LogRotation> {
        let driver = driver.filter(|d| !d.is_empty()).unwrap_or("json-file");
        if !matches!(driver, "json-file" | "local") {
            return Err(Error::InvalidInput(format!(
                "log driver {driver:?} is not supported: berth writes json-file logs (json-file or local)"
            )));
        }
        let mut rotation = LogRotation::default();
        for (key, value) in opts {
            match key.as_str() {
                "max-size" => rotation.max_size = parse_max_size(value)?,
                "max-file" => {
                    let n: i64 = value.parse().map_err(|_| {
                        Error::InvalidInput(format!("invalid max-file {value:?}: not a number"))
                    })?;
                    if n < 1 {
                        return Err(Error::InvalidInput("max-file cannot be less than 1".into()));
                    }
                    rotation.max_files = u32::try_from(n)
                        .map_err(|_| Error::InvalidInput(format!("invalid max-file {value:?}: too large")))?;
                }
                "compress" => match value.as_str() {
                    "false" | "0" => {}
                    "true" | "1" => {
                        return Err(Error::InvalidInput(
                            "log opt compress=true is not supported: rotated logs are kept uncompressed"
                                .into(),
                        ))
                    }
                    _ => {
                        return Err(Error::InvalidInput(format!(
                            "invalid compress {value:?}: want true or false"
                        )))
                    }
                },
                _ => {
                    return Err(Error::InvalidInput(format!(
                        "unknown log opt '{key}' for {driver} log driver"
                    )))
                }
            }
        }
        if rotation.max_size.is_none() && opts.contains_key("max-file") && rotation.max_files > 1 {
            return Err(Error::InvalidInput("max-file cannot be set when max-size is not set".into()));
        }
        Ok(rotation)
    }
}

/// Docker's `max-size`: a decimal size with an optional unit (`b`, `k`/`kb`, `m`/`mb`, `g`/`gb`,
/// powers of 1000 as Docker's `units.FromHumanSize`), or `-1` for no limit.
fn parse_max_size(value: &str) -> Result<Option<u64>> {
    if value.trim() == "-1" {
        return Ok(None);
    }
    let bad = || Error::InvalidInput(format!("invalid max-size {value:?}: want a size such as 10m"));
    let lower = value.trim().to_ascii_lowercase();
    let split = lower.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(lower.len());
    let (number, unit) = lower.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let scale: f64 = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        _ => return Err(bad()),
    };
    let bytes = (number * scale) as u64;
    if bytes == 0 {
        return Err(Error::InvalidInput(format!("invalid max-size {value:?}: must be more than 0")));
    }
    Ok(Some(bytes))
}

/// The name of the `n`th rotated file of `log` (`container.log.1` is the newest).
pub fn rotated_path(log: &Path, n: u32) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// The numbers of the log's rotated files that exist, highest (oldest) first. Read from the
/// directory rather than probed from `.1` upwards: a rotation renames the files from the oldest
/// down, so in the middle of one the numbers have a gap, and a reader that stopped at the gap
/// would miss the files beyond it.
fn rotated_numbers(log: &Path) -> Vec<u32> {
    let (Some(dir), Some(name)) = (log.parent(), log.file_name()) else { return Vec::new() };
    let prefix = format!("{}.", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut numbers: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix(&prefix)?.parse().ok())
        .filter(|n| *n > 0)
        .collect();
    numbers.sort_unstable_by(|a, b| b.cmp(a));
    numbers
}

/// The log's files oldest first: the rotated ones that exist, then the current one.
pub fn log_files(log: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = rotated_numbers(log).into_iter().map(|n| rotated_path(log, n)).collect();
    files.push(log.to_path_buf());
    files
}

/// The log file a monitor appends to, rotated as configured.
pub(crate) struct LogFile {
    path: PathBuf,
    file: File,
    size: u64,
    rotation: LogRotation,
    /// Lines that could not be written (a full disk) since the last one that could, and why.
    lost: u64,
    lost_because: String,
}

impl LogFile {
    pub(crate) fn open(path: &Path, rotation: LogRotation) -> io::Result<LogFile> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(LogFile { path: path.to_path_buf(), file, size, rotation, lost: 0, lost_because: String::new() })
    }

    /// Appends one complete line (whole lines never span two files, so a reader that moves to
    /// the next file has lost nothing). A line that cannot be written (a full disk) is counted,
    /// and once lines can be written again an entry on stderr says how many were lost and why;
    /// only the first failure of a run of them is returned.
    pub(crate) fn append(&mut self, line: &[u8]) -> io::Result<()> {
        if self.lost > 0 {
            let note = LogEntry {
                stream: "stderr".to_string(),
                time: Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true),
                line: format!("berth: {} log lines lost: {}\n", self.lost, self.lost_because),
            };
            let mut json = serde_json::to_vec(&note).expect("log entries serialise");
            json.push(b'\n');
            if self.write_line(&json).is_err() {
                self.lost += 1;
                return Ok(());
            }
            self.lost = 0;
        }
        match self.write_line(line) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.lost += 1;
                if self.lost > 1 {
                    return Ok(());
                }
                self.lost_because = match e.raw_os_error() {
                    Some(libc::ENOSPC) => "writing the log: no space left on device".to_string(),
                    _ => format!("writing the log: {e}"),
                };
                Err(e)
            }
        }
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        if let Some(max) = self.rotation.max_size {
            if self.size > 0 && self.size + line.len() as u64 > max {
                self.rotate()?;
            }
        }
        if let Err(e) = self.file.write_all(line) {
            // No torn line for readers to trip over: back to the last whole one.
            let _ = self.file.set_len(self.size);
            return Err(e);
        }
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let keep = self.rotation.max_files.saturating_sub(1);
        if keep == 0 {
            // Only the current file is kept: start it again (a follower keeps reading the old
            // one through its open descriptor until its end).
            remove_if_exists(&self.path)?;
        } else {
            // Oldest first, so no rename overwrites a file not yet moved.
            for n in rotated_numbers(&self.path) {
                if n >= keep {
                    remove_if_exists(&rotated_path(&self.path, n))?;
                } else {
                    fs::rename(rotated_path(&self.path, n), rotated_path(&self.path, n + 1))?;
                }
            }
            fs::rename(&self.path, rotated_path(&self.path, 1))?;
        }
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).mode(0o640).open(path)
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn options_parse_as_dockers_json_file_driver() {
        assert_eq!(LogRotation::from_options(None, &BTreeMap::new()).unwrap(), LogRotation::default());
        let r =
            LogRotation::from_options(Some("json-file"), &opts(&[("max-size", "10k"), ("max-file", "3")]))
                .unwrap();
        assert_eq!(r, LogRotation { max_size: Some(10_000), max_files: 3 });
        let r = LogRotation::from_options(Some("local"), &opts(&[("max-size", "1.5m")])).unwrap();
        assert_eq!(r.max_size, Some(1_500_000));
        let r = LogRotation::from_options(None, &opts(&[("max-size", "-1")])).unwrap();
        assert_eq!(r.max_size, None);
        let err = |driver: Option<&str>, o: &[(&str, &str)]| {
            LogRotation::from_options(driver, &opts(o)).unwrap_err().to_string()
        };
        assert!(err(Some("syslog"), &[]).contains("\"syslog\" is not supported"));
        assert!(err(None, &[("max-size", "ten")]).contains("invalid max-size"));
        assert!(err(None, &[("max-size", "0")]).contains("more than 0"));
        assert!(err(None, &[("max-file", "0")]).contains("max-file cannot be less than 1"));
        assert!(err(None, &[("max-sise", "1m")]).contains("unknown log opt 'max-sise' for json-file"));
        assert!(err(None, &[("compress", "true")]).contains("compress=true is not supported"));
        assert!(err(None, &[("max-size", "-1"), ("max-file", "3")]).contains("max-size is not set"));
    }

    #[test]
    fn rotation_keeps_max_files_and_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let mut log = LogFile::open(&path, LogRotation { max_size: Some(25), max_files: 3 }).unwrap();
        for i in 0..10 {
            log.append(format!("line {i:02}\n").as_bytes()).unwrap(); // 8 bytes each
        }
        // Three 8-byte lines fit in 25 bytes: 09 is current, 06-08 in .1, 03-05 in .2, and the
        // file of 00-02 is gone.
        assert_eq!(fs::read_to_string(&path).unwrap(), "line 09\n");
        assert_eq!(fs::read_to_string(rotated_path(&path, 1)).unwrap(), "line 06\nline 07\nline 08\n");
        assert_eq!(fs::read_to_string(rotated_path(&path, 2)).unwrap(), "line 03\nline 04\nline 05\n");
        assert!(!rotated_path(&path, 3).exists());
        assert_eq!(log_files(&path), vec![rotated_path(&path, 2), rotated_path(&path, 1), path.clone()]);

        // In the middle of a rotation (.2 already moved to .3, .1 not yet to .2) every file is
        // still listed, in order.
        fs::rename(rotated_path(&path, 2), rotated_path(&path, 3)).unwrap();
        assert_eq!(log_files(&path), vec![rotated_path(&path, 3), rotated_path(&path, 1), path.clone()]);

        let single = dir.path().join("single.log");
        let mut log = LogFile::open(&single, LogRotation { max_size: Some(10), max_files: 1 }).unwrap();
        for i in 0..3 {
            log.append(format!("line {i:02}\n").as_bytes()).unwrap();
        }
        assert_eq!(fs::read_to_string(&single).unwrap(), "line 02\n");
        assert!(!rotated_path(&single, 1).exists());
    }
}

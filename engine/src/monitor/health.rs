//! Health checks (HEALTHCHECK / `--health-*`), as Docker runs them.
//!
//! The daemon's side: the image's check merged with the container's at create
//! ([`merge`]), and the check the monitor gets ([`effective`]). The monitor's side: a
//! [`Checker`] that runs the probe in the container on schedule through the runtime's `exec`
//! (so checks go on while the daemon is down) and keeps the result in the state file.
//!
//! Docker's rules: the first probe runs one interval after the start; the next one an interval
//! after the previous one ended (the start interval instead while the container is starting and
//! within its start period); a probe that outlives its timeout is killed and fails; failures in
//! the start period do not count; `retries` failures in a row make the container unhealthy, one
//! success healthy; the last five probes are kept, their output cut at 4 KiB.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_types::health::{Health, HealthConfig, HealthProbe, HealthStatus};
use berth_types::ExecConfig;
use chrono::{DateTime, SecondsFormat, Utc};
use oci_spec::runtime::Process;
use serde::Deserialize;

use crate::error::{Error, IoContext, Result};
use crate::runtime::{self, Runtime, Stdio};

/// Docker's defaults: 30 s between probes, 30 s timeout, 5 s start interval, 3 retries.
const DEFAULT_INTERVAL: u64 = 30_000_000_000;
const DEFAULT_TIMEOUT: u64 = 30_000_000_000;
const DEFAULT_START_INTERVAL: u64 = 5_000_000_000;
const DEFAULT_RETRIES: u32 = 3;
/// The shortest non-zero duration Docker accepts.
const MIN_DURATION: u64 = 1_000_000;
/// Probes kept in the log.
const MAX_LOG: usize = 5;
/// Bytes of a probe's output kept.
const MAX_OUTPUT: usize = 4096;

/// The image config's `Healthcheck` (Docker's names, durations in nanoseconds).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImageHealthcheck {
    #[serde(default)]
    test: Option<Vec<String>>,
    #[serde(default)]
    interval: Option<i64>,
    #[serde(default)]
    timeout: Option<i64>,
    #[serde(default)]
    start_period: Option<i64>,
    #[serde(default)]
    start_interval: Option<i64>,
    #[serde(default)]
    retries: Option<i64>,
}

/// The HEALTHCHECK of an image, from its config JSON (`config.Healthcheck`), if it has one.
pub(crate) fn image_healthcheck(config_json: &[u8]) -> Result<Option<HealthConfig>> {
    #[derive(Deserialize)]
    struct ImageConfig {
        #[serde(default)]
        config: Option<Inner>,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(default, rename = "Healthcheck")]
        healthcheck: Option<ImageHealthcheck>,
    }
    let parsed: ImageConfig = serde_json::from_slice(config_json)
        .map_err(|e| Error::InvalidInput(format!("the image's HEALTHCHECK is not valid: {e}")))?;
    let Some(hc) = parsed.config.and_then(|c| c.healthcheck) else { return Ok(None) };
    let duration = |name: &str, v: Option<i64>| -> Result<u64> {
        u64::try_from(v.unwrap_or(0))
            .map_err(|_| Error::InvalidInput(format!("the image's HEALTHCHECK has a negative {name}")))
    };
    Ok(Some(HealthConfig {
        test: hc.test.unwrap_or_default(),
        interval: duration("Interval", hc.interval)?,
        timeout: duration("Timeout", hc.timeout)?,
        start_period: duration("StartPeriod", hc.start_period)?,
        start_interval: duration("StartInterval", hc.start_interval)?,
        retries: u32::try_from(hc.retries.unwrap_or(0))
            .map_err(|_| Error::InvalidInput("the image's HEALTHCHECK has invalid Retries".into()))?,
    }))
}

/// The container's check over the image's, field by field (Docker's merge: an empty test or a
/// zero value takes the image's), checked as Docker checks it at create.
pub(crate) fn merge(
    image: Option<HealthConfig>,
    container: Option<HealthConfig>,
) -> Result<Option<HealthConfig>> {
    let merged = match (image, container) {
        (None, c) => c,
        (Some(i), None) => Some(i),
        (Some(i), Some(mut c)) => {
            if c.test.is_empty() {
                c.test = i.test;
            }
            let take = |mine: &mut u64, theirs: u64| {
                if *mine == 0 {
                    *mine = theirs;
                }
            };
            take(&mut c.interval, i.interval);
            take(&mut c.timeout, i.timeout);
            take(&mut c.start_period, i.start_period);
            take(&mut c.start_interval, i.start_interval);
            if c.retries == 0 {
                c.retries = i.retries;
            }
            Some(c)
        }
    };
    if let Some(c) = &merged {
        validate(c)?;
    }
    Ok(merged)
}

/// Docker's checks of a HealthConfig at create.
fn validate(c: &HealthConfig) -> Result<()> {
    match c.test.first().map(String::as_str) {
        None | Some("NONE") => {}
        Some("CMD") | Some("CMD-SHELL") if c.test.len() < 2 || c.test[1..].iter().all(|w| w.is_empty()) => {
            return Err(Error::InvalidInput(format!("invalid healthcheck: {} needs a command", c.test[0])));
        }
        Some("CMD") | Some("CMD-SHELL") => {}
        Some(other) => {
            return Err(Error::InvalidInput(format!(
                "invalid healthcheck: unknown type {other:?} (expected CMD, CMD-SHELL or NONE)"
            )))
        }
    }
    for (name, value) in [
        ("Interval", c.interval),
        ("Timeout", c.timeout),
        ("StartPeriod", c.start_period),
        ("StartInterval", c.start_interval),
    ] {
        if value != 0 && value < MIN_DURATION {
            return Err(Error::InvalidInput(format!("{name} in Healthcheck cannot be less than 1ms")));
        }
    }
    Ok(())
}

/// The check a container's monitor runs, defaults filled in; `None` without one or with
/// `NONE` (`--no-healthcheck`).
pub(crate) fn effective(config: Option<&HealthConfig>) -> Option<HealthConfig> {
    let c = config?;
    if c.test.is_empty() || c.test[0] == "NONE" {
        return None;
    }
    let or = |v: u64, default: u64| if v == 0 { default } else { v };
    Some(HealthConfig {
        test: c.test.clone(),
        interval: or(c.interval, DEFAULT_INTERVAL),
        timeout: or(c.timeout, DEFAULT_TIMEOUT),
        start_period: c.start_period,
        start_interval: or(c.start_interval, DEFAULT_START_INTERVAL),
        retries: if c.retries == 0 { DEFAULT_RETRIES } else { c.retries },
    })
}

/// The probe's command line: `CMD args...` as is, `CMD-SHELL text` through `/bin/sh -c`.
fn probe_args(test: &[String]) -> Vec<String> {
    match test.split_first() {
        Some((kind, rest)) if kind == "CMD-SHELL" => {
            vec!["/bin/sh".into(), "-c".into(), rest.join(" ")]
        }
        Some((_, rest)) => rest.to_vec(),
        None => Vec::new(),
    }
}

/// A duration as Go prints it (`30s`, `200ms`, `1m30s`, `1.5s`), for Docker's timeout message.
/// Hand-written: nothing on crates.io prints Go's format, and it is a few lines.
fn go_duration(ns: u64) -> String {
    let trim = |whole: u64, frac: u64, digits: usize| -> String {
        if frac == 0 {
            return whole.to_string();
        }
        let f = format!("{frac:0digits$}");
        format!("{whole}.{}", f.trim_end_matches('0'))
    };
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", trim(ns / 1_000, ns % 1_000, 3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", trim(ns / 1_000_000, ns % 1_000_000, 6));
    }
    let (h, rest) = (ns / 3_600_000_000_000, ns % 3_600_000_000_000);
    let (m, rest) = (rest / 60_000_000_000, rest % 60_000_000_000);
    let s = trim(rest / 1_000_000_000, rest % 1_000_000_000, 9);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// A probe that runs.
struct Probe {
    pid: i32,
    /// Read end of the pipe the probe's stdout and stderr both go to; `None` at end of file.
    output: Option<File>,
    buf: Vec<u8>,
    start: DateTime<Utc>,
    began: Instant,
    deadline: Instant,
}

impl Probe {
    /// Reads what the probe wrote; keeps the first [`MAX_OUTPUT`] bytes and drops the rest (the
    /// pipe must not fill up and block the probe).
    fn read(&mut self) {
        let Some(out) = self.output.as_mut() else { return };
        let mut chunk = [0u8; 4096];
        loop {
            match out.read(&mut chunk) {
                Ok(0) => {
                    self.output = None;
                    return;
                }
                Ok(n) => {
                    let room = MAX_OUTPUT.saturating_sub(self.buf.len());
                    self.buf.extend_from_slice(&chunk[..n.min(room)]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.output = None;
                    return;
                }
            }
        }
    }
}

/// The monitor's health checker for one container.
pub(crate) struct Checker {
    config: HealthConfig,
    bundle: PathBuf,
    /// The probe's process, built from the bundle at the first probe.
    process: Option<Process>,
    /// When the container's current run started (for the start period); `None` while stopped.
    started: Option<Instant>,
    next_at: Option<Instant>,
    probe: Option<Probe>,
}

impl Checker {
    /// A checker for `config` (from [`effective`]) of the container whose bundle is `bundle`.
    pub(crate) fn new(config: HealthConfig, bundle: PathBuf) -> Checker {
        Checker { config, bundle, process: None, started: None, next_at: None, probe: None }
    }

    /// The container (re)started: `starting`, with a fresh log, the first probe one
    /// (start) interval from now.
    pub(crate) fn started(&mut self, health: &mut Option<Health>) {
        self.cancel();
        self.started = Some(Instant::now());
        *health = Some(Health { status: HealthStatus::Starting, failing_streak: 0, log: Vec::new() });
        self.next_at = Some(Instant::now() + self.delay(health.as_ref()));
    }

    /// The container stopped: no more probes until it starts again.
    pub(crate) fn stopped(&mut self) {
        self.cancel();
        self.started = None;
        self.next_at = None;
    }

    /// Kills a running probe and what it started; its exit is then not recorded (the reaper
    /// ignores the PID).
    fn cancel(&mut self) {
        if let Some(probe) = self.probe.take() {
            // The runtime makes an exec'd process a session (and group) leader: the group takes
            // the probe's children too (a `sleep` under `sh -c`), which would pile up in the
            // container at every timeout. Without a group of its own, ESRCH, and the PID alone.
            unsafe {
                libc::kill(-probe.pid, libc::SIGKILL);
                libc::kill(probe.pid, libc::SIGKILL);
            }
        }
    }

    /// When [`Checker::tick`] has something to do: a probe's deadline or the next probe.
    pub(crate) fn wake_at(&self) -> Option<Instant> {
        match &self.probe {
            Some(p) => Some(p.deadline),
            None => self.next_at,
        }
    }

    /// The running probe's output, for the poll loop.
    pub(crate) fn fd(&self) -> Option<RawFd> {
        self.probe.as_ref().and_then(|p| p.output.as_ref()).map(|f| f.as_raw_fd())
    }

    /// The poll loop saw the probe's output readable.
    pub(crate) fn read_output(&mut self) {
        if let Some(p) = self.probe.as_mut() {
            p.read();
        }
    }

    /// The wait before the next probe: the start interval while starting within the start
    /// period, else the interval.
    fn delay(&self, health: Option<&Health>) -> Duration {
        let in_start_period =
            self.started.is_some_and(|t| t.elapsed() < Duration::from_nanos(self.config.start_period));
        let starting = health.is_none_or(|h| h.status == HealthStatus::Starting);
        Duration::from_nanos(if in_start_period && starting {
            self.config.start_interval
        } else {
            self.config.interval
        })
    }

    /// Does what is due: ends a probe past its timeout, or starts the next probe (only while
    /// `running`: a paused container is not probed, its turn comes an interval later). Returns
    /// whether `health` changed (the state file is to be written).
    pub(crate) fn tick(
        &mut self,
        running: bool,
        runtime: &dyn Runtime,
        id: &str,
        health: &mut Option<Health>,
    ) -> bool {
        let now = Instant::now();
        if let Some(probe) = &self.probe {
            if now < probe.deadline {
                return false;
            }
            let (start, began) = (probe.start.to_rfc3339_opts(SecondsFormat::Nanos, true), probe.began);
            self.cancel();
            let output = format!("Health check exceeded timeout ({})", go_duration(self.config.timeout));
            self.record(health, HealthProbe { start, end: now_rfc3339(), exit_code: -1, output }, began);
            return true;
        }
        if self.next_at.is_none_or(|at| now < at) {
            return false;
        }
        if !running {
            self.next_at = Some(now + self.delay(health.as_ref()));
            return false;
        }
        let (start, began) = (Utc::now(), now);
        match self.spawn(runtime, id) {
            Ok((pid, output)) => {
                let deadline = Instant::now() + Duration::from_nanos(self.config.timeout);
                self.probe =
                    Some(Probe { pid, output: Some(output), buf: Vec::new(), start, began, deadline });
                self.next_at = None;
                false
            }
            Err(e) => {
                let start = start.to_rfc3339_opts(SecondsFormat::Nanos, true);
                let probe = HealthProbe { start, end: now_rfc3339(), exit_code: -1, output: e.to_string() };
                self.record(health, probe, began);
                true
            }
        }
    }

    /// Starts the probe in the container; its stdout and stderr go to one pipe.
    fn spawn(&mut self, runtime: &dyn Runtime, id: &str) -> Result<(i32, File)> {
        if self.process.is_none() {
            let spec = runtime::read_bundle(&self.bundle)?;
            let rootfs = spec.root().as_ref().map(|r| self.bundle.join(r.path())).unwrap_or_default();
            let exec = ExecConfig { cmd: probe_args(&self.config.test), ..Default::default() };
            self.process = Some(runtime::build_exec_process(&spec, &rootfs, &exec)?);
        }
        let process = self.process.as_ref().expect("built above");
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| Error::io("creating the health check's pipe", e.into()))?;
        let flags = unsafe { libc::fcntl(read.as_raw_fd(), libc::F_GETFL) };
        if flags < 0 || unsafe { libc::fcntl(read.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0
        {
            return Err(Error::io("setting O_NONBLOCK", io::Error::last_os_error()));
        }
        let stdin = OwnedFd::from(File::open("/dev/null").context(|| "opening /dev/null".into())?);
        let stderr = write.try_clone().context(|| "duplicating the health check's pipe".into())?;
        let started = runtime.exec(id, process, Stdio::Fds([stdin, write, stderr]))?;
        Ok((started.pid, File::from(read)))
    }

    /// Whether `pid` is the running probe; if so its result (`code`) is recorded in `health`
    /// and the next probe scheduled.
    pub(crate) fn reaped(&mut self, pid: i32, code: i32, health: &mut Option<Health>) -> bool {
        if self.probe.as_ref().is_none_or(|p| p.pid != pid) {
            return false;
        }
        let mut probe = self.probe.take().expect("checked above");
        // What it wrote just before it exited is still in the pipe.
        probe.read();
        let result = HealthProbe {
            start: probe.start.to_rfc3339_opts(SecondsFormat::Nanos, true),
            end: now_rfc3339(),
            exit_code: code,
            output: String::from_utf8_lossy(&probe.buf).into_owned(),
        };
        self.record(health, result, probe.began);
        true
    }

    /// Applies a probe's result (Docker's handleProbeResult) and schedules the next probe.
    fn record(&mut self, health: &mut Option<Health>, probe: HealthProbe, began: Instant) {
        let h = health.get_or_insert_with(|| Health {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: Vec::new(),
        });
        if probe.exit_code == 0 {
            h.failing_streak = 0;
            h.status = HealthStatus::Healthy;
        } else {
            // Failures of probes begun while starting within the start period do not count.
            let in_start_period = self.started.is_some_and(|t| {
                began.saturating_duration_since(t) < Duration::from_nanos(self.config.start_period)
            });
            if !(h.status == HealthStatus::Starting && in_start_period) {
                h.failing_streak += 1;
                if h.failing_streak >= self.config.retries {
                    h.status = HealthStatus::Unhealthy;
                }
            }
        }
        h.log.push(probe);
        if h.log.len() > MAX_LOG {
            let extra = h.log.len() - MAX_LOG;
            h.log.drain(..extra);
        }
        self.next_at = Some(Instant::now() + self.delay(health.as_ref()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Checker {
        fn record_now(&mut self, health: &mut Option<Health>, probe: HealthProbe) {
            self.record(health, probe, Instant::now());
        }
    }

    fn hc(test: &[&str]) -> HealthConfig {
        HealthConfig { test: test.iter().map(|s| s.to_string()).collect(), ..Default::default() }
    }

    #[test]
    fn the_image_healthcheck_is_read_from_the_config_json() {
        let json = br#"{"architecture":"amd64","os":"linux","config":{"Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":2000000000,"Retries":4}},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let got = image_healthcheck(json).unwrap().unwrap();
        assert_eq!(got.test, ["CMD-SHELL", "true"]);
        assert_eq!((got.interval, got.timeout, got.retries), (2_000_000_000, 0, 4));
        assert_eq!(image_healthcheck(br#"{"config":{}}"#).unwrap(), None);
        assert_eq!(image_healthcheck(br#"{}"#).unwrap(), None);
        assert!(image_healthcheck(br#"{"config":{"Healthcheck":{"Interval":-1}}}"#).is_err());
    }

    #[test]
    fn the_container_check_merges_over_the_images_field_by_field() {
        let image = HealthConfig { interval: 5_000_000, timeout: 7_000_000, retries: 9, ..hc(&["CMD", "a"]) };
        let mine = HealthConfig { interval: 2_000_000, ..hc(&[]) };
        let got = merge(Some(image.clone()), Some(mine)).unwrap().unwrap();
        assert_eq!(got.test, ["CMD", "a"]);
        assert_eq!((got.interval, got.timeout, got.retries), (2_000_000, 7_000_000, 9));
        // NONE replaces the image's test: no check runs.
        let none = merge(Some(image), Some(hc(&["NONE"]))).unwrap();
        assert_eq!(effective(none.as_ref()), None);
        assert_eq!(merge(None, None).unwrap(), None);
    }

    #[test]
    fn bad_checks_are_refused_at_create() {
        let err = |c: HealthConfig| merge(None, Some(c)).unwrap_err().to_string();
        assert!(err(HealthConfig { interval: 999, ..hc(&["CMD", "x"]) })
            .contains("Interval in Healthcheck cannot be less than 1ms"));
        assert!(err(HealthConfig { start_period: 5, ..hc(&["CMD", "x"]) }).contains("StartPeriod"));
        assert!(err(hc(&["CMD"])).contains("CMD needs a command"));
        assert!(err(hc(&["CMD-SHELL", ""])).contains("CMD-SHELL needs a command"));
        assert!(err(hc(&["RUN", "x"])).contains("unknown type"));
    }

    #[test]
    fn defaults_are_dockers_and_shell_checks_go_through_sh() {
        let e = effective(Some(&hc(&["CMD-SHELL", "test -f /x"]))).unwrap();
        assert_eq!(
            (e.interval, e.timeout, e.start_interval, e.retries),
            (30_000_000_000, 30_000_000_000, 5_000_000_000, 3)
        );
        assert_eq!(probe_args(&e.test), ["/bin/sh", "-c", "test -f /x"]);
        assert_eq!(probe_args(&hc(&["CMD", "cat", "/f"]).test), ["cat", "/f"]);
        assert_eq!(effective(Some(&hc(&[]))), None);
    }

    #[test]
    fn probe_output_is_cut_at_4_kib_and_read_to_the_end() {
        use std::io::Write;
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK).expect("pipe");
        let mut write = File::from(write);
        write.write_all(&[b'x'; 10_000]).unwrap();
        drop(write);
        let now = Instant::now();
        let mut probe = Probe {
            pid: 0,
            output: Some(File::from(read)),
            buf: Vec::new(),
            start: Utc::now(),
            began: now,
            deadline: now,
        };
        probe.read();
        assert_eq!(probe.buf.len(), MAX_OUTPUT);
        assert!(probe.output.is_none(), "read to the end of the pipe");
    }

    #[test]
    fn durations_print_as_go_prints_them() {
        for (ns, want) in [
            (0, "0s"),
            (30_000_000_000, "30s"),
            (200_000_000, "200ms"),
            (1_500_000_000, "1.5s"),
            (90_000_000_000, "1m30s"),
            (60_000_000_000, "1m0s"),
            (3_600_000_000_000, "1h0m0s"),
            (1_500, "1.5µs"),
            (12, "12ns"),
        ] {
            assert_eq!(go_duration(ns), want);
        }
    }

    #[test]
    fn results_follow_dockers_rules() {
        let config = effective(Some(&HealthConfig { retries: 2, ..hc(&["CMD", "x"]) })).unwrap();
        let mut checker = Checker::new(config, PathBuf::from("/nonexistent"));
        let mut health = None;
        checker.started(&mut health);
        let probe = |code: i32| HealthProbe {
            start: now_rfc3339(),
            end: now_rfc3339(),
            exit_code: code,
            output: format!("{code}"),
        };
        checker.record_now(&mut health, probe(1));
        assert_eq!(health.as_ref().unwrap().status, HealthStatus::Starting);
        assert_eq!(health.as_ref().unwrap().failing_streak, 1);
        checker.record_now(&mut health, probe(0));
        assert_eq!(health.as_ref().unwrap().status, HealthStatus::Healthy);
        assert_eq!(health.as_ref().unwrap().failing_streak, 0);
        checker.record_now(&mut health, probe(1));
        assert_eq!(health.as_ref().unwrap().status, HealthStatus::Healthy);
        checker.record_now(&mut health, probe(-1));
        assert_eq!(health.as_ref().unwrap().status, HealthStatus::Unhealthy);
        for _ in 0..4 {
            checker.record_now(&mut health, probe(2));
        }
        let h = health.as_ref().unwrap();
        assert_eq!(h.log.len(), 5);
        assert_eq!(h.log[0].output, "-1");
        assert_eq!(h.failing_streak, 6);
        // A restart starts over.
        checker.started(&mut health);
        assert_eq!(health.as_ref().unwrap().status, HealthStatus::Starting);
        assert!(health.as_ref().unwrap().log.is_empty());
    }

    #[test]
    fn failures_in_the_start_period_do_not_count() {
        let config = HealthConfig { start_period: 60_000_000_000, retries: 1, ..hc(&["CMD", "x"]) };
        let mut checker = Checker::new(effective(Some(&config)).unwrap(), PathBuf::from("/nonexistent"));
        let mut health = None;
        checker.started(&mut health);
        // The start interval applies while starting in the start period.
        let wait = checker.wake_at().unwrap().saturating_duration_since(Instant::now());
        assert!(wait <= Duration::from_secs(5) && wait > Duration::from_secs(4), "{wait:?}");
        let probe =
            HealthProbe { start: now_rfc3339(), end: now_rfc3339(), exit_code: 1, output: String::new() };
        checker.record_now(&mut health, probe.clone());
        assert_eq!(health.as_ref().unwrap().status, HealthStatus::Starting);
        assert_eq!(health.as_ref().unwrap().failing_streak, 0);
        let ok = HealthProbe { exit_code: 0, ..probe.clone() };
        checker.record_now(&mut health, ok);
        checker.record_now(&mut health, probe);
        // Healthy once: failures count from then on, even in the start period.
        assert_eq!(health.as_ref().unwrap().status, HealthStatus::Unhealthy);
    }
}

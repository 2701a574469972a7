//! Differential checks of berth's Docker Engine API: the same client command run against Docker
//! Engine 20.10 (the reference, [`Dockerd`]) and against berth's Docker socket, what each printed
//! normalised (IDs, times, sizes, ports) and compared.
//!
//! A [`Comparison`] runs every check and lists every difference at the end, instead of stopping
//! at the first: one run shows all that berth still does differently. Checks of routes still
//! being built are named in the test file's skip list (`NOT_YET`): their differences are printed
//! but do not fail the test, and a listed check that passes says so, to be taken off the list.
//!
//! `BERTH_TESTS_DOCKER_SELF_CHECK=1` runs the berth side against a second dockerd instead: every
//! check must then pass, which proves the commands and the normalisation right.

use std::cell::RefCell;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;
use std::time::Duration;

use regex::Regex;

use crate::dockerd::{docker_command, docker_with, Dockerd};
use crate::{isolate_network, read_response, Daemon, HttpResponse, Output};

/// One daemon under comparison, as the clients reach it.
pub struct Side {
    /// `dockerd` or `berth`.
    pub name: &'static str,
    /// `DOCKER_HOST`.
    pub host: String,
    /// The failed commands of the check under way, for its report: what berth answered.
    failed_commands: RefCell<Vec<String>>,
}

impl Side {
    fn new(name: &'static str, host: String) -> Side {
        Side { name, host, failed_commands: RefCell::new(Vec::new()) }
    }

    /// The docker CLI against this daemon.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.noted(args, docker_with(&self.host, args, None, &[]))
    }

    /// The docker CLI with `stdin` as its standard input.
    pub fn docker_stdin(&self, stdin: &[u8], args: &[&str]) -> Output {
        self.noted(args, docker_with(&self.host, args, Some(stdin), &[]))
    }

    /// Notes a command that failed, with what it printed on stderr.
    fn noted(&self, args: &[&str], out: Output) -> Output {
        if out.code != 0 {
            self.failed_commands.borrow_mut().push(format!(
                "docker {} → exit {}: {}",
                args.join(" "),
                out.code,
                out.stderr.trim()
            ));
        }
        out
    }

    fn take_failed_commands(&self) -> Vec<String> {
        std::mem::take(&mut self.failed_commands.borrow_mut())
    }

    /// The docker CLI command against this daemon, not started (e.g. for a [`crate::pty::Pty`]).
    pub fn docker_command(&self, args: &[&str]) -> std::process::Command {
        docker_command(&self.host, args, &[])
    }

    /// The docker CLI with extra environment variables (e.g. `DOCKER_BUILDKIT=0`).
    pub fn docker_env(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        self.noted(args, docker_with(&self.host, args, None, env))
    }

    pub fn is_reference(&self) -> bool {
        self.name == "dockerd"
    }

    /// One raw HTTP/1.1 request over the daemon's unix socket (`body`: JSON), for what no client
    /// sends: malformed JSON, wrong types, unknown paths.
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> HttpResponse {
        let socket = self.host.strip_prefix("unix://").expect("a unix:// DOCKER_HOST");
        let mut s = UnixStream::connect(socket).expect("connecting to the Docker socket");
        s.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
        let body = body.unwrap_or("");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).expect("sending the request");
        s.write_all(body.as_bytes()).expect("sending the body");
        read_response(&mut s)
    }

    /// [`Side::http`], shown as the status and Docker's `message`.
    pub fn http_shown(&self, method: &str, path: &str, body: Option<&str>) -> String {
        let answer = self.http(method, path, body);
        let message = serde_json::from_slice::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("(no JSON message: {:?})", answer.text()));
        format!("status {}\n{}", answer.status, normalise(&message))
    }
}

/// The daemon on berth's side.
pub enum BerthDaemon {
    Berth(Daemon),
    /// The self-check: a second dockerd.
    Dockerd(Dockerd),
}

/// A reference dockerd and a berth daemon, both with the busybox image, and the checks' results.
pub struct Comparison {
    pub reference: Side,
    pub berth: Side,
    not_yet: &'static [&'static str],
    failures: Vec<String>,
    not_yet_failures: Vec<String>,
    checks: usize,
    // Declared last: dropped after everything above.
    pub berth_daemon: BerthDaemon,
    pub dockerd: Dockerd,
}

impl Comparison {
    /// Starts both daemons, each with `busybox:latest` imported from the same root filesystem,
    /// in a network namespace of the calling thread's own (only `lo`, no route out): the daemons,
    /// their bridges and a registry the test starts reach each other on 127.0.0.1, and a pull of
    /// an unknown image fails at once without a packet leaving the test. `None` (printed) when
    /// dockerd is not installed. `not_yet`: the test file's skip list.
    pub fn start(not_yet: &'static [&'static str]) -> Option<Comparison> {
        isolate_network();
        let dockerd = Dockerd::with_busybox()?;
        let self_check = std::env::var_os("BERTH_TESTS_DOCKER_SELF_CHECK").is_some();
        let (berth_daemon, berth_host) = if self_check {
            eprintln!("self-check: the berth side is a second dockerd");
            let other = Dockerd::with_busybox().expect("dockerd is installed");
            let host = other.docker_host();
            (BerthDaemon::Dockerd(other), host)
        } else {
            let daemon = Daemon::with_busybox();
            let host = daemon.docker_host();
            (BerthDaemon::Berth(daemon), host)
        };
        Some(Comparison {
            reference: Side::new("dockerd", dockerd.docker_host()),
            berth: Side::new("berth", berth_host),
            not_yet,
            failures: Vec::new(),
            not_yet_failures: Vec::new(),
            checks: 0,
            berth_daemon,
            dockerd,
        })
    }

    /// Both sides, reference first.
    pub fn sides(&self) -> [&Side; 2] {
        [&self.reference, &self.berth]
    }

    /// Runs `observe` against dockerd, then against berth; berth must see the same.
    pub fn same(&mut self, name: &str, observe: impl Fn(&Side) -> String) {
        let reference = observed(&observe, &self.reference);
        let berth = observed(&observe, &self.berth);
        self.record(name, &reference, &berth);
    }

    /// [`Comparison::same`], and dockerd must see `expected` (what Docker does, written out: a
    /// check whose reference drifted would compare nothing useful).
    pub fn expect(&mut self, name: &str, expected: &str, observe: impl Fn(&Side) -> String) {
        let reference = observed(&observe, &self.reference);
        if reference != expected {
            self.failures.push(format!(
                "[{name}] dockerd itself differs from what the test expects (a wrong test):\n\
                 --- expected\n{expected}\n--- dockerd\n{reference}"
            ));
        }
        let berth = observed(&observe, &self.berth);
        self.record(name, &reference, &berth);
    }

    /// A check of berth alone, where Docker Engine 20.10 itself is not the reference (it answers
    /// 500 to malformed JSON, which later Engines and berth answer 400; it accepts the isolation
    /// fields berth refuses): berth must show `expected`; what dockerd shows is printed beside.
    pub fn berth_only(&mut self, name: &str, expected: &str, observe: impl Fn(&Side) -> String) {
        if matches!(self.berth_daemon, BerthDaemon::Dockerd(_)) {
            eprintln!("self-check: [{name}] is a check of berth alone, not run");
            return;
        }
        let reference = observed(&observe, &self.reference);
        let berth = observed(&observe, &self.berth);
        self.checks += 1;
        if berth == expected {
            if self.not_yet.contains(&name) {
                eprintln!("NOT_YET lists [{name}], which passes now: take it off the list");
            }
            return;
        }
        let report = format!("[{name}] (berth alone; dockerd shows: {reference:?})\n--- expected\n{expected}\n--- berth\n{berth}");
        if self.not_yet.contains(&name) {
            self.not_yet_failures.push(report);
        } else {
            self.failures.push(report);
        }
    }

    /// Compares what the two sides already showed (a client run once per side that reports
    /// many results); dockerd's must be `expected` when given.
    pub fn compare_shown(&mut self, name: &str, expected: Option<&str>, reference: &str, berth: &str) {
        if let Some(expected) = expected.filter(|e| *e != reference) {
            self.failures.push(format!(
                "[{name}] dockerd itself differs from what the test expects (a wrong test):\n\
                 --- expected\n{expected}\n--- dockerd\n{reference}"
            ));
        }
        self.record(name, reference, berth);
    }

    fn record(&mut self, name: &str, reference: &str, berth: &str) {
        self.checks += 1;
        let listed = self.not_yet.contains(&name);
        if reference == berth {
            if listed {
                eprintln!("NOT_YET lists [{name}], which passes now: take it off the list");
            }
            return;
        }
        let mut report = format!("[{name}]\n--- dockerd\n{reference}\n--- berth\n{berth}");
        let failed = self.berth.take_failed_commands();
        if !failed.is_empty() {
            report.push_str(&format!("\n--- berth's failed commands\n{}", failed.join("\n")));
        }
        if listed {
            self.not_yet_failures.push(report);
        } else {
            self.failures.push(report);
        }
    }

    /// Prints the summary and fails the test when a check not in the skip list differed.
    pub fn finish(self) {
        for report in &self.not_yet_failures {
            eprintln!("NOT YET (skip list) {report}\n");
        }
        for report in &self.failures {
            eprintln!("FAILED {report}\n");
        }
        let failed = self.failures.len();
        let skipped = self.not_yet_failures.len();
        let passed = self.checks - failed - skipped;
        eprintln!("docker comparison: {passed} passed, {failed} failed, {skipped} differ but are in NOT_YET");
        assert!(failed == 0, "{failed} of {} checks differ from Docker Engine (listed above)", self.checks);
    }
}

/// What `observe` shows on `side`; a panic inside it (a file the command should have written is
/// missing, a terminal that never shows a prompt) is shown as such, so that one check's failure
/// does not hide the others'.
fn observed(observe: &impl Fn(&Side) -> String, side: &Side) -> String {
    side.take_failed_commands();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| observe(side))).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        format!("(the check panicked: {message})")
    })
}

/// Exit code and standard output, normalised.
pub fn shown(o: &Output) -> String {
    format!("exit {}\n{}", o.code, normalise(&o.stdout))
}

/// Exit code, standard output and standard error, normalised.
pub fn shown_all(o: &Output) -> String {
    format!("exit {}\n{}stderr:\n{}", o.code, normalise(&o.stdout), normalise(&o.stderr))
}

/// Exit code and whether the output contains `needle` (for messages whose other parts
/// legitimately differ, such as the OCI runtime's chain of wrappers around "permission denied").
/// Both streams: the CLI prints a failed exec's message on standard output.
pub fn exit_and_error(o: &Output, needle: &str) -> String {
    let mentions = o.stderr.contains(needle) || o.stdout.contains(needle);
    format!("exit {}\noutput mentions {needle:?}: {mentions}", o.code)
}

/// Exit code and the sorted, normalised non-empty lines of standard output (for lists whose
/// order is not part of Docker's contract: map iteration, directory walks).
pub fn shown_sorted(o: &Output) -> String {
    let text = normalise(&o.stdout);
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines.sort_unstable();
    format!("exit {}\n{}", o.code, lines.join("\n"))
}

/// What legitimately differs between two daemons running the same commands, replaced by
/// placeholders: IDs and digests (64 or 12 hex digits), RFC 3339 times, relative times ("3
/// seconds ago", "Up 2 minutes"), sizes ("1.99MB"), ports on 127.0.0.1, Go pointers that a
/// template prints for a map of structs; and table padding (column widths follow the values).
pub fn normalise(text: &str) -> String {
    static RULES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        [
            (r"\b[0-9a-f]{64}\b", "<id>"),
            (r"\b[0-9a-f]{12}\b", "<id>"),
            (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", "<time>"),
            (
                r"(Less than a second|About a minute|About an hour|an hour|a minute|\d+ (second|minute|hour|day|week|month|year)s?)",
                "<duration>",
            ),
            (r"\b\d+(\.\d+)?(B|kB|KB|MB|GB|KiB|MiB|GiB)\b", "<size>"),
            (r"127\.0\.0\.1:\d+", "127.0.0.1:<port>"),
            (r"0xc[0-9a-f]+", "<pointer>"),
            (r" {2,}", "  "),
        ]
        .into_iter()
        .map(|(pattern, with)| (Regex::new(pattern).expect("normalisation pattern"), with))
        .collect()
    });
    let mut out = text.to_string();
    for (pattern, with) in rules {
        out = pattern.replace_all(&out, *with).into_owned();
    }
    out.lines().map(str::trim_end).collect::<Vec<_>>().join("\n")
        + if out.ends_with('\n') { "\n" } else { "" }
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn normalise_hides_what_differs_between_daemons() {
        assert_eq!(
            normalise("f1b4eb2a2d3d   busybox   \"sleep 100\"   2 seconds ago   Up 1 second   c1\n"),
            "<id>  busybox  \"sleep 100\"  <duration> ago  Up <duration>  c1\n"
        );
        assert_eq!(normalise("2026-12-07T06:22:37.734013556Z two"), "<time> two");
        assert_eq!(
            normalise("0B (virtual 1.99MB) 127.0.0.1:49153->80/tcp"),
            "<size> (virtual <size>) 127.0.0.1:<port>->80/tcp"
        );
        // Words that only look like hex stay.
        assert_eq!(normalise("exited 137 busybox"), "exited 137 busybox");
    }
}

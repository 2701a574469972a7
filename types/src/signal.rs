//! Signals as Docker names them: `STOPSIGNAL`, `--stop-signal`, `kill -s`. One parser for the
//! CLI, the engine, build and import, so that a stop signal one of them accepts works with all.
//!
//! A table of Linux's signal numbers rather than libc: this crate also compiles to wasm, and the
//! numbers are those of the Linux containers berth runs, whatever the machine that parses them.

use std::fmt;
use std::str::FromStr;

/// Linux's first real-time signal as glibc and Docker count (the kernel's 32 and 33 are
/// glibc's own).
const RTMIN: u8 = 34;
/// Linux's last signal.
const RTMAX: u8 = 64;
/// How far `RTMIN+n` and `RTMAX-n` reach in Docker's table: `RTMIN+15` is 49, `RTMAX-14` is 50.
const RTMIN_PLUS_LAST: u8 = 15;
const RTMAX_MINUS_LAST: u8 = 14;

/// Linux's named signals; the first name of a number is how it is shown.
const NAMES: &[(&str, u8)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// A Linux signal, 1 to 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(u8);

/// A signal that is not one: Docker's `invalid signal: <text>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSignal(pub String);

impl fmt::Display for InvalidSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid signal: {}", self.0)
    }
}

impl std::error::Error for InvalidSignal {}

impl Signal {
    pub const HUP: Signal = Signal(1);
    pub const INT: Signal = Signal(2);
    pub const KILL: Signal = Signal(9);
    pub const TERM: Signal = Signal(15);

    /// The signal numbered `number` (1 to 64).
    pub fn from_number(number: i32) -> Result<Signal, InvalidSignal> {
        u8::try_from(number)
            .ok()
            .filter(|n| (1..=RTMAX).contains(n))
            .map(Signal)
            .ok_or_else(|| InvalidSignal(number.to_string()))
    }

    /// The signal's number.
    pub fn number(self) -> i32 {
        i32::from(self.0)
    }

    /// The name without `SIG` (`TERM`, `RTMIN+3`), `None` for 32 and 33, which have none.
    fn bare_name(self) -> Option<String> {
        let n = self.0;
        if let Some((name, _)) = NAMES.iter().find(|(_, number)| *number == n) {
            return Some((*name).to_string());
        }
        match n {
            RTMIN => Some("RTMIN".into()),
            RTMAX => Some("RTMAX".into()),
            _ if n > RTMIN && n - RTMIN <= RTMIN_PLUS_LAST => Some(format!("RTMIN+{}", n - RTMIN)),
            _ if n < RTMAX && RTMAX - n <= RTMAX_MINUS_LAST => Some(format!("RTMAX-{}", RTMAX - n)),
            _ => None,
        }
    }

    /// The number a bare name (no `SIG`, upper case) stands for.
    fn from_bare_name(name: &str) -> Option<Signal> {
        if let Some((_, n)) = NAMES.iter().find(|(known, _)| *known == name) {
            return Some(Signal(*n));
        }
        // Only the digits Docker's table spells (`RTMIN+3`, not `RTMIN+03`).
        let offset = |digits: &str, last: u8| {
            digits.parse::<u8>().ok().filter(|n| (1..=last).contains(n) && n.to_string() == digits)
        };
        match name {
            "RTMIN" => Some(Signal(RTMIN)),
            "RTMAX" => Some(Signal(RTMAX)),
            _ => {
                if let Some(digits) = name.strip_prefix("RTMIN+") {
                    offset(digits, RTMIN_PLUS_LAST).map(|n| Signal(RTMIN + n))
                } else if let Some(digits) = name.strip_prefix("RTMAX-") {
                    offset(digits, RTMAX_MINUS_LAST).map(|n| Signal(RTMAX - n))
                } else {
                    None
                }
            }
        }
    }
}

/// Docker's syntax: a number (1 to 64), or a name with or without `SIG` in any case (`TERM`,
/// `sigkill`, `SIGRTMIN+3`, `RTMAX-2`).
impl FromStr for Signal {
    type Err = InvalidSignal;

    fn from_str(text: &str) -> Result<Signal, InvalidSignal> {
        let bad = || InvalidSignal(text.to_string());
        let trimmed = text.trim();
        if let Ok(n) = trimmed.parse::<i64>() {
            return i32::try_from(n).ok().and_then(|n| Signal::from_number(n).ok()).ok_or_else(bad);
        }
        let upper = trimmed.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        Signal::from_bare_name(bare).ok_or_else(bad)
    }
}

/// `SIGTERM`, `SIGRTMIN+3`; the number for 32 and 33, which have no name.
impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.bare_name() {
            Some(name) => write!(f, "SIG{name}"),
            None => write!(f, "{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<i32, String> {
        text.parse::<Signal>().map(Signal::number).map_err(|e| e.to_string())
    }

    #[test]
    fn names_with_or_without_sig_in_any_case() {
        assert_eq!(parse("KILL"), Ok(9));
        assert_eq!(parse("SIGKILL"), Ok(9));
        assert_eq!(parse("sigterm"), Ok(15));
        assert_eq!(parse("Usr1"), Ok(10));
        assert_eq!(parse("SIGCLD"), Ok(17));
        assert_eq!(parse("IOT"), Ok(6));
        assert_eq!(parse("POLL"), Ok(29));
    }

    #[test]
    fn numbers_and_real_time_signals() {
        assert_eq!(parse("9"), Ok(9));
        assert_eq!(parse("64"), Ok(64));
        assert_eq!(parse("RTMIN"), Ok(34));
        assert_eq!(parse("RTMIN+3"), Ok(37));
        assert_eq!(parse("sigrtmin+1"), Ok(35));
        assert_eq!(parse("SIGRTMIN+15"), Ok(49));
        assert_eq!(parse("RTMAX-14"), Ok(50));
        assert_eq!(parse("RTMAX-2"), Ok(62));
        assert_eq!(parse("SIGRTMAX"), Ok(64));
    }

    #[test]
    fn bad_signals_are_refused_with_dockers_message() {
        for text in
            ["SIGFOO", "0", "65", "-1", "RTMIN+40", "RTMIN+16", "RTMAX-15", "RTMIN+0", "RTMIN+", "", "SIG"]
        {
            assert_eq!(parse(text), Err(format!("invalid signal: {text}")), "{text:?}");
        }
        assert_eq!(parse("99999999999"), Err("invalid signal: 99999999999".into()));
        assert_eq!(Signal::from_number(0).unwrap_err().to_string(), "invalid signal: 0");
        assert_eq!(Signal::from_number(65).unwrap_err().to_string(), "invalid signal: 65");
    }

    #[test]
    fn every_signal_formats_and_parses_back() {
        for n in 1..=64 {
            let signal = Signal::from_number(n).unwrap();
            let shown = signal.to_string();
            assert_eq!(shown.parse::<Signal>(), Ok(signal), "{n} shown as {shown}");
            assert_eq!(shown.parse::<Signal>().unwrap().number(), n);
        }
        assert_eq!(Signal::TERM.to_string(), "SIGTERM");
        assert_eq!(Signal::from_number(6).unwrap().to_string(), "SIGABRT");
        assert_eq!(Signal::from_number(32).unwrap().to_string(), "32");
        assert_eq!(Signal::from_number(37).unwrap().to_string(), "SIGRTMIN+3");
        assert_eq!(Signal::from_number(62).unwrap().to_string(), "SIGRTMAX-2");
    }
}

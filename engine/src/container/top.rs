//! `berth top`: `ps -ef`-like rows for a container's processes, read from the host's /proc
//! (host PIDs and user names, as Docker's `top` shows them).

use std::fs;

use berth_types::container::TopReport;

/// The report for `pids`; a process that exits meanwhile is left out.
pub(crate) fn report(pids: &[i32]) -> TopReport {
    let users = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let boot = boot_time();
    let uptime = fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()))
        .unwrap_or(0.0);
    let mut pids = pids.to_vec();
    pids.sort_unstable();
    let processes = pids.iter().filter_map(|&pid| row(pid, &users, ticks, boot, uptime)).collect();
    TopReport {
        titles: ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"].map(String::from).to_vec(),
        processes,
    }
}

fn row(pid: i32, users: &str, ticks: u64, boot: i64, uptime: f64) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: the fields follow the last ')'.
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(').map(|(_, c)| c).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is state (field 3 of stat).
    let ppid = fields.get(1)?.to_string();
    let tty_nr: u64 = fields.get(4)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let start: u64 = fields.get(19)?.parse().ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or("0")
        .to_string();
    let user = users
        .lines()
        .find_map(|l| {
            let mut parts = l.split(':');
            let name = parts.next()?;
            (parts.nth(1)? == uid).then(|| name.to_string())
        })
        .unwrap_or(uid);
    let cpu_secs = (utime + stime) / ticks;
    let started_secs = start as f64 / ticks as f64;
    let running_for = (uptime - started_secs).max(1.0);
    let c = (((utime + stime) as f64 / ticks as f64) / running_for * 100.0) as u64;
    let stime_text = chrono::DateTime::from_timestamp(boot + started_secs as i64, 0)
        .map(|t| t.with_timezone(&chrono::Local).format("%H:%M").to_string())
        .unwrap_or_default();
    let tty = if tty_nr == 0 { "?".to_string() } else { tty_name(tty_nr) };
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmd = if cmdline.is_empty() {
        format!("[{comm}]")
    } else {
        String::from_utf8_lossy(&cmdline).trim_end_matches('\0').replace('\0', " ")
    };
    Some(vec![
        user,
        pid.to_string(),
        ppid,
        c.to_string(),
        stime_text,
        tty,
        format!("{:02}:{:02}:{:02}", cpu_secs / 3600, cpu_secs / 60 % 60, cpu_secs % 60),
        cmd,
    ])
}

/// `pts/N` for a pseudo-terminal's device number, else the numbers.
fn tty_name(tty_nr: u64) -> String {
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    if (136..=143).contains(&major) {
        format!("pts/{}", (major - 136) * 256 + minor)
    } else {
        format!("{major}:{minor}")
    }
}

fn boot_time() -> i64 {
    fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse().ok())))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_this_process() {
        let me = std::process::id() as i32;
        let report = report(&[me, i32::MAX]);
        assert_eq!(report.titles.len(), 8);
        assert_eq!(report.processes.len(), 1, "the missing PID is left out");
        assert_eq!(report.processes[0][1], me.to_string());
        assert_eq!(report.processes[0][0], "root");
    }
}

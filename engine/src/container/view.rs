//! Reading containers: list (`ps`), inspect, top and stats.

use std::fs;
use std::time::Instant;

use berth_types::container::{
    ContainerInspect, ContainerState, ContainerStats, ContainerStatus, ContainerSummary, TopReport,
};
use chrono::{SecondsFormat, Utc};

use super::runtime_of;
use super::top;
use crate::error::{Error, Result};
use crate::monitor::protocol::RunState;
use crate::Engine;

impl Engine {
    /// The bytes a container wrote to its own writable layer (`docker ps -s`, `system df`).
    pub async fn container_size(&self, name: &str) -> Result<u64> {
        let id = self.inner.containers.resolve(name)?.id;
        self.blocking(move |inner| {
            Ok(inner.snapshots.writable_changes_path(&id).map(|p| crate::fsutil::disk_usage(&p)).unwrap_or(0))
        })
        .await
    }

    /// `berth inspect CONTAINER`.
    pub async fn inspect_container(&self, name: &str) -> Result<ContainerInspect> {
        let record = self.inner.containers.resolve(name)?;
        let state = self.inner.containers.read_state(&record.id);
        let paths = self.paths(&record.id);
        Ok(ContainerInspect {
            id: record.id.clone(),
            name: format!("/{}", record.name),
            created: rfc3339(record.created),
            image: record.image.clone(),
            image_id: record.image_id.clone(),
            path: record.path.clone(),
            args: record.args.clone(),
            restart_count: state.restart_count,
            state: wire_state(&state),
            config: record.config.clone(),
            runtime: record.runtime.clone(),
            snapshotter: record.snapshotter.clone(),
            log_path: paths.log.display().to_string(),
            network_settings: crate::network::endpoint::settings(&self.inner, &record.id),
            mounts: crate::volume::mounts::mount_points(&self.inner, &record.config.mounts),
        })
    }

    /// `berth ps`: running containers (all with `all`), newest first. Filters are the caller's.
    pub async fn list_containers(&self, all: bool) -> Result<Vec<ContainerSummary>> {
        let mut records = self.inner.containers.list();
        records.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        let now = Utc::now();
        let network_names = crate::network::endpoint::network_names(&self.inner);
        let mut rows = Vec::new();
        for record in records {
            let state = self.inner.containers.read_state(&record.id);
            if !all && !state.is_live() {
                continue;
            }
            let (ports, networks) =
                crate::network::endpoint::summary(&self.inner, &record.id, &network_names);
            let command = command_line(&record.path, &record.args);
            rows.push(ContainerSummary {
                status: human_status(&state, now),
                id: record.id,
                name: record.name,
                image: record.image,
                image_id: record.image_id,
                command,
                created: rfc3339(record.created),
                state: wire_state(&state),
                labels: record.config.labels,
                ports,
                networks,
            });
        }
        Ok(rows)
    }

    /// `berth top`: the container's processes as `ps -ef` shows them.
    pub async fn top_container(&self, name: &str) -> Result<TopReport> {
        let record = self.inner.containers.resolve(name)?;
        let state = self.inner.containers.read_state(&record.id);
        if !matches!(state.status, ContainerStatus::Running | ContainerStatus::Paused) {
            return Err(Error::Conflict(format!("Container {} is not running", record.id)));
        }
        self.blocking(move |inner| {
            let pids = runtime_of(inner, &record)?.pids(&record.id)?;
            Ok(top::report(&pids))
        })
        .await
    }

    /// One stats sample; `cpu_percent` is computed against the previous sample of the same
    /// container taken through this engine (0 for the first one).
    pub async fn container_stats(&self, name: &str) -> Result<ContainerStats> {
        let record = self.inner.containers.resolve(name)?;
        let state = self.inner.containers.read_state(&record.id);
        let id = record.id.clone();
        let live = matches!(state.status, ContainerStatus::Running | ContainerStatus::Paused);
        let (sample, networks) = if live {
            let record = record.clone();
            let pid = state.pid;
            self.blocking(move |inner| {
                let sample = runtime_of(inner, &record)?.stats(&record.id)?;
                Ok((sample, crate::network::counters::of_process(pid)))
            })
            .await?
        } else {
            // Docker shows zeros for a container that does not run.
            Default::default()
        };
        let now = Instant::now();
        let previous = self
            .inner
            .containers
            .cpu_samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), (sample.cpu_usage_ns, now));
        let cpu_percent = match previous {
            Some((cpu, at)) if live && sample.cpu_usage_ns >= cpu => {
                let wall = now.duration_since(at).as_nanos() as f64;
                if wall > 0.0 {
                    (sample.cpu_usage_ns - cpu) as f64 / wall * 100.0
                } else {
                    0.0
                }
            }
            _ => 0.0,
        };
        Ok(ContainerStats {
            id,
            name: record.name,
            read: rfc3339(Utc::now()),
            cpu_percent,
            cpu_usage_ns: sample.cpu_usage_ns,
            memory_usage: sample.memory_usage,
            memory_inactive_file: sample.memory_inactive_file,
            memory_limit: sample.memory_limit.unwrap_or_else(host_memory),
            pids: sample.pids,
            networks,
            block_io: sample.block_io,
        })
    }
}

fn rfc3339(time: chrono::DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn wire_state(state: &RunState) -> ContainerState {
    ContainerState {
        status: state.status,
        pid: state.pid,
        exit_code: state.exit_code,
        oom_killed: state.oom_killed,
        error: state.error.clone(),
        started_at: state.started_at.map(rfc3339).unwrap_or_default(),
        finished_at: state.finished_at.map(rfc3339).unwrap_or_default(),
        restart_count: state.restart_count,
        // Shown while the container runs (Docker's `ps` shows no health for a stopped one).
        health: match state.status {
            ContainerStatus::Running | ContainerStatus::Paused => state.health.clone(),
            _ => None,
        },
    }
}

/// Docker's status column: `Up 2 minutes`, `Up 3 hours (Paused)`, `Exited (0) 3 seconds ago`,
/// `Restarting (1) 2 seconds ago`, `Created`, `Dead`.
fn human_status(state: &RunState, now: chrono::DateTime<Utc>) -> String {
    use berth_types::format::human_duration;
    let since =
        |t: Option<chrono::DateTime<Utc>>| human_duration(t.map(|t| (now - t).num_seconds()).unwrap_or(0));
    match state.status {
        ContainerStatus::Created => "Created".into(),
        ContainerStatus::Running => match &state.health {
            Some(h) => format!("Up {} {}", since(state.started_at), h.status.ps_suffix()),
            None => format!("Up {}", since(state.started_at)),
        },
        ContainerStatus::Paused => format!("Up {} (Paused)", since(state.started_at)),
        ContainerStatus::Restarting => {
            format!("Restarting ({}) {} ago", state.exit_code, since(state.finished_at))
        }
        ContainerStatus::Exited => format!("Exited ({}) {} ago", state.exit_code, since(state.finished_at)),
        ContainerStatus::Removing => "Removal In Progress".into(),
        ContainerStatus::Dead => "Dead".into(),
    }
}

/// `ps`'s COMMAND as Docker's daemon writes it: the path and the arguments joined by spaces,
/// an argument that contains a space in single quotes (`sh -c 'echo hi'`).
fn command_line(path: &str, args: &[String]) -> String {
    let mut line = path.to_string();
    for arg in args {
        line.push(' ');
        if arg.contains(' ') {
            line.push('\'');
            line.push_str(arg);
            line.push('\'');
        } else {
            line.push_str(arg);
        }
    }
    line
}

/// Total memory of the host, the limit `stats` shows for a container without one.
fn host_memory() -> u64 {
    let Ok(text) = fs::read_to_string("/proc/meminfo") else { return 0 };
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_column_quotes_arguments_with_spaces() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(command_line("sh", &args(&["-c", "echo hi"])), "sh -c 'echo hi'");
        assert_eq!(command_line("sleep", &args(&["100"])), "sleep 100");
        assert_eq!(command_line("true", &[]), "true");
    }

    #[test]
    fn status_column_reads_like_dockers() {
        let now = Utc::now();
        let mut state = RunState::created();
        assert_eq!(human_status(&state, now), "Created");
        state.status = ContainerStatus::Running;
        state.started_at = Some(now - chrono::Duration::seconds(120));
        assert_eq!(human_status(&state, now), "Up 2 minutes");
        state.status = ContainerStatus::Paused;
        assert_eq!(human_status(&state, now), "Up 2 minutes (Paused)");
        state.status = ContainerStatus::Exited;
        state.exit_code = 3;
        state.finished_at = Some(now - chrono::Duration::seconds(5));
        assert_eq!(human_status(&state, now), "Exited (3) 5 seconds ago");
    }
}

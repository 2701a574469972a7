//! `berth update`: a container's limits and restart policy.

use berth_types::{ContainerUpdate, UpdateReport};
use clap::Args;
use hyper::Method;

use super::container_path;
use crate::cli::client::{json_body, CliError, Client};
use crate::cli::opts::{parse_cpus, parse_memory, parse_restart};
use crate::cli::{last_error, out};

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Memory limit
    #[arg(short, long, value_parser = parse_memory, value_name = "bytes")]
    pub memory: Option<u64>,
    /// Number of CPUs
    #[arg(long, value_parser = parse_cpus, value_name = "decimal")]
    pub cpus: Option<f64>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, allow_negative_numbers = true, value_name = "int")]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long, value_parser = parse_restart, value_name = "string")]
    pub restart: Option<berth_types::RestartPolicy>,
    #[arg(value_name = "CONTAINER", required = true)]
    pub names: Vec<String>,
}

/// Each container in turn, its name printed when done, as Docker does; the last error is the
/// exit status.
pub async fn update(client: &Client, args: UpdateArgs) -> Result<(), CliError> {
    let update = ContainerUpdate {
        memory: args.memory,
        cpus: args.cpus,
        pids_limit: args.pids_limit,
        restart_policy: args.restart,
    };
    if update == ContainerUpdate::default() {
        return Err(CliError::Usage("you must provide one or more flags when using this command".into()));
    }
    let mut errors = Vec::new();
    for name in &args.names {
        let result: Result<UpdateReport, CliError> = client
            .call_json(
                Method::POST,
                &container_path(name, "/update"),
                Some("application/json"),
                json_body(&update),
            )
            .await;
        match result {
            Ok(report) => {
                for warning in report.warnings {
                    eprintln!("{warning}");
                }
                out(&format!("{name}\n"))?;
            }
            Err(e) => errors.push(e),
        }
    }
    last_error(errors)
}

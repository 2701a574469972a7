//! `berth commit`: a new image from a container's changes.

use berth_types::{CommitReport, CommitRequest};
use clap::Args;
use hyper::Method;

use super::container_path;
use crate::cli::client::{json_body, CliError, Client};
use crate::cli::out;

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change", value_name = "list")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub pause: bool,
    #[arg(value_name = "CONTAINER")]
    pub name: String,
    /// REPOSITORY[:TAG]
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

pub async fn commit(client: &Client, args: CommitArgs) -> Result<(), CliError> {
    let request = CommitRequest {
        reference: args.reference,
        author: args.author,
        comment: args.message,
        changes: args.change,
        pause: args.pause,
    };
    let report: CommitReport = client
        .call_json(
            Method::POST,
            &container_path(&args.name, "/commit"),
            Some("application/json"),
            json_body(&request),
        )
        .await?;
    out(&format!("{}\n", report.id))
}

//! `berth diff`: the paths a container changed, as `C`, `A` and `D` lines.

use berth_types::ContainerChange;
use clap::Args;

use super::container_path;
use crate::cli::client::{CliError, Client};
use crate::cli::out;

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[arg(value_name = "CONTAINER")]
    pub name: String,
}

pub async fn diff(client: &Client, args: DiffArgs) -> Result<(), CliError> {
    let changes: Vec<ContainerChange> = client.get_json(&container_path(&args.name, "/changes")).await?;
    let text: String = changes.iter().map(|c| format!("{} {}\n", c.letter(), c.path)).collect();
    out(&text)
}

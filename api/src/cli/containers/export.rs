//! `berth export`: a container's file system as a tar, to a file or stdout.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use hyper::Method;

use super::container_path;
use crate::cli::client::{empty_body, CliError, Client};

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long, value_name = "string")]
    pub output: Option<PathBuf>,
    #[arg(value_name = "CONTAINER")]
    pub name: String,
}

pub async fn export(client: &Client, args: ExportArgs) -> Result<(), CliError> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(CliError::Usage(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
        ));
    }
    let response =
        client.request(Method::GET, &container_path(&args.name, "/export"), None, empty_body()).await?;
    let mut body = crate::cli::response_reader(response);
    match args.output {
        Some(path) => crate::cli::save_to_file(body, &path).await,
        None => {
            tokio::io::copy(&mut body, &mut tokio::io::stdout())
                .await
                .map_err(|e| CliError::Local(format!("exporting: {e}")))?;
            Ok(())
        }
    }
}

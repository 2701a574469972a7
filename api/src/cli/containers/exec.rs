//! `berth exec`: a process in a running container, attached or detached.

use std::io::IsTerminal;

use super::run::open_failure;
use super::{container_path, ExecArgs};
use crate::cli::client::{query, Client};
use crate::cli::opts::{env_entry, parse_env_file};
use crate::cli::stream::{self, Streams};

/// `berth exec`: returns the process's exit code (126/127 when the command cannot run).
pub async fn exec(client: &Client, args: ExecArgs) -> i32 {
    let fail = |code: i32, message: String| {
        eprintln!("{message}");
        code
    };
    let (name, cmd) = args.container_and_command.split_first().expect("clap requires two values");
    let lookup = |k: &str| std::env::var(k).ok();
    let mut env = Vec::new();
    for file in &args.env_file {
        match std::fs::read_to_string(file)
            .map_err(|e| format!("open {file}: {e}"))
            .and_then(|t| parse_env_file(&t, file, lookup))
        {
            Ok(entries) => env.extend(entries),
            Err(e) => return fail(125, e),
        }
    }
    for entry in &args.env {
        match env_entry(entry, lookup) {
            Ok(e) => env.extend(e),
            Err(e) => return fail(125, e),
        }
    }
    if args.tty && args.interactive && !args.detach && !std::io::stdin().is_terminal() {
        return fail(1, "the input device is not a TTY".into());
    }
    let stdin = args.interactive && !args.detach;
    let mut pairs: Vec<(&str, &str)> = cmd.iter().map(|c| ("cmd", c.as_str())).collect();
    pairs.extend(env.iter().map(|e| ("env", e.as_str())));
    if let Some(u) = &args.user {
        pairs.push(("user", u));
    }
    if let Some(w) = &args.workdir {
        pairs.push(("workdir", w));
    }
    if args.tty {
        pairs.push(("tty", "1"));
    }
    if stdin {
        pairs.push(("stdin", "1"));
    }
    let path = format!("{}/exec{}", container_path(name, ""), query(pairs));
    let socket = match stream::connect(client, &path).await {
        Ok(s) => s,
        Err(e) => {
            let f = open_failure(e);
            return fail(if f.code == 125 { 1 } else { f.code }, f.message);
        }
    };
    if args.detach {
        // The daemon keeps the process running when the client goes away.
        drop(socket);
        return 0;
    }
    match stream::run_session(socket, Streams { tty: args.tty, stdin }).await {
        Ok(code) => code,
        Err(e) => fail(1, e.to_string()),
    }
}

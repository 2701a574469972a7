//! `berth admin`: users, teams and API tokens of the daemon's HTTP API (admins only; over the
//! unix socket, root is admin).

use std::io::{IsTerminal, Read};

use berth_types::auth::{
    CreateTeam, CreateToken, CreateUser, CreatedToken, Role, Team, Token, UpdateUser, User,
};
use hyper::Method;

use super::client::{empty_body, json_body, path_segment, CliError, Client};

#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Manage users
    #[command(subcommand)]
    User(UserCommand),
    /// Manage teams and their members
    #[command(subcommand)]
    Team(TeamCommand),
    /// Manage API tokens
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// List users
    #[command(visible_alias = "ls")]
    List,
    /// Create a user
    Create {
        name: String,
        /// viewer, operator or admin
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Read the password from standard input (else the user has API tokens only)
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change a user's role or password
    Update {
        name: String,
        #[arg(long)]
        role: Option<String>,
        /// Read the new password from standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove users
    #[command(visible_alias = "rm")]
    Remove {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum TeamCommand {
    /// List teams
    #[command(visible_alias = "ls")]
    List,
    /// Create a team
    Create { name: String },
    /// Remove teams (their containers and images go back to the admins)
    #[command(visible_alias = "rm")]
    Remove {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Add users to a team
    Add {
        team: String,
        #[arg(required = true)]
        users: Vec<String>,
    },
    /// Take users out of a team
    Kick {
        team: String,
        #[arg(required = true)]
        users: Vec<String>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// List tokens (never their secrets)
    #[command(visible_alias = "ls")]
    List {
        /// Only display token IDs
        #[arg(short, long)]
        quiet: bool,
    },
    /// Create a token and print its secret (shown only this once)
    Create {
        /// Whose token
        user: String,
        /// What it is for
        #[arg(long, default_value = "cli")]
        name: String,
        /// viewer, operator or admin (at most the user's; the user's by default)
        #[arg(long)]
        role: Option<String>,
        /// How long the token works, as a Go duration (`720h`, `90m`); forever if not given
        #[arg(long, value_name = "DURATION")]
        expiry: Option<String>,
    },
    /// Revoke tokens by id
    #[command(visible_aliases = ["rm", "revoke"])]
    Remove {
        #[arg(required = true)]
        ids: Vec<i64>,
    },
}

/// A role named on the command line.
fn role(name: &str) -> Result<Role, CliError> {
    Role::parse(name)
        .ok_or_else(|| CliError::Local(format!("invalid role {name:?}: viewer, operator or admin")))
}

/// `--expiry`: a positive Go duration, in whole seconds (rounded up).
fn token_expiry(text: &str) -> Result<u64, CliError> {
    let invalid =
        || CliError::Local(format!("invalid --expiry {text:?}: a positive duration such as 720h or 90m"));
    let duration = crate::cli::opts::parse_go_duration(text).ok_or_else(invalid)?;
    let millis = duration.num_milliseconds();
    if millis <= 0 {
        return Err(invalid());
    }
    Ok((millis as u64).div_ceil(1000))
}

fn read_password() -> Result<String, CliError> {
    if std::io::stdin().is_terminal() {
        eprint!("Password: ");
    }
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .map_err(|e| CliError::Local(format!("reading the password from standard input: {e}")))?;
    let password = password.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(CliError::Local("the password on standard input is empty".into()));
    }
    Ok(password)
}

fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<String>| {
        let n = cells.len();
        let mut out = String::new();
        for (i, (cell, w)) in cells.into_iter().zip(&widths).enumerate() {
            if i + 1 == n {
                out.push_str(&cell);
            } else {
                out.push_str(&format!("{cell:<w$}   ", w = *w));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}

/// Runs `berth admin ...`.
pub async fn run(client: &Client, command: AdminCommand) -> Result<(), CliError> {
    match command {
        AdminCommand::User(UserCommand::List) => {
            let users: Vec<User> = client.get_json("/api/v1/users").await?;
            table(
                &["NAME", "ROLE", "TEAMS", "CREATED"],
                users
                    .into_iter()
                    .map(|u| vec![u.name, u.role.as_str().to_string(), u.teams.join(","), u.created])
                    .collect(),
            );
        }
        AdminCommand::User(UserCommand::Create { name, role, password_stdin }) => {
            let role = self::role(&role)?;
            let password = if password_stdin { Some(read_password()?) } else { None };
            let body = CreateUser { name: name.clone(), role, password };
            let _: User = client
                .call_json(Method::POST, "/api/v1/users", Some("application/json"), json_body(&body))
                .await?;
            println!("{name}");
        }
        AdminCommand::User(UserCommand::Update { name, role, password_stdin }) => {
            let password = if password_stdin { Some(read_password()?) } else { None };
            if role.is_none() && password.is_none() {
                return Err(CliError::Local("nothing to change: give --role or --password-stdin".into()));
            }
            let body = UpdateUser { role: role.as_deref().map(self::role).transpose()?, password };
            let path = format!("/api/v1/users/{}", path_segment(&name));
            let _: User =
                client.call_json(Method::PATCH, &path, Some("application/json"), json_body(&body)).await?;
            println!("{name}");
        }
        AdminCommand::User(UserCommand::Remove { names }) => {
            for name in names {
                let path = format!("/api/v1/users/{}", path_segment(&name));
                client.request(Method::DELETE, &path, None, empty_body()).await?;
                println!("{name}");
            }
        }
        AdminCommand::Team(TeamCommand::List) => {
            let teams: Vec<Team> = client.get_json("/api/v1/teams").await?;
            table(
                &["NAME", "MEMBERS", "CREATED"],
                teams.into_iter().map(|t| vec![t.name, t.members.join(","), t.created]).collect(),
            );
        }
        AdminCommand::Team(TeamCommand::Create { name }) => {
            let body = CreateTeam { name: name.clone() };
            let _: Team = client
                .call_json(Method::POST, "/api/v1/teams", Some("application/json"), json_body(&body))
                .await?;
            println!("{name}");
        }
        AdminCommand::Team(TeamCommand::Remove { names }) => {
            for name in names {
                let path = format!("/api/v1/teams/{}", path_segment(&name));
                client.request(Method::DELETE, &path, None, empty_body()).await?;
                println!("{name}");
            }
        }
        AdminCommand::Team(TeamCommand::Add { team, users }) => {
            for user in users {
                let path = format!("/api/v1/teams/{}/members/{}", path_segment(&team), path_segment(&user));
                client.request(Method::PUT, &path, None, empty_body()).await?;
                println!("{user}");
            }
        }
        AdminCommand::Team(TeamCommand::Kick { team, users }) => {
            for user in users {
                let path = format!("/api/v1/teams/{}/members/{}", path_segment(&team), path_segment(&user));
                client.request(Method::DELETE, &path, None, empty_body()).await?;
                println!("{user}");
            }
        }
        AdminCommand::Token(TokenCommand::List { quiet }) => {
            let tokens: Vec<Token> = client.get_json("/api/v1/tokens").await?;
            if quiet {
                for t in tokens {
                    println!("{}", t.id);
                }
                return Ok(());
            }
            table(
                &["ID", "USER", "NAME", "ROLE", "CREATED", "LAST USED", "EXPIRES"],
                tokens
                    .into_iter()
                    .map(|t| {
                        vec![
                            t.id.to_string(),
                            t.user,
                            t.name,
                            t.role.as_str().to_string(),
                            t.created,
                            t.last_used.unwrap_or_else(|| "never".into()),
                            t.expires.unwrap_or_else(|| "never".into()),
                        ]
                    })
                    .collect(),
            );
        }
        AdminCommand::Token(TokenCommand::Create { user, name, role, expiry }) => {
            let expires_in = expiry.as_deref().map(token_expiry).transpose()?;
            let body =
                CreateToken { user, name, role: role.as_deref().map(self::role).transpose()?, expires_in };
            let created: CreatedToken = client
                .call_json(Method::POST, "/api/v1/tokens", Some("application/json"), json_body(&body))
                .await?;
            println!("{}", created.secret);
        }
        AdminCommand::Token(TokenCommand::Remove { ids }) => {
            for id in ids {
                client.request(Method::DELETE, &format!("/api/v1/tokens/{id}"), None, empty_body()).await?;
                println!("{id}");
            }
        }
    }
    Ok(())
}

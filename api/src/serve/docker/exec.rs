//! Docker Engine API: exec instances. Docker makes an exec first (`POST /containers/{id}/exec`,
//! an ID), starts it later (`POST /exec/{id}/start`, usually on an upgraded connection) and is
//! asked for its exit code after its stream ends (`GET /exec/{id}/json`). berth's exec operation
//! makes and starts a process in one call, so the instance waits here until its start.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_engine::container::SessionInput;
use berth_types::auth::Role;
use berth_types::{ContainerStatus, ExecConfig};
use bollard_stubs::models::{ExecConfig as DockerExecConfig, ExecInspectResponse, ProcessConfig};

use super::hijack::{self, OnEnd, Streams};
use super::query::DockerQuery;
use super::{DockerJson, DockerState};
use crate::serve::error::ApiError;
use crate::serve::ops::{self, Caller};

/// How long an ended exec instance can still be inspected (Docker keeps them about as long).
const KEEP_ENDED: Duration = Duration::from_secs(5 * 60);

pub fn routes() -> Router<DockerState> {
    Router::new()
        .route("/containers/{id}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/resize", post(resize))
        .route("/exec/{id}/json", get(inspect))
}

/// Where an exec instance is in its life.
#[derive(Clone)]
enum Phase {
    Created,
    Running(SessionInput),
    Ended { exit_code: Option<i32>, at: Instant },
}

#[derive(Clone)]
struct Instance {
    container: String,
    config: ExecConfig,
    attach_stdout: bool,
    attach_stderr: bool,
    /// The terminal size asked for at create (rows, columns).
    console_size: Option<(u16, u16)>,
    phase: Phase,
}

/// The exec instances made through the Docker API.
#[derive(Clone, Default)]
pub struct Execs(Arc<Mutex<HashMap<String, Instance>>>);

impl Execs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instance>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The IDs of a container's exec instances (inspect's `ExecIDs`).
    pub fn of_container(&self, container: &str) -> Vec<String> {
        let mut ids: Vec<String> =
            self.lock().iter().filter(|(_, i)| i.container == container).map(|(id, _)| id.clone()).collect();
        ids.sort();
        ids
    }

    fn insert(&self, instance: Instance) -> String {
        let id = hex::encode(rand::random::<[u8; 32]>());
        let mut execs = self.lock();
        execs.retain(|_, i| !matches!(i.phase, Phase::Ended { at, .. } if at.elapsed() > KEEP_ENDED));
        execs.insert(id.clone(), instance);
        id
    }

    fn get(&self, id: &str) -> Result<Instance, ApiError> {
        self.lock()
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))
    }

    fn set(&self, id: &str, phase: Phase) {
        if let Some(instance) = self.lock().get_mut(id) {
            instance.phase = phase;
        }
    }

    /// Moves a created instance to running; refuses a second start as Docker does.
    fn begin(&self, id: &str, input: SessionInput) -> Result<(), ApiError> {
        let mut execs = self.lock();
        let instance =
            execs.get_mut(id).ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))?;
        if !matches!(instance.phase, Phase::Created) {
            return Err(ApiError::conflict(format!("Error: Exec command {id} has already run")));
        }
        instance.phase = Phase::Running(input);
        Ok(())
    }
}

fn console_size(size: Option<&Vec<usize>>) -> Result<Option<(u16, u16)>, ApiError> {
    match size.map(Vec::as_slice) {
        None | Some([]) | Some([0, 0]) => Ok(None),
        Some([rows, cols]) if *rows <= usize::from(u16::MAX) && *cols <= usize::from(u16::MAX) => {
            Ok(Some((*rows as u16, *cols as u16)))
        }
        Some(other) => Err(ApiError::bad_request(format!("invalid ConsoleSize {other:?}: [rows, columns]"))),
    }
}

async fn create(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
    DockerJson(body): DockerJson<Option<DockerExecConfig>>,
) -> Result<Response, ApiError> {
    caller.require(Role::Operator)?;
    let body = body.ok_or_else(|| ApiError::bad_request("exec config cannot be empty"))?;
    if body.privileged == Some(true) {
        return Err(ApiError::bad_request("Privileged is not supported by berth").with_field("Privileged"));
    }
    let cmd = body.cmd.clone().unwrap_or_default();
    if cmd.is_empty() {
        return Err(ApiError::bad_request("No exec command specified").with_field("Cmd"));
    }
    let container = ops::containers::inspect(&state.app, &caller, &id).await?;
    match container.state.status {
        ContainerStatus::Running => {}
        ContainerStatus::Paused => {
            return Err(ApiError::conflict(format!(
                "Container {id} is paused, unpause the container before exec"
            )))
        }
        _ => return Err(ApiError::conflict(format!("Container {} is not running", container.id))),
    }
    let instance = Instance {
        container: container.id,
        config: ExecConfig {
            cmd,
            env: body.env.unwrap_or_default(),
            user: body.user.filter(|u| !u.is_empty()),
            working_dir: body.working_dir.filter(|w| !w.is_empty()),
            tty: body.tty.unwrap_or(false),
            open_stdin: body.attach_stdin.unwrap_or(false),
        },
        attach_stdout: body.attach_stdout.unwrap_or(false),
        attach_stderr: body.attach_stderr.unwrap_or(false),
        console_size: console_size(body.console_size.as_ref())?,
        phase: Phase::Created,
    };
    let id = state.execs.insert(instance);
    // bollard's IdResponse serialises its field as `id`; Docker's clients read `Id`.
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "Id": id }))).into_response())
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StartConfig {
    #[serde(default)]
    detach: bool,
    #[serde(default)]
    console_size: Option<Vec<usize>>,
}

/// The exit code of an exec whose command could not be run, as dockerd reports it.
const EXEC_FAILED: i32 = 126;

async fn start(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, super::JSON_BODY_LIMIT)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the request: {e}")))?;
    let config: StartConfig = if bytes.iter().all(u8::is_ascii_whitespace) {
        StartConfig::default()
    } else {
        serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?
    };
    let instance = state.execs.get(&id)?;
    if !matches!(instance.phase, Phase::Created) {
        return Err(ApiError::conflict(format!("Error: Exec command {id} has already run")));
    }
    let exec = match ops::containers::exec(&state.app, &caller, &instance.container, instance.config.clone())
        .await
    {
        Ok(exec) => exec,
        // A command that cannot be run is not an error of the start for dockerd: the stream
        // carries the runtime's message and the exec ends with 126, which the CLI exits with.
        Err(e) if e.exit_code.is_some() && !config.detach => {
            state.execs.set(&id, Phase::Ended { exit_code: Some(EXEC_FAILED), at: Instant::now() });
            let message = format!("OCI runtime exec failed: exec failed: {}: unknown\r\n", e.message);
            return Ok(hijack::hijack_failure(
                Request::from_parts(parts, axum::body::Body::empty()),
                instance.config.tty,
                message,
            ));
        }
        Err(e) => return Err(e),
    };
    state.execs.begin(&id, exec.session.input.clone())?;
    let size = console_size(config.console_size.as_ref())?.or(instance.console_size);
    if let (Some((rows, cols)), true) = (size, instance.config.tty) {
        let _ = exec.session.input.resize(cols, rows).await;
    }
    let audit_log = state.app.audit.clone();
    let audit_row = exec.audit_row;
    let execs = state.execs.clone();
    let exec_id = id.clone();
    let on_end: OnEnd = Box::new(move |end| {
        Box::pin(async move {
            let exit_code = end.as_ref().ok().copied();
            execs.set(&exec_id, Phase::Ended { exit_code, at: Instant::now() });
            if let Some(row) = audit_row {
                match end {
                    Ok(code) => audit_log.exec_ended(row, Some(code), "").await,
                    Err(e) => audit_log.exec_ended(row, None, &e).await,
                }
            }
        })
    });
    if config.detach {
        // Nobody reads the output: it is drained so the process never blocks on it.
        let mut session = exec.session;
        tokio::spawn(async move {
            while session.output.recv().await.is_some() {}
            on_end(session.exit.await.map_err(|e| e.to_string())).await;
        });
        return Ok(StatusCode::OK.into_response());
    }
    let streams = Streams {
        stdin: instance.config.open_stdin,
        stdout: instance.attach_stdout,
        stderr: instance.attach_stderr,
        before: Vec::new(),
    };
    Ok(hijack::hijack(Request::from_parts(parts, axum::body::Body::empty()), exec.session, streams, on_end))
}

async fn resize(
    State(state): State<DockerState>,
    _caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<StatusCode, ApiError> {
    let (rows, cols) = hijack::size(&DockerQuery::parse(raw.as_deref()))?;
    match state.execs.get(&id)?.phase {
        Phase::Running(input) => {
            let _ = input.resize(cols, rows).await;
            Ok(StatusCode::OK)
        }
        // Docker answers a resize of an exec that is not running with an error.
        _ => Err(ApiError::conflict(format!("Exec {id} is not running"))),
    }
}

async fn inspect(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ExecInspectResponse>, ApiError> {
    let instance = state.execs.get(&id)?;
    // The container must still be the caller's to see.
    ops::containers::inspect(&state.app, &caller, &instance.container).await?;
    let (running, exit_code) = match &instance.phase {
        Phase::Created => (false, None),
        Phase::Running(_) => (true, None),
        Phase::Ended { exit_code, .. } => (false, Some(i64::from(exit_code.unwrap_or(-1)))),
    };
    let mut cmd = instance.config.cmd.clone();
    let entrypoint = if cmd.is_empty() { String::new() } else { cmd.remove(0) };
    Ok(Json(ExecInspectResponse {
        can_remove: Some(false),
        detach_keys: Some(String::new()),
        id: Some(id),
        running: Some(running),
        exit_code,
        process_config: Some(ProcessConfig {
            privileged: Some(false),
            user: Some(instance.config.user.clone().unwrap_or_default()),
            tty: Some(instance.config.tty),
            entrypoint: Some(entrypoint),
            arguments: Some(cmd),
        }),
        open_stdin: Some(instance.config.open_stdin),
        open_stderr: Some(instance.attach_stderr),
        open_stdout: Some(instance.attach_stdout),
        container_id: Some(instance.container),
        pid: Some(0),
    }))
}

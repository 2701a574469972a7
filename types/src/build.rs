//! Image builds on the wire: the options of `POST /api/v1/build` and the events it streams.

use serde::{Deserialize, Serialize};

/// What `berth build` asks for (the query of `POST /api/v1/build`; the body is the context tar).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct BuildOptions {
    /// `-t`: references to tag the result with (several allowed).
    pub tags: Vec<String>,
    /// `-f`: the Dockerfile's path inside the context (default `Dockerfile`).
    pub dockerfile: Option<String>,
    /// `--build-arg NAME=VALUE` (or `NAME`, taken from the client's environment by the CLI).
    pub build_args: Vec<String>,
    /// `--label KEY=VALUE`, added to the final image's config.
    pub labels: Vec<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--target`: the stage to build (default: the last one).
    pub target: Option<String>,
    /// `--network`: `none` (default, for RUN isolation), `default` (same as none) or `host`.
    pub network: Option<String>,
}

/// One event of a build, streamed as JSON lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BuildEvent {
    /// A step starts: `[stage k/n] INSTRUCTION` (`step` counts steps of the whole build).
    /// `build_steps`: the steps of the whole build as known when the step starts (a base's
    /// ONBUILD triggers add some when its stage starts).
    Step {
        step: usize,
        stage: String,
        index: usize,
        total: usize,
        #[serde(default)]
        build_steps: usize,
        instruction: String,
    },
    /// The step's result came from the cache.
    Cached { step: usize },
    /// Output of a RUN step (or a notice of the builder), one line or part of one.
    Output { step: usize, stream: String, text: String },
    /// The step finished after `seconds`.
    Done { step: usize, seconds: f64 },
    /// A warning that does not stop the build (unused build args, ...).
    Warning { message: String },
    /// The build finished: the image ID and the references tagged.
    Built { id: String, tags: Vec<String> },
    /// The build failed; nothing was tagged. `exit_code` is the failed RUN step's, when a RUN
    /// step failed.
    Error {
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
    },
}

/// What a finished build made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BuildReport {
    /// The image ID (`sha256:...`).
    pub id: String,
    pub tags: Vec<String>,
    /// Steps whose result came from the cache, and all steps run.
    pub cached_steps: usize,
    pub steps: usize,
}

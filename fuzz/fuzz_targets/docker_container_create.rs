//! The Docker Engine API face: the body of `POST /containers/create` (bollard's
//! `ContainerCreateBody`) through the daemon's own translation into berth's `ContainerConfig`
//! (`api/src/serve/docker/translate.rs`, compiled in here as it is: the api crate is a binary
//! only), then into the run options as `container_config` takes them. A refusal must be a 4xx
//! that names a field where it can; a panic is the bug.
//!
//! Input: the container name (`?name=`), a NUL byte, the JSON body; or only the body.

#![no_main]

use libfuzzer_sys::fuzz_target;

/// The daemon's files the translation uses, from the api crate.
#[allow(dead_code)]
#[path = "../../api/src/serve/error.rs"]
mod error;
#[path = "../../api/src/serve/docker/translate.rs"]
mod translate;

/// Where translate.rs finds `ApiError` in the api crate.
mod serve {
    pub mod error {
        pub use crate::error::ApiError;
    }
}

fuzz_target!(|data: &[u8]| {
    let (name, body) = match data.iter().position(|&b| b == 0) {
        Some(i) => (Some(String::from_utf8_lossy(&data[..i]).into_owned()), &data[i + 1..]),
        None => (None, data),
    };
    let Ok(body) = serde_json::from_slice(body) else { return };
    match translate::container_config(name, body) {
        Ok(config) => berth_fuzz::run_options(&config),
        Err(e) => assert!(e.status.is_client_error(), "{} {}", e.status, e.message),
    }
});

//! berth's own API: the JSON body of `POST /api/v1/containers` (`ContainerConfig`, which the
//! CLI, the dashboard and compose send) into the run options: the create checks and the OCI
//! runtime spec. Bad input must be an error, never a panic.

#![no_main]

use berth_types::container::ContainerConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The API takes a JSON object (`ApiJson`); serde's derived types also take arrays.
    let Ok(serde_json::Value::Object(object)) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(config) = serde_json::from_value::<ContainerConfig>(serde_json::Value::Object(object)) else {
        return;
    };
    berth_fuzz::run_options(&config);
});

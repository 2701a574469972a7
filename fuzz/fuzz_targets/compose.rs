//! Compose files: loading (`compose::model::load`: YAML, merge keys, `${VAR}` interpolation
//! with a `.env` text, the typed model, ports, sizes, durations, mounts) and what `up` computes
//! from a project before it touches the engine: the dependency order, config hashes, the
//! plan. Bad input must be an error, never a panic.
//!
//! Input: the `.env` text, a NUL byte, the compose file; or only a compose file.

#![no_main]

use std::collections::BTreeMap;

use berth_engine::compose::interpolate::{parse_env_file, Variables};
use berth_engine::compose::model;
use berth_engine::compose::plan;
use berth_types::stack::StackUp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (env_file, compose_file) = match text.split_once('\0') {
        Some((env, compose)) => (Some(env.to_string()), compose.to_string()),
        None => (None, text.to_string()),
    };
    let environment: BTreeMap<String, String> =
        [("HOME", "/root"), ("TAG", "1.0"), ("EMPTY", "")].map(|(k, v)| (k.into(), v.into())).into();

    // The interpolation and `.env` parsers on their own, on the whole text.
    if let Some(env) = &env_file {
        let _ = parse_env_file(env, ".env", |name| environment.get(name).cloned());
    }
    if let Ok(mut variables) = Variables::new(None, &environment) {
        let _ = variables.interpolate(&compose_file);
    }
    let _ = model::services_with_env_files(&compose_file);

    // `env_file:` paths resolve under a directory that does not exist: nothing is read.
    let request = StackUp {
        compose_file,
        env_file,
        environment,
        working_dir: "/nonexistent/berth-fuzz/app".into(),
        ..StackUp::default()
    };
    let Ok(project) = model::load(&request, None) else { return };
    let _ = project.config_yaml();
    let _ = project.dependency_order();
    for service in project.services.values() {
        let _ = project.config_hash(service);
        let _ = berth_engine::compose::container_name(&project, service, 1);
    }
    let Ok(selected) = project.selected(&[]) else { return };
    let _ = project.networks_used(&selected);
    let _ = project.volumes_used(&selected);
    let _ = plan::plan(&project, &selected, &[], &BTreeMap::new(), &request);
});

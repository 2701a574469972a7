//! Dockerfiles: parsing (`build::dockerfile::parse`) and the evaluation `build` does without a
//! store: meta ARGs into the stage bases, each config instruction interpreted against the
//! stage's variables (`build::instructions::evaluate`) and applied to an image config, ONBUILD
//! triggers parsed again as their stage does, and the words of RUN and COPY substituted.
//! Bad input must be an error, never a panic.

#![no_main]

use std::collections::BTreeMap;

use berth_engine::build::dockerfile::{self, Cmd, Inst};
use berth_engine::build::instructions::{self, ConfigChange, Scope};
use libfuzzer_sys::fuzz_target;
use serde_json::Map;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(file) = dockerfile::parse("Dockerfile", text) else { return };
    let escape = file.escape;

    // `ARG NAME[=default]` before the first FROM: the variables of the FROM lines.
    let mut meta: BTreeMap<String, String> = BTreeMap::new();
    for step in &file.meta_args {
        if let Inst::Arg(text) = &step.inst {
            let vars = |name: &str| meta.get(name).cloned();
            if let Ok(pairs) = arg_pairs(text, &vars, escape) {
                meta.extend(pairs);
            }
        }
    }
    for stage in &file.stages {
        let vars = |name: &str| meta.get(name).cloned();
        let _ = dockerfile::expand(&stage.base, &vars, escape);
        let mut top = Map::new();
        let mut config = Map::new();
        let mut args: BTreeMap<String, String> = BTreeMap::new();
        let mut cmd_set = false;
        for step in &stage.steps {
            // A build's variables: the config's ENV over the stage's ARGs.
            let vars =
                |name: &str| instructions::env_value(&config, name).or_else(|| args.get(name).cloned());
            match &step.inst {
                Inst::Arg(text) => {
                    if let Ok(pairs) = arg_pairs(text, &vars, escape) {
                        args.extend(pairs);
                    }
                    continue;
                }
                Inst::Run(Cmd::Shell(line)) => {
                    let _ = dockerfile::expand_words(line, &vars, escape);
                }
                Inst::Copy(copy) => {
                    for word in copy.sources.iter().chain([&copy.dest]).chain(&copy.chown).chain(&copy.from) {
                        let _ = dockerfile::expand(word, &vars, escape);
                    }
                }
                Inst::OnBuild(trigger) => {
                    let _ = dockerfile::parse("Dockerfile", &format!("FROM scratch\n{trigger}\n"));
                }
                _ => {}
            }
            let (shell, workdir) = (instructions::shell_of(&config), instructions::workdir_of(&config));
            let scope = Scope { vars: &vars, escape, shell: &shell, workdir: &workdir, cmd_set };
            let Ok(Some(change)) = instructions::evaluate(&step.inst, &scope) else { continue };
            cmd_set |= matches!(change, ConfigChange::Cmd(_));
            let _ = change.shown();
            change.apply(&mut top, &mut config);
        }
        // What the image config is written as.
        serde_json::to_vec(&config).expect("an image config serialises");
    }
});

/// `ARG` as the builder reads it: `NAME` or `NAME=default`, several per line.
fn arg_pairs(text: &str, vars: &dyn dockerfile::Vars, escape: char) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for word in dockerfile::split_raw_words(text, escape) {
        match word.split_once('=') {
            Some((name, value)) => pairs.push((name.to_string(), dockerfile::expand(value, vars, escape)?)),
            None => pairs.push((word, String::new())),
        }
    }
    Ok(pairs)
}

//! The run form: image, name, command, environment, labels, limits, restart policy and
//! terminal options, checked field by field before anything is sent; then create + start, as
//! `berth run -d` does.

use berth_types::auth::Role;
use berth_types::{ContainerConfig, CreatedContainer, Resources, RestartPolicy};
use gloo_net::http::Method;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::api::{self, enc};
use crate::pages::{set_title, PageHeader};

/// What the user typed, as text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunForm {
    pub image: String,
    pub name: String,
    pub command: String,
    pub env: String,
    pub labels: String,
    pub memory: String,
    pub cpus: String,
    pub pids: String,
    /// `no`, `on-failure`, `always`, `unless-stopped`.
    pub restart: String,
    pub max_retries: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub auto_remove: bool,
}

/// Field → message, for every field that is wrong.
pub type FieldErrors = Vec<(&'static str, String)>;

/// Checks the form and builds the request, or says what is wrong with which field.
pub fn validate(form: &RunForm) -> Result<ContainerConfig, FieldErrors> {
    let mut errors: FieldErrors = Vec::new();
    let image = form.image.trim();
    if image.is_empty() {
        errors.push(("image", "an image is required, e.g. busybox".into()));
    } else if image.chars().any(char::is_whitespace) || image.chars().any(|c| c.is_ascii_uppercase()) {
        errors.push(("image", "an image reference has no spaces or capital letters".into()));
    }
    let name = form.name.trim();
    if !name.is_empty() && !valid_name(name) {
        errors.push(("name", "a name is letters, digits and _ . - (starting with a letter or digit)".into()));
    }
    let cmd = match split_words(&form.command) {
        Ok(words) => words,
        Err(e) => {
            errors.push(("command", e));
            Vec::new()
        }
    };
    let mut env = Vec::new();
    for line in form.env.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.split_once('=') {
            Some((key, _)) if !key.is_empty() && !key.contains(char::is_whitespace) => {
                env.push(line.to_owned())
            }
            _ => errors.push(("env", format!("{line:?} is not KEY=VALUE"))),
        }
    }
    let mut labels = std::collections::BTreeMap::new();
    for line in form.labels.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                labels.insert(key.to_owned(), value.to_owned());
            }
            _ => errors.push(("labels", format!("{line:?} is not KEY=VALUE"))),
        }
    }
    let memory = match form.memory.trim() {
        "" => None,
        text => match parse_memory(text) {
            Some(bytes) if bytes >= 6 * 1024 * 1024 => Some(bytes),
            Some(_) => {
                errors.push(("memory", "the minimum memory limit is 6m, as Docker's".into()));
                None
            }
            None => {
                errors.push(("memory", format!("{text:?} is not a size like 256m or 1g")));
                None
            }
        },
    };
    let cpus = match form.cpus.trim() {
        "" => None,
        text => match text.parse::<f64>() {
            Ok(c) if c > 0.0 && c.is_finite() => Some(c),
            _ => {
                errors.push(("cpus", format!("{text:?} is not a positive number of CPUs like 0.5")));
                None
            }
        },
    };
    let pids_limit = match form.pids.trim() {
        "" => None,
        text => match text.parse::<i64>() {
            Ok(p) if p > 0 => Some(p),
            _ => {
                errors.push(("pids", format!("{text:?} is not a positive whole number")));
                None
            }
        },
    };
    let restart_policy = match form.restart.as_str() {
        "" | "no" => RestartPolicy::No,
        "always" => RestartPolicy::Always,
        "unless-stopped" => RestartPolicy::UnlessStopped,
        "on-failure" => match form.max_retries.trim() {
            "" => RestartPolicy::OnFailure { max_retries: 0 },
            text => match text.parse::<u32>() {
                Ok(n) => RestartPolicy::OnFailure { max_retries: n },
                Err(_) => {
                    errors.push(("max_retries", format!("{text:?} is not a whole number")));
                    RestartPolicy::No
                }
            },
        },
        other => {
            errors.push(("restart", format!("unknown restart policy {other:?}")));
            RestartPolicy::No
        }
    };
    if form.auto_remove && restart_policy != RestartPolicy::No {
        errors.push(("restart", "a container removed when it exits cannot also be restarted".into()));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ContainerConfig {
        image: image.to_owned(),
        name: (!name.is_empty()).then(|| name.to_owned()),
        cmd,
        env,
        labels,
        tty: form.tty,
        open_stdin: form.open_stdin,
        auto_remove: form.auto_remove,
        restart_policy,
        resources: Resources { memory, cpus, pids_limit },
        ..ContainerConfig::default()
    })
}

/// Docker's container name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// `-m` sizes: a number with an optional unit b, k, m, g (powers of 1024, as Docker reads them).
pub fn parse_memory(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let text = text
        .strip_suffix('b')
        .filter(|t| !t.is_empty() && !t.ends_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(&text);
    let (number, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 'b'),
    };
    let factor: u64 = match unit {
        'b' => 1,
        'k' => 1 << 10,
        'm' => 1 << 20,
        'g' => 1 << 30,
        _ => return None,
    };
    let value: f64 = number.parse().ok().filter(|v: &f64| *v >= 0.0 && v.is_finite())?;
    Some((value * factor as f64) as u64)
}

/// Splits a command line into words as a POSIX shell would for plain words and quotes:
/// `sh -c 'echo "a b"'` → `sh`, `-c`, `echo "a b"`. No expansions: the daemon runs the words
/// as they are. Hand-written: the rules needed are a dozen lines, a shell-words crate is not
/// in the dependency tree.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("a ' quote is not closed".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("a \" quote is not closed".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("a \" quote is not closed".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("the command ends with a lone \\".into()),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[component]
pub fn RunPage() -> impl IntoView {
    set_title("Run a container");
    let session = crate::session();
    if !session.allows(Role::Operator) {
        return view! {
            <div class="state error" role="alert">
                <h1>"Not allowed"</h1>
                <p>"Your role can look at containers but not run them. Ask an admin for the operator role."</p>
            </div>
        }
        .into_any();
    }
    let form = RwSignal::new(RunForm { image: "busybox".into(), restart: "no".into(), ..RunForm::default() });
    let errors = RwSignal::new(FieldErrors::new());
    let failure = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let navigate = use_navigate();
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        failure.set(None);
        let config = match validate(&form.get_untracked()) {
            Ok(config) => config,
            Err(e) => {
                errors.set(e);
                focus_first_error();
                return;
            }
        };
        errors.set(Vec::new());
        busy.set(true);
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            let created: Result<CreatedContainer, _> =
                api::send_json(Method::POST, "/api/v1/containers", &config).await;
            let result = match created {
                Ok(created) => {
                    api::act(Method::POST, &format!("/api/v1/containers/{}/start", enc(&created.id)))
                        .await
                        .map(|()| created.id)
                        .map_err(|e| format!("created, but it did not start: {}", e.message()))
                }
                Err(e) => Err(e.message()),
            };
            busy.set(false);
            match result {
                Ok(id) => {
                    let target = config.name.unwrap_or(id);
                    navigate(&format!("/containers/{}", enc(&target)), Default::default());
                }
                Err(e) => failure.set(Some(e)),
            }
        });
    };
    let error_for = move |field: &'static str| {
        move || {
            errors.with(|e| e.iter().find(|(f, _)| *f == field).map(|(_, m)| m.clone())).map(|m| {
                view! { <p class="field-error" id=format!("{field}-error")>{m}</p> }
            })
        }
    };
    let invalid = move |field: &'static str| move || errors.with(|e| e.iter().any(|(f, _)| *f == field));
    macro_rules! text_field {
        ($field:ident, $label:expr, $placeholder:expr, $hint:expr) => {
            view! {
                <div class="field">
                    <label for=concat!("run-", stringify!($field))>{$label}</label>
                    <input
                        id=concat!("run-", stringify!($field))
                        name=stringify!($field)
                        placeholder=$placeholder
                        aria-invalid=move || invalid(stringify!($field))().to_string()
                        aria-describedby=concat!(stringify!($field), "-error")
                        prop:value=move || form.with(|f| f.$field.clone())
                        on:input=move |e| form.update(|f| f.$field = event_target_value(&e))
                    />
                    <p class="hint">{$hint}</p>
                    {error_for(stringify!($field))}
                </div>
            }
        };
    }
    macro_rules! check_field {
        ($field:ident, $label:expr) => {
            view! {
                <label class="check-label">
                    <input
                        type="checkbox"
                        name=stringify!($field)
                        prop:checked=move || form.with(|f| f.$field)
                        on:change=move |e| form.update(|f| f.$field = event_target_checked(&e))
                    />
                    {$label}
                </label>
            }
        };
    }
    view! {
        <PageHeader title="Run a container"/>
        <form class="panel form run-form" on:submit=submit novalidate>
            <div class="grid">
                {text_field!(image, "Image", "busybox:latest", "A local image; pull others on the Images page.")}
                {text_field!(name, "Name", "generated when empty", "Letters, digits, _ . -")}
            </div>
            {text_field!(command, "Command", "the image's default", "Words as a shell splits them: sh -c 'echo hi'")}
            <div class="grid">
                <div class="field">
                    <label for="run-env">"Environment"</label>
                    <textarea
                        id="run-env"
                        name="env"
                        rows="3"
                        placeholder="KEY=value, one a line"
                        aria-invalid=move || invalid("env")().to_string()
                        prop:value=move || form.with(|f| f.env.clone())
                        on:input=move |e| form.update(|f| f.env = event_target_value(&e))
                    ></textarea>
                    {error_for("env")}
                </div>
                <div class="field">
                    <label for="run-labels">"Labels"</label>
                    <textarea
                        id="run-labels"
                        name="labels"
                        rows="3"
                        placeholder="key=value, one a line"
                        aria-invalid=move || invalid("labels")().to_string()
                        prop:value=move || form.with(|f| f.labels.clone())
                        on:input=move |e| form.update(|f| f.labels = event_target_value(&e))
                    ></textarea>
                    {error_for("labels")}
                </div>
            </div>
            <fieldset>
                <legend>"Limits"</legend>
                <div class="grid three">
                    {text_field!(memory, "Memory", "no limit", "e.g. 256m, 1g")}
                    {text_field!(cpus, "CPUs", "no limit", "e.g. 0.5")}
                    {text_field!(pids, "Processes", "no limit", "Most processes at once")}
                </div>
            </fieldset>
            <fieldset>
                <legend>"Restart policy"</legend>
                <div class="grid">
                    <div class="field">
                        <label for="run-restart">"When it exits"</label>
                        <select
                            id="run-restart"
                            name="restart"
                            on:change=move |e| form.update(|f| f.restart = event_target_value(&e))
                        >
                            <option value="no">"Do not restart"</option>
                            <option value="on-failure">"Restart on failure"</option>
                            <option value="always">"Always restart"</option>
                            <option value="unless-stopped">"Restart unless stopped"</option>
                        </select>
                        {error_for("restart")}
                    </div>
                    {move || (form.with(|f| f.restart == "on-failure")).then(|| {
                        text_field!(max_retries, "Most retries", "no limit", "0 means no limit")
                    })}
                </div>
            </fieldset>
            <fieldset>
                <legend>"Options"</legend>
                {check_field!(tty, "Allocate a terminal (-t)")}
                {check_field!(open_stdin, "Keep stdin open (-i)")}
                {check_field!(auto_remove, "Remove when it exits (--rm)")}
            </fieldset>
            <p class="hint">
                "Port publishing and volumes are not offered: this daemon's API has no fields for them yet."
            </p>
            {move || failure.get().map(|f| view! { <p class="form-error" role="alert">{f}</p> })}
            <div class="form-actions">
                <a class="button" href="/containers">"Cancel"</a>
                <button type="submit" class="button primary" disabled=busy>
                    {move || if busy.get() { "Starting…" } else { "Run" }}
                </button>
            </div>
        </form>
    }
    .into_any()
}

/// Puts the keyboard on the first field marked invalid, after the view shows it.
fn focus_first_error() {
    request_animation_frame(|| {
        if let Ok(Some(element)) = document().query_selector("[aria-invalid=true]") {
            use wasm_bindgen::JsCast;
            if let Ok(element) = element.dyn_into::<web_sys::HtmlElement>() {
                let _ = element.focus();
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(image: &str) -> RunForm {
        RunForm { image: image.into(), restart: "no".into(), ..RunForm::default() }
    }

    #[test]
    fn a_valid_form_becomes_the_request() {
        let mut f = form("busybox");
        f.name = "web-1".into();
        f.command = r#"sh -c 'echo "a b"; sleep 1'"#.into();
        f.env = "A=1\n\nB=x=y\n".into();
        f.memory = "256m".into();
        f.cpus = "0.5".into();
        f.restart = "on-failure".into();
        f.max_retries = "3".into();
        let config = validate(&f).unwrap();
        assert_eq!(config.name.as_deref(), Some("web-1"));
        assert_eq!(config.cmd, ["sh", "-c", r#"echo "a b"; sleep 1"#]);
        assert_eq!(config.env, ["A=1", "B=x=y"]);
        assert_eq!(config.resources.memory, Some(256 << 20));
        assert_eq!(config.resources.cpus, Some(0.5));
        assert_eq!(config.restart_policy, RestartPolicy::OnFailure { max_retries: 3 });
    }

    #[test]
    fn every_wrong_field_is_named() {
        let mut f = form("");
        f.name = "-bad".into();
        f.command = "echo 'open".into();
        f.env = "NOEQUALS".into();
        f.memory = "lots".into();
        f.cpus = "-1".into();
        f.pids = "0".into();
        let fields: Vec<&str> = validate(&f).unwrap_err().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["image", "name", "command", "env", "memory", "cpus", "pids"]);
        let mut f = form("busybox");
        f.auto_remove = true;
        f.restart = "always".into();
        assert_eq!(validate(&f).unwrap_err()[0].0, "restart");
        f.memory = "1k".into();
        f.restart = "no".into();
        assert!(validate(&f).unwrap_err()[0].1.contains("minimum"));
    }

    #[test]
    fn sizes_and_words() {
        assert_eq!(parse_memory("512"), Some(512));
        assert_eq!(parse_memory("1k"), Some(1024));
        assert_eq!(parse_memory("1.5g"), Some(3 << 29));
        assert_eq!(parse_memory("64MB"), Some(64 << 20));
        assert_eq!(parse_memory("12x"), None);
        assert_eq!(parse_memory(""), None);
        assert_eq!(split_words("  a\\ b  \"c\\\"d\" '' ").unwrap(), ["a b", "c\"d", ""]);
        assert!(split_words("\"x").is_err());
        assert!(valid_name("a1") && !valid_name("a") && !valid_name("a b") && !valid_name("_a"));
    }
}

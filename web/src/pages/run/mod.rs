//! The run form: image, name, command, environment, labels, published ports, mounts, network,
//! limits, restart policy, health check and terminal options, checked field by field with
//! Docker's rules before anything is sent; then create + start, as `berth run -d` does. The
//! daemon's refusals are shown next to the field they are about.

use berth_types::auth::Role;
use berth_types::CreatedContainer;
use gloo_net::http::Method;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::client::api::{self, enc};
use crate::components::team_picker;
use crate::components::{error_field, field_errors, focus_first_error, set_title, PageHeader, TeamPicker};
use crate::forms::FieldErrors;
use fieldsets::{HealthFieldset, MountRows, NetworkFieldset, PortRows};
use form::{validate, RunForm};

mod fieldsets;
pub mod form;
pub mod options;

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
    let team = RwSignal::new(String::new());
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
            let owner = team_picker::picked(team);
            let created: Result<CreatedContainer, _> =
                api::send_json_as(Method::POST, "/api/v1/containers", &config, owner.as_deref()).await;
            let result = match created {
                Ok(created) => {
                    match api::act(Method::POST, &format!("/api/v1/containers/{}/start", enc(&created.id)))
                        .await
                    {
                        Ok(()) => Ok(created.id),
                        Err(e) => {
                            // A container that cannot start (a port in use, a missing bind source)
                            // is removed again, so that the corrected form can be sent as it is
                            // (same name) — unlike `docker run`, which leaves it created.
                            let path = format!("/api/v1/containers/{}?force=1", enc(&created.id));
                            let removed = api::act(Method::DELETE, &path).await.is_ok();
                            let note = if removed {
                                ""
                            } else {
                                " (the created container is left; remove it on the Containers page)"
                            };
                            let message = format!("{}{note}", e.message());
                            Err((e, message))
                        }
                    }
                }
                Err(e) => {
                    let message = e.message();
                    Err((e, message))
                }
            };
            busy.set(false);
            match result {
                Ok(id) => {
                    let target = config.name.unwrap_or(id);
                    navigate(&format!("/containers/{}", enc(&target)), Default::default());
                }
                Err((error, message)) => {
                    // The daemon's refusal goes next to the field it is about, and in the summary.
                    let field = error_field(&error, options::SERVER_FIELDS, options::field_of_server_error);
                    if field != "form" {
                        errors.set(vec![(field, message.clone())]);
                        focus_first_error();
                    }
                    failure.set(Some(message));
                }
            }
        });
    };
    let error_for = move |field: &'static str| field_errors(errors, field);
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
    macro_rules! text_area {
        ($field:ident, $label:expr, $placeholder:expr) => {
            view! {
                <div class="field">
                    <label for=concat!("run-", stringify!($field))>{$label}</label>
                    <textarea
                        id=concat!("run-", stringify!($field))
                        name=stringify!($field)
                        rows="3"
                        placeholder=$placeholder
                        aria-invalid=move || invalid(stringify!($field))().to_string()
                        prop:value=move || form.with(|f| f.$field.clone())
                        on:input=move |e| form.update(|f| f.$field = event_target_value(&e))
                    ></textarea>
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
            <TeamPicker team id="run-team"/>
            {text_field!(command, "Command", "the image's default", "Words as a shell splits them: sh -c 'echo hi'")}
            <div class="grid">
                {text_area!(env, "Environment", "KEY=value, one a line")}
                {text_area!(labels, "Labels", "key=value, one a line")}
            </div>
            <PortRows form errors/>
            <MountRows form errors/>
            <NetworkFieldset form errors/>
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
            <HealthFieldset form errors/>
            <fieldset>
                <legend>"Security"</legend>
                <p class="hint">"Docker's defaults: 14 capabilities, its seccomp profile, /proc and /sys read-only where it keeps them so."</p>
                <div class="grid">
                    {text_field!(cap_add, "Add capabilities", "none", "e.g. NET_ADMIN SYS_TIME, or ALL")}
                    {text_field!(cap_drop, "Drop capabilities", "none", "e.g. NET_RAW, or ALL")}
                </div>
                <div class="grid">
                    {text_area!(devices, "Devices", "/dev/fuse[:/dev/fuse[:rwm]], one a line")}
                    {text_area!(ulimits, "Ulimits", "nofile=1024:2048, one a line")}
                </div>
                {check_field!(read_only, "Read-only root filesystem (--read-only)")}
                {check_field!(no_new_privileges, "No new privileges: setuid programs gain nothing")}
                <div class="grid">
                    <div class="field">
                        <label for="run-seccomp">"System call filter (seccomp)"</label>
                        <select
                            id="run-seccomp"
                            name="seccomp"
                            aria-invalid=move || invalid("seccomp")().to_string()
                            on:change=move |e| form.update(|f| f.seccomp = event_target_value(&e))
                        >
                            <option value="" selected=move || form.with(|f| f.seccomp.is_empty())>"Docker's default profile"</option>
                            <option value="unconfined" selected=move || form.with(|f| f.seccomp == "unconfined")>"None (seccomp=unconfined)"</option>
                            <option value="custom" selected=move || form.with(|f| f.seccomp == "custom")>"A profile of my own (JSON)"</option>
                        </select>
                        {error_for("seccomp")}
                    </div>
                    <div class="field">
                        <label for="run-userns">"User namespace"</label>
                        <select
                            id="run-userns"
                            name="userns"
                            aria-invalid=move || invalid("userns")().to_string()
                            on:change=move |e| form.update(|f| f.userns = event_target_value(&e))
                        >
                            <option value="" selected=move || form.with(|f| f.userns.is_empty())>"The daemon's (remapped under --userns-remap)"</option>
                            <option value="host" selected=move || form.with(|f| f.userns == "host")>"The host's (--userns=host)"</option>
                        </select>
                        <p class="hint">"A privileged container on a remapping daemon needs the host's."</p>
                        {error_for("userns")}
                    </div>
                </div>
                {move || form.with(|f| f.seccomp == "custom").then(|| view! {
                    <div class="field">
                        <label for="run-seccomp_profile">"Seccomp profile"</label>
                        <textarea
                            id="run-seccomp_profile"
                            name="seccomp_profile"
                            rows="6"
                            placeholder="{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [...]}"
                            aria-invalid=move || invalid("seccomp")().to_string()
                            prop:value=move || form.with(|f| f.seccomp_profile.clone())
                            on:input=move |e| form.update(|f| f.seccomp_profile = event_target_value(&e))
                        ></textarea>
                        <p class="hint">"Docker's profile format, as --security-opt seccomp=PROFILE.json reads it."</p>
                    </div>
                })}
                {check_field!(privileged, "Privileged: every capability, the host's devices, no filter")}
                {move || form.with(|f| f.privileged).then(|| view! {
                    <p class="badge warning" role="note">"A privileged container is root on the host."</p>
                })}
            </fieldset>
            <fieldset>
                <legend>"Options"</legend>
                {check_field!(tty, "Allocate a terminal (-t)")}
                {check_field!(open_stdin, "Keep stdin open (-i)")}
                {check_field!(auto_remove, "Remove when it exits (--rm)")}
            </fieldset>
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

//! The create form: a name (or none: the daemon makes one) and labels.

use std::collections::BTreeMap;

use berth_types::name::{check_object_name, ObjectKind};
use berth_types::{VolumeCreate, VolumeInspect};
use leptos::prelude::*;

use crate::components::{error_field, field_error, field_invalid, send_create, CreateActions};

/// Checks a new volume's name (empty: the daemon generates one) and labels (`key=value` lines).
pub fn validate(name: &str, labels: &str) -> Result<VolumeCreate, Vec<(&'static str, String)>> {
    let mut errors = Vec::new();
    let name = name.trim();
    // Empty: the daemon names the volume.
    if !name.is_empty() {
        if let Err(e) = check_object_name(ObjectKind::Volume, name) {
            errors.push(("name", e.to_string()));
        }
    }
    let mut map = BTreeMap::new();
    for line in labels.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                map.insert(k.trim().to_owned(), v.to_owned());
            }
            _ => errors.push(("labels", format!("{line:?} is not key=value"))),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(VolumeCreate { name: name.to_owned(), driver: String::new(), labels: map })
}

/// The request fields a daemon's refusal may name, and the form fields they are shown under.
const SERVER_FIELDS: &[(&str, &str)] = &[("name", "name"), ("labels", "labels")];

/// Which field a daemon's refusal is about, from its words (for a daemon that names none).
fn field_of_error(message: &str) -> &'static str {
    if message.contains("label") {
        "labels"
    } else {
        "name"
    }
}

#[component]
pub fn CreateVolume(on_close: Callback<()>, on_created: Callback<String>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let labels = RwSignal::new(String::new());
    let errors = RwSignal::new(Vec::<(&'static str, String)>::new());
    let busy = RwSignal::new(false);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        send_create(
            validate(&name.get_untracked(), &labels.get_untracked()),
            "/api/v1/volumes",
            errors,
            busy,
            |_: &VolumeCreate, created: VolumeInspect| created.name,
            |e| error_field(e, SERVER_FIELDS, field_of_error),
            on_created,
        );
    };
    let error = move |field| field_error(errors, "vol", field);
    let invalid = move |field| field_invalid(errors, field);
    view! {
        <form class="panel form" on:submit=submit novalidate aria-labelledby="create-volume-heading">
            <h2 id="create-volume-heading">"Create a volume"</h2>
            <div class="grid">
                <div class="field">
                    <label for="vol-name">"Name"</label>
                    <input id="vol-name" name="name" autofocus placeholder="generated when empty"
                        aria-invalid=invalid("name") aria-describedby="vol-name-error"
                        prop:value=name on:input=move |e| name.set(event_target_value(&e))/>
                    <p class="hint">"Letters, digits, _ . -"</p>
                    {error("name")}
                </div>
                <div class="field">
                    <label for="vol-labels">"Labels"</label>
                    <textarea id="vol-labels" name="labels" rows="2" placeholder="key=value, one a line"
                        aria-invalid=invalid("labels") aria-describedby="vol-labels-error"
                        prop:value=labels on:input=move |e| labels.set(event_target_value(&e))></textarea>
                    {error("labels")}
                </div>
            </div>
            {error("form")}
            <CreateActions on_close busy/>
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_form_rules() {
        let v = validate("data", "team=web\n\n a=b=c").unwrap();
        assert_eq!(v.name, "data");
        assert_eq!(v.labels.get("a").map(String::as_str), Some("b=c"));
        assert_eq!(validate("", "").unwrap().name, "", "the daemon names it");
        let e = validate("my data", "nolabel").unwrap_err();
        assert_eq!(e.iter().map(|(f, _)| *f).collect::<Vec<_>>(), ["name", "labels"]);
        assert!(e[0].1.contains("invalid characters"));
    }
}

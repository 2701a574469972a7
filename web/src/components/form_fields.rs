//! A form's errors under its fields, and a create form's buttons. The rules that find the errors
//! are in [`crate::forms`] and next to each form.

use gloo_net::http::Method;
use leptos::prelude::*;

use crate::client::api::{self, ApiError};
use crate::forms::FieldErrors;

/// A form's errors by field (`"form"`: the whole form's).
pub type FormErrors = RwSignal<FieldErrors>;

/// The message under `field`, with the id `{prefix}-{field}-error` that the input's
/// `aria-describedby` names.
pub fn field_error(errors: FormErrors, prefix: &'static str, field: &'static str) -> impl IntoView {
    move || {
        errors.with(|e| e.iter().find(|(f, _)| *f == field).map(|(_, m)| m.clone())).map(|m| {
            view! { <p class="field-error" id=format!("{prefix}-{field}-error") role="alert">{m}</p> }
        })
    }
}

/// `aria-invalid` of `field`'s input.
pub fn field_invalid(errors: FormErrors, field: &'static str) -> impl Fn() -> String + Copy {
    move || errors.with(|e| e.iter().any(|(f, _)| *f == field)).to_string()
}

/// The messages of `field`, as a list under it.
pub fn field_errors(errors: FormErrors, field: &'static str) -> impl IntoView {
    move || {
        let messages: Vec<String> =
            errors.with(|e| e.iter().filter(|(f, _)| *f == field).map(|(_, m)| m.clone()).collect());
        (!messages.is_empty()).then(|| {
            view! {
                <div class="field-error" id=format!("{field}-error") role="alert">
                    {messages.into_iter().map(|m| view! { <p>{m}</p> }).collect_view()}
                </div>
            }
        })
    }
}

/// Puts the keyboard on the first field marked invalid, after the view shows it.
pub fn focus_first_error() {
    request_animation_frame(|| {
        if let Ok(Some(element)) = document().query_selector("[aria-invalid=true]") {
            use wasm_bindgen::JsCast;
            if let Ok(element) = element.dyn_into::<web_sys::HtmlElement>() {
                let _ = element.focus();
            }
        }
    });
}

/// A list's "Create a …" button, which opens its create form (`open`).
#[component]
pub fn CreateButton(label: &'static str, test: &'static str, open: RwSignal<bool>) -> impl IntoView {
    view! {
        <button type="button" class="button primary" data-test=test on:click=move |_| open.set(true)>
            {label}
        </button>
    }
}

/// A create form's Cancel and Create buttons (Create reads "Creating…" while `busy`).
#[component]
pub fn CreateActions(on_close: Callback<()>, busy: RwSignal<bool>) -> impl IntoView {
    view! {
        <div class="form-actions">
            <button type="button" class="button" on:click=move |_| on_close.run(())>"Cancel"</button>
            <button type="submit" class="button primary" disabled=busy>
                {move || if busy.get() { "Creating…" } else { "Create" }}
            </button>
        </div>
    }
}

/// The form field a daemon's refusal goes under. The daemon names the request field it is about
/// in its error body (`field`: the request's JSON name, `resources.memory` for a nested one, or
/// a path parameter's name); `fields` maps those names to this form's fields, and one it does
/// not list goes to the whole form (`"form"`). When the daemon names none, `guess` picks one from
/// the message's words (what the dashboard did before daemons named fields).
pub fn error_field(
    error: &ApiError,
    fields: &[(&str, &'static str)],
    guess: fn(&str) -> &'static str,
) -> &'static str {
    match error.field() {
        Some(named) => fields.iter().find(|(wire, _)| *wire == named).map_or("form", |(_, field)| *field),
        None => guess(&error.message()),
    }
}

/// A create form's submit once its own check ran: the check's errors go under their fields;
/// else `POST path` with the request, then `on_created` with the name `created_name` finds in
/// the request or the answer, or the daemon's refusal under the field `field_of` picks for it
/// (see [`error_field`]).
pub fn send_create<B, T>(
    checked: Result<B, FieldErrors>,
    path: &'static str,
    errors: FormErrors,
    busy: RwSignal<bool>,
    created_name: impl FnOnce(&B, T) -> String + 'static,
    field_of: impl FnOnce(&ApiError) -> &'static str + 'static,
    on_created: Callback<String>,
) where
    B: serde::Serialize + 'static,
    T: serde::de::DeserializeOwned + 'static,
{
    let request = match checked {
        Ok(r) => r,
        Err(e) => {
            errors.set(e);
            return;
        }
    };
    errors.set(Vec::new());
    busy.set(true);
    leptos::task::spawn_local(async move {
        let result: Result<T, _> = api::send_json(Method::POST, path, &request).await;
        busy.set(false);
        match result {
            Ok(created) => {
                on_created.try_run(created_name(&request, created));
            }
            Err(e) => errors.set(vec![(field_of(&e), e.message())]),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(field: Option<&str>) -> ApiError {
        ApiError::Status { status: 400, message: "bad subnet".into(), field: field.map(str::to_owned) }
    }

    #[test]
    fn a_named_field_wins_over_the_guess() {
        let fields = [("name", "name"), ("subnet", "subnet")];
        let guess = |_: &str| "name";
        assert_eq!(error_field(&refused(Some("subnet")), &fields, guess), "subnet");
        assert_eq!(error_field(&refused(Some("driver")), &fields, guess), "form");
        assert_eq!(error_field(&refused(None), &fields, guess), "name");
        assert_eq!(error_field(&ApiError::Unreachable("down".into()), &fields, guess), "name");
    }
}

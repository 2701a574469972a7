//! A container's terminal tab: a command to run, then a terminal on it.

use leptos::prelude::*;

use crate::components::terminal::Terminal;

/// An interactive shell in the container (exec with a tty) in xterm.js.
#[component]
pub fn TerminalTab(name: String, running: Memo<bool>) -> impl IntoView {
    let command = RwSignal::new(String::from("sh"));
    let session = RwSignal::new(0u32);
    view! {
        {move || (!running.get() && session.get() == 0).then(|| view! {
            <div class="state empty"><p>"A terminal opens in a running container. Start it first."</p></div>
        })}
        <form class="toolbar" on:submit=move |e: leptos::ev::SubmitEvent| { e.prevent_default(); session.update(|n| *n += 1); }>
            <label for="exec-command">"Command"</label>
            <input id="exec-command" prop:value=command on:input=move |e| command.set(event_target_value(&e))/>
            <button type="submit" class="button primary" data-test="open-terminal" disabled=move || !running.get()>
                {move || if session.get() == 0 { "Open terminal" } else { "New session" }}
            </button>
        </form>
        // A session stays on screen after it ends (with its message) until a new one starts.
        {move || {
            let n = session.get();
            (n > 0).then(|| {
                let name = name.clone();
                view! { <Terminal name command=command.get_untracked()/> }
            })
        }}
    }
}

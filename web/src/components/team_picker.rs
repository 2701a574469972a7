//! The owning team of what a form creates, for members of several teams: a select that is
//! shown only when there is a choice (with one team, or as an admin without teams, the daemon
//! decides as before).

use leptos::prelude::*;

/// The team picked (`None`: the daemon's default, the user's first team).
pub fn picked(team: RwSignal<String>) -> Option<String> {
    let team = team.get_untracked();
    (!team.is_empty()).then_some(team)
}

/// A select of the user's teams, when they are in more than one.
#[component]
pub fn TeamPicker(team: RwSignal<String>, id: &'static str) -> impl IntoView {
    let teams = crate::session().teams();
    if teams.len() < 2 {
        return ().into_any();
    }
    if team.get_untracked().is_empty() {
        team.set(teams[0].clone());
    }
    view! {
        <div class="field">
            <label for=id>"Team"</label>
            <select id=id name="team" prop:value=team on:change=move |e| team.set(event_target_value(&e))>
                {teams.into_iter().map(|t| view! { <option value=t.clone()>{t.clone()}</option> }).collect_view()}
            </select>
            <p class="hint">"The team that owns what this creates"</p>
        </div>
    }
    .into_any()
}

//! The stacks list (/stacks) and the Up form.

use berth_types::auth::Role;
use berth_types::StackSummary;
use leptos::prelude::*;

use super::up::UpForm;
use crate::client::api::enc;
use crate::client::live::followed;
use crate::components::{set_title, ListStates, LiveBadge, PageHeader, Table};
use crate::format::plural;

#[component]
pub fn Stacks() -> impl IntoView {
    set_title("Stacks");
    let operator = crate::session().allows(Role::Operator);
    let list = followed::<Vec<StackSummary>>("/api/v1/stacks".into(), &["stack", "container"]);
    let reload = list.reload;
    let upping = RwSignal::new(false);
    view! {
        <PageHeader title="Stacks" on_refresh=reload>
            <LiveBadge live=list.live/>
            {operator.then(|| view! {
                <button type="button" class="button primary" data-test="stack-up" on:click=move |_| upping.set(true)>
                    "Up a stack"
                </button>
            })}
        </PageHeader>
        {move || upping.get().then(|| view! { <UpForm on_close=Callback::new(move |()| upping.set(false))/> })}
        <ListStates
            data=list.data
            what="stacks"
            retry=reload
            empty_heading="No stacks yet"
            empty_text={if operator {
                "Paste a compose file with Up a stack, or run berth compose up on the node."
            } else {
                "Stacks started with berth compose up appear here."
            }}
            table={|stacks: Vec<StackSummary>| {
                let count = stacks.len();
                view! {
                    <p class="summary">{format!("{count} stack{}", plural(count))}</p>
                    <Table label="Stacks" class="stacks" columns=["Name", "Status", "Services", "Containers", "Working directory"] numeric=&["Services", "Containers"]>
                        {stacks.into_iter().map(|s| view! {
                            <tr data-name=s.name.clone()>
                                <td data-label="Name"><a href=format!("/stacks/{}", enc(&s.name))>{s.name.clone()}</a></td>
                                <td data-label="Status">{s.status.clone()}</td>
                                <td data-label="Services" class="num">{s.services}</td>
                                <td data-label="Containers" class="num">{s.containers}</td>
                                <td data-label="Directory"><code>{s.working_dir.clone()}</code></td>
                            </tr>
                        }).collect_view()}
                    </Table>
                }
            }}
        />
    }
}

//! History: the event log, containers that exited, builds and (admins) the audit log, each
//! filterable and paged (newest first, "Older" follows the daemon's `next_before`).

use berth_types::auth::Role;
use berth_types::history::{AuditRecord, BuildRecord, EventRecord, FinishedContainer, Page};
use leptos::prelude::*;
use serde::de::DeserializeOwned;

use crate::client::api::{self, enc, ApiError};
use crate::components::{set_title, ErrorPanel, Loading, PageHeader, Table};

/// Rows a page asks for.
const PAGE_SIZE: usize = 50;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Events,
    Containers,
    Builds,
    Audit,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Events => "Events",
            Kind::Containers => "Exited containers",
            Kind::Builds => "Builds",
            Kind::Audit => "Audit log",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Kind::Events => "/api/v1/history/events",
            Kind::Containers => "/api/v1/history/containers",
            Kind::Builds => "/api/v1/history/builds",
            Kind::Audit => "/api/v1/history/audit",
        }
    }

    /// The filters the daemon takes for this history, with their labels.
    fn filters(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Kind::Events => {
                &[("type", "Type"), ("action", "Action"), ("subject", "Subject"), ("outcome", "Outcome")]
            }
            Kind::Containers => &[("name", "Name"), ("exit_code", "Exit code")],
            Kind::Builds => &[("user", "User"), ("outcome", "Outcome")],
            Kind::Audit => &[("user", "User"), ("method", "Method"), ("container", "Container")],
        }
    }
}

/// A history row as table cells.
trait Row: DeserializeOwned + Clone + Send + Sync + 'static {
    const COLUMNS: &'static [&'static str];
    fn cells(&self) -> Vec<String>;
    /// Whether the row records a failure (shown in red).
    fn failed(&self) -> bool {
        false
    }
}

impl Row for EventRecord {
    const COLUMNS: &'static [&'static str] = &["Time", "Type", "Action", "Subject", "Outcome", "Message"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.time.clone(),
            self.event_type.clone(),
            self.action.clone(),
            self.subject.clone(),
            self.outcome.clone(),
            self.message.clone(),
        ]
    }
    fn failed(&self) -> bool {
        self.outcome != "success"
    }
}

impl Row for FinishedContainer {
    const COLUMNS: &'static [&'static str] = &["Finished", "Name", "Image", "Exit code", "ID"];
    fn cells(&self) -> Vec<String> {
        let code = match (self.exit_code, self.oom) {
            (_, true) => "OOM killed".to_owned(),
            (Some(c), false) => c.to_string(),
            (None, false) => "—".to_owned(),
        };
        vec![
            self.finished.clone(),
            self.name.clone(),
            self.image.clone(),
            code,
            crate::format::short_id(&self.container_id).to_owned(),
        ]
    }
    fn failed(&self) -> bool {
        self.oom || self.exit_code.is_some_and(|c| c != 0)
    }
}

impl Row for BuildRecord {
    const COLUMNS: &'static [&'static str] = &["Started", "User", "Tags", "Outcome", "Image", "Ended"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.started.clone(),
            self.user.clone(),
            self.tags.join(", "),
            self.outcome.clone().unwrap_or_else(|| "running".into()),
            self.image_id.as_deref().map(crate::format::short_id).unwrap_or("—").to_owned(),
            self.ended.clone().unwrap_or_default(),
        ]
    }
    fn failed(&self) -> bool {
        self.outcome.as_deref().is_some_and(|o| o != "success")
    }
}

impl Row for AuditRecord {
    const COLUMNS: &'static [&'static str] = &[
        "Time",
        "API",
        "User",
        "Address",
        "Method",
        "Path",
        "Status",
        "Container",
        "Command",
        "Exit code",
        "Ended",
        "Message",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.time.clone(),
            self.api.clone(),
            self.user.clone(),
            self.address.clone(),
            self.method.clone(),
            self.path.clone(),
            self.status.to_string(),
            self.container.clone(),
            self.command.clone(),
            self.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            self.ended.clone().unwrap_or_default(),
            self.message.clone(),
        ]
    }
    fn failed(&self) -> bool {
        self.status >= 400
    }
}

#[component]
pub fn History() -> impl IntoView {
    set_title("History");
    let admin = crate::session().allows(Role::Admin);
    let kind = RwSignal::new(Kind::Events);
    let kinds: Vec<Kind> = [Kind::Events, Kind::Containers, Kind::Builds]
        .into_iter()
        .chain(admin.then_some(Kind::Audit))
        .collect();
    view! {
        <PageHeader title="History"/>
        <div class="tabs" role="tablist" aria-label="Histories">
            {kinds.into_iter().map(|k| view! {
                <button type="button" role="tab" class="tab" aria-selected=move || (kind.get() == k).to_string() on:click=move |_| kind.set(k)>
                    {k.label()}
                </button>
            }).collect_view()}
        </div>
        {move || match kind.get() {
            Kind::Events => history_table::<EventRecord>(Kind::Events).into_any(),
            Kind::Containers => history_table::<FinishedContainer>(Kind::Containers).into_any(),
            Kind::Builds => history_table::<BuildRecord>(Kind::Builds).into_any(),
            Kind::Audit => history_table::<AuditRecord>(Kind::Audit).into_any(),
        }}
    }
}

/// One history's filters, table and pager.
fn history_table<T: Row>(kind: Kind) -> impl IntoView {
    let filters = RwSignal::new(vec![String::new(); kind.filters().len()]);
    // `before` of each page shown so far: the last is the current page.
    let cursors = RwSignal::new(vec![None::<i64>]);
    let page = RwSignal::new(None::<Result<Page<T>, ApiError>>);
    let load = move || {
        let before = cursors.with_untracked(|c| c.last().copied().flatten());
        let mut query = vec![format!("limit={PAGE_SIZE}")];
        if let Some(b) = before {
            query.push(format!("before={b}"));
        }
        filters.with_untracked(|values| {
            for ((key, _), value) in kind.filters().iter().zip(values) {
                if !value.trim().is_empty() {
                    query.push(format!("{key}={}", enc(value.trim())));
                }
            }
        });
        let path = format!("{}?{}", kind.path(), query.join("&"));
        page.set(None);
        leptos::task::spawn_local(async move { page.set(Some(api::get::<Page<T>>(&path).await)) });
    };
    load();
    let apply = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        cursors.set(vec![None]);
        load();
    };
    view! {
        <form class="toolbar filters" on:submit=apply aria-label="Filters">
            {kind.filters().iter().enumerate().map(|(i, (key, label))| {
                let id = format!("filter-{key}");
                view! {
                    <label for=id.clone()>{*label}</label>
                    <input id=id prop:value=move || filters.with(|f| f[i].clone()) on:input=move |e| filters.update(|f| f[i] = event_target_value(&e))/>
                }
            }).collect_view()}
            <button type="submit" class="button small">"Filter"</button>
        </form>
        {move || match page.get() {
            None => view! { <Loading what="history"/> }.into_any(),
            Some(Err(error)) => view! { <ErrorPanel error retry=Callback::new(move |()| load())/> }.into_any(),
            Some(Ok(p)) if p.items.is_empty() => view! { <div class="state empty"><p>"Nothing recorded here (yet)."</p></div> }.into_any(),
            Some(Ok(p)) => {
                let next = p.next_before;
                view! {
                    <Table label=kind.label() columns=T::COLUMNS>
                        {p.items.iter().map(|row| {
                            let class = if row.failed() { "failed" } else { "" };
                            view! {
                                <tr class=class>
                                    {row.cells().into_iter().zip(T::COLUMNS).map(|(cell, column)| view! { <td data-label=*column>{cell}</td> }).collect_view()}
                                </tr>
                            }
                        }).collect_view()}
                    </Table>
                    <div class="pager">
                        <button type="button" class="button small" disabled=move || cursors.with(|c| c.len() <= 1)
                            on:click=move |_| { cursors.update(|c| { c.pop(); }); load(); }>"Newer"</button>
                        <span class="muted">{move || format!("Page {}", cursors.with(Vec::len))}</span>
                        <button type="button" class="button small" disabled=next.is_none()
                            on:click=move |_| { cursors.update(|c| c.push(next)); load(); }>"Older"</button>
                    </div>
                }
                .into_any()
            }
        }}
    }
}

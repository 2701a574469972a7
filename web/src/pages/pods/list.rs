//! The pods list (/pods): namespace, pod, containers, IP, state; a pod's containers link to
//! their page's Logs and Terminal tabs. Follows the event feed.

use berth_types::auth::Role;
use berth_types::pod::PodSummary;
use berth_types::ContainerStatus;
use leptos::prelude::*;

use crate::client::live::{followed, now};
use crate::components::{set_title, ListStates, LiveBadge, PageHeader, StateBadge, Table};
use crate::format::{self, dash, plural};

/// `GET /api/v1/pods`, grouped by namespace.
#[component]
pub fn Pods() -> impl IntoView {
    set_title("Pods");
    let operator = crate::session().allows(Role::Operator);
    let list = followed::<Vec<PodSummary>>("/api/v1/pods".into(), &["pod", "container"]);
    let reload = list.reload;
    view! {
        <PageHeader title="Pods" on_refresh=reload>
            <LiveBadge live=list.live/>
        </PageHeader>
        <ListStates
            data=list.data
            what="pods"
            retry=reload
            empty_heading="No pods"
            empty_text="Pods appear here when kubelet (or another CRI client) runs them on berth's CRI socket (berth serve --cri-socket)."
            table=move |pods| view! { <PodTable pods operator/> }
        />
    }
}

#[component]
fn PodTable(pods: Vec<PodSummary>, operator: bool) -> impl IntoView {
    let count = pods.len();
    let now = now();
    view! {
        <p class="summary">{format!("{count} pod{}", plural(count))}</p>
        <Table label="Pods" class="pods" columns=["Namespace", "Pod", "Containers", "IP", "State", "Created"]>
            {by_namespace(pods)
                .into_iter()
                .map(|p| {
                    view! {
                        <tr data-name=format!("{}/{}", p.namespace, p.name)>
                            <td data-label="Namespace">{p.namespace.clone()}</td>
                            <td data-label="Pod">
                                {p.name.clone()}
                                " "
                                <code class="id muted" title=p.id.clone()>{format::short_id(&p.id).to_owned()}</code>
                            </td>
                            <td data-label="Containers">
                                <ul class="plain">
                                    {p.containers
                                        .iter()
                                        .map(|c| {
                                            let running = c.status == ContainerStatus::Running;
                                            view! {
                                                <li>
                                                    <a href=container_link(&c.id, None)>{c.name.clone()}</a>
                                                    " "
                                                    <StateBadge status=c.status/>
                                                    {operator.then(|| view! {
                                                        " "
                                                        <a class="muted" href=container_link(&c.id, Some("logs"))>"logs"</a>
                                                        {running.then(|| view! {
                                                            " "
                                                            <a class="muted" href=container_link(&c.id, Some("terminal"))>"exec"</a>
                                                        })}
                                                    })}
                                                </li>
                                            }
                                        })
                                        .collect_view()}
                                </ul>
                            </td>
                            <td data-label="IP"><code>{ip_text(&p)}</code></td>
                            <td data-label="State">
                                <span class=format!("badge pod-{}", p.state)>{state_text(&p)}</span>
                            </td>
                            <td data-label="Created" title=p.created.clone()>{format::time_ago(&p.created, now)}</td>
                        </tr>
                    }
                })
                .collect_view()}
        </Table>
    }
}

/// Pods by namespace, then name (then newest first for a name run again).
pub fn by_namespace(mut pods: Vec<PodSummary>) -> Vec<PodSummary> {
    pods.sort_by(|a, b| {
        (a.namespace.as_str(), a.name.as_str())
            .cmp(&(b.namespace.as_str(), b.name.as_str()))
            .then_with(|| b.created.cmp(&a.created))
    });
    pods
}

/// A pod container's page (by its hex ID: nothing to escape), opened on a tab (`logs`,
/// `terminal`) when given.
pub fn container_link(id: &str, tab: Option<&str>) -> String {
    match tab {
        Some(tab) => format!("/containers/{id}?tab={tab}"),
        None => format!("/containers/{id}"),
    }
}

/// `ready (2/3 running)`, `not ready`.
pub fn state_text(pod: &PodSummary) -> String {
    if pod.state != "ready" {
        return "not ready".into();
    }
    let running = pod.containers.iter().filter(|c| c.status == ContainerStatus::Running).count();
    format!("ready ({running}/{} running)", pod.containers.len())
}

/// The pod's address; `host` for a pod on the host's network.
pub fn ip_text(pod: &PodSummary) -> String {
    if pod.host_network {
        "host".into()
    } else {
        dash(&pod.ip)
    }
}

#[cfg(test)]
mod tests {
    use berth_types::pod::PodContainer;

    use super::*;

    fn pod(namespace: &str, name: &str, created: &str) -> PodSummary {
        PodSummary {
            id: format!("{namespace}-{name}-{created}"),
            name: name.into(),
            namespace: namespace.into(),
            state: "ready".into(),
            created: created.into(),
            ..Default::default()
        }
    }

    #[test]
    fn pods_are_grouped_by_namespace_then_name_newest_first() {
        let sorted = by_namespace(vec![
            pod("kube-system", "dns", "2026-01-01T00:00:00Z"),
            pod("default", "web", "2026-01-01T00:00:00Z"),
            pod("default", "web", "2026-01-02T00:00:00Z"),
            pod("default", "api", "2026-01-03T00:00:00Z"),
        ]);
        let order: Vec<(&str, &str, &str)> =
            sorted.iter().map(|p| (p.namespace.as_str(), p.name.as_str(), &p.created[..10])).collect();
        assert_eq!(
            order,
            [
                ("default", "api", "2026-01-03"),
                ("default", "web", "2026-01-02"),
                ("default", "web", "2026-01-01"),
                ("kube-system", "dns", "2026-01-01"),
            ]
        );
    }

    #[test]
    fn container_links_open_the_logs_or_terminal_tab() {
        assert_eq!(container_link("abc", None), "/containers/abc");
        assert_eq!(container_link("abc", Some("logs")), "/containers/abc?tab=logs");
        assert_eq!(container_link("abc", Some("terminal")), "/containers/abc?tab=terminal");
    }

    #[test]
    fn state_counts_running_containers_and_ip_says_host() {
        let mut p = pod("default", "web", "");
        p.containers = vec![
            PodContainer { id: "1".into(), name: "app".into(), status: ContainerStatus::Running },
            PodContainer { id: "2".into(), name: "init".into(), status: ContainerStatus::Exited },
        ];
        assert_eq!(state_text(&p), "ready (1/2 running)");
        p.state = "notready".into();
        assert_eq!(state_text(&p), "not ready");
        assert_eq!(ip_text(&p), dash(""));
        p.ip = "10.88.0.5".into();
        assert_eq!(ip_text(&p), "10.88.0.5");
        p.host_network = true;
        assert_eq!(ip_text(&p), "host");
    }
}

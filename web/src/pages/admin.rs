//! Admin: users (role, password, teams), teams and their members, API tokens (the secret is
//! shown once, when it is made).

use berth_types::auth::{
    CreateTeam, CreateToken, CreateUser, CreatedToken, Role, Team, Token, UpdateUser, User,
};
use gloo_net::http::Method;
use leptos::prelude::*;

use crate::client::api::{self, enc, ApiError};
use crate::components::{set_title, ErrorPanel, Loading, PageHeader, Table};

#[component]
pub fn Admin() -> impl IntoView {
    set_title("Admin");
    if !crate::session().allows(Role::Admin) {
        return view! {
            <div class="state error" role="alert"><h1>"Not allowed"</h1><p>"Only admins manage users, teams and tokens."</p></div>
        }
        .into_any();
    }
    let users = LocalResource::new(|| api::get::<Vec<User>>("/api/v1/users"));
    let teams = LocalResource::new(|| api::get::<Vec<Team>>("/api/v1/teams"));
    let tokens = LocalResource::new(|| api::get::<Vec<Token>>("/api/v1/tokens"));
    let refresh = Callback::new(move |()| {
        users.refetch();
        teams.refetch();
        tokens.refetch();
    });
    let notice = RwSignal::new(None::<(bool, String)>);
    let report = move |result: Result<String, ApiError>| {
        notice.set(Some(match result {
            Ok(text) => (true, text),
            Err(e) => (false, e.message()),
        }));
        refresh.run(());
    };
    view! {
        <PageHeader title="Admin" on_refresh=refresh/>
        {move || notice.get().map(|(ok, text)| view! { <p class=if ok { "notice ok" } else { "notice failed" } role="status">{text}</p> })}
        <section class="panel" aria-labelledby="users-heading">
            <h2 id="users-heading">"Users"</h2>
            <NewUser report/>
            {move || match users.get() {
                None => view! { <Loading what="users"/> }.into_any(),
                Some(Err(error)) => view! { <ErrorPanel error retry=refresh/> }.into_any(),
                Some(Ok(list)) => view! {
                    <Table label="Users" columns=["Name", "Role", "Teams", "Created"] actions=true>
                        {list.into_iter().map(|u| {
                            let name = u.name.clone();
                            let name2 = u.name.clone();
                            let change_role = move |e: leptos::ev::Event| {
                                // The select offers only the roles' own names.
                                let Some(role) = Role::parse(&event_target_value(&e)) else { return };
                                let name = name.clone();
                                leptos::task::spawn_local(async move {
                                    let body = UpdateUser { role: Some(role), password: None };
                                    let r: Result<User, _> = api::send_json(Method::PATCH, &format!("/api/v1/users/{}", enc(&name)), &body).await;
                                    report(r.map(|u| format!("{} is now {}", u.name, u.role.as_str())));
                                });
                            };
                            let remove = move |_| {
                                if !window().confirm_with_message(&format!("Remove user {name2}?")).unwrap_or(false) { return; }
                                let name = name2.clone();
                                leptos::task::spawn_local(async move {
                                    let r = api::act(Method::DELETE, &format!("/api/v1/users/{}", enc(&name))).await;
                                    report(r.map(|()| format!("Removed user {name}")));
                                });
                            };
                            view! {
                                <tr>
                                    <td data-label="Name">{u.name.clone()}</td>
                                    <td data-label="Role">
                                        <select aria-label=format!("Role of {}", u.name) on:change=change_role>
                                            {Role::ALL.into_iter().map(|r| view! { <option value=r.as_str() selected=r == u.role>{r.as_str()}</option> }).collect_view()}
                                        </select>
                                    </td>
                                    <td data-label="Teams">{u.teams.join(", ")}</td>
                                    <td data-label="Created">{u.created.clone()}</td>
                                    <td class="row-actions"><button type="button" class="button small danger" on:click=remove>"Remove"</button></td>
                                </tr>
                            }
                        }).collect_view()}
                    </Table>
                }.into_any(),
            }}
        </section>
        <section class="panel" aria-labelledby="teams-heading">
            <h2 id="teams-heading">"Teams"</h2>
            <NewTeam report/>
            {move || match teams.get() {
                None => view! { <Loading what="teams"/> }.into_any(),
                Some(Err(error)) => view! { <ErrorPanel error retry=refresh/> }.into_any(),
                Some(Ok(list)) if list.is_empty() => view! { <p class="muted">"No teams yet. Containers and images of non-admins belong to a team."</p> }.into_any(),
                Some(Ok(list)) => view! {
                    <ul class="teams">
                        {list.into_iter().map(|t| view! { <TeamItem t report/> }).collect_view()}
                    </ul>
                }.into_any(),
            }}
        </section>
        <section class="panel" aria-labelledby="tokens-heading">
            <h2 id="tokens-heading">"API tokens"</h2>
            <NewToken report/>
            {move || match tokens.get() {
                None => view! { <Loading what="tokens"/> }.into_any(),
                Some(Err(error)) => view! { <ErrorPanel error retry=refresh/> }.into_any(),
                Some(Ok(list)) if list.is_empty() => view! { <p class="muted">"No API tokens."</p> }.into_any(),
                Some(Ok(list)) => view! {
                    <Table label="Tokens" columns=["Name", "User", "Role", "Created", "Last used", "Expires"] actions=true>
                        {list.into_iter().map(|t| {
                            let id = t.id;
                            let revoke = move |_| {
                                leptos::task::spawn_local(async move {
                                    let r = api::act(Method::DELETE, &format!("/api/v1/tokens/{id}")).await;
                                    report(r.map(|()| "Token revoked".to_owned()));
                                });
                            };
                            view! {
                                <tr>
                                    <td data-label="Name">{t.name.clone()}</td>
                                    <td data-label="User">{t.user.clone()}</td>
                                    <td data-label="Role">{t.role.as_str()}</td>
                                    <td data-label="Created">{t.created.clone()}</td>
                                    <td data-label="Last used">{t.last_used.clone().unwrap_or_else(|| "never".into())}</td>
                                    <td data-label="Expires">{t.expires.clone().unwrap_or_else(|| "never".into())}</td>
                                    <td class="row-actions"><button type="button" class="button small danger" on:click=revoke>"Revoke"</button></td>
                                </tr>
                            }
                        }).collect_view()}
                    </Table>
                }.into_any(),
            }}
        </section>
    }
    .into_any()
}

#[component]
fn NewUser(report: impl Fn(Result<String, ApiError>) + Copy + Send + Sync + 'static) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let role = RwSignal::new(String::from("viewer"));
    let submit = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        let body = CreateUser {
            name: name.get_untracked().trim().to_owned(),
            role: Role::parse(&role.get_untracked()).unwrap_or(Role::Viewer),
            password: Some(password.get_untracked()).filter(|p| !p.is_empty()),
        };
        leptos::task::spawn_local(async move {
            let r: Result<User, _> = api::send_json(Method::POST, "/api/v1/users", &body).await;
            if r.is_ok() {
                name.set(String::new());
                password.set(String::new());
            }
            report(r.map(|u| format!("Created user {} ({})", u.name, u.role.as_str())));
        });
    };
    view! {
        <form class="toolbar" on:submit=submit aria-label="New user">
            <label for="user-name">"Name"</label>
            <input id="user-name" required prop:value=name on:input=move |e| name.set(event_target_value(&e))/>
            <label for="user-password">"Password"</label>
            <input id="user-password" type="password" autocomplete="new-password" placeholder="8+ characters; empty: tokens only" prop:value=password on:input=move |e| password.set(event_target_value(&e))/>
            <label for="user-role">"Role"</label>
            <select id="user-role" on:change=move |e| role.set(event_target_value(&e))>
                {Role::ALL.into_iter().map(|r| view! { <option value=r.as_str()>{r.as_str()}</option> }).collect_view()}
            </select>
            <button type="submit" class="button primary small">"Add user"</button>
        </form>
    }
}

#[component]
fn NewTeam(report: impl Fn(Result<String, ApiError>) + Copy + Send + Sync + 'static) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let submit = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        let body = CreateTeam { name: name.get_untracked().trim().to_owned() };
        leptos::task::spawn_local(async move {
            let r: Result<Team, _> = api::send_json(Method::POST, "/api/v1/teams", &body).await;
            if r.is_ok() {
                name.set(String::new());
            }
            report(r.map(|t| format!("Created team {}", t.name)));
        });
    };
    view! {
        <form class="toolbar" on:submit=submit aria-label="New team">
            <label for="team-name">"Team"</label>
            <input id="team-name" required prop:value=name on:input=move |e| name.set(event_target_value(&e))/>
            <button type="submit" class="button primary small">"Add team"</button>
        </form>
    }
}

#[component]
fn TeamItem(
    t: Team,
    report: impl Fn(Result<String, ApiError>) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let member = RwSignal::new(String::new());
    let team = t.name.clone();
    let team2 = t.name.clone();
    let add = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        let user = member.get_untracked().trim().to_owned();
        let team = team.clone();
        leptos::task::spawn_local(async move {
            let r: Result<Team, _> = api::send_json(
                Method::PUT,
                &format!("/api/v1/teams/{}/members/{}", enc(&team), enc(&user)),
                &serde_json::json!({}),
            )
            .await;
            report(r.map(|_| format!("Added {user} to {team}")));
        });
    };
    let remove_team = move |_| {
        if !window().confirm_with_message(&format!("Remove team {team2}?")).unwrap_or(false) {
            return;
        }
        let team = team2.clone();
        leptos::task::spawn_local(async move {
            let r = api::act(Method::DELETE, &format!("/api/v1/teams/{}", enc(&team))).await;
            report(r.map(|()| format!("Removed team {team}")));
        });
    };
    let input_id = format!("member-{}", t.id);
    view! {
        <li class="team">
            <strong>{t.name.clone()}</strong>
            <ul class="members">
                {t.members.iter().map(|m| {
                    let team = t.name.clone();
                    let user = m.clone();
                    let remove = move |_| {
                        let team = team.clone();
                        let user = user.clone();
                        leptos::task::spawn_local(async move {
                            let r = api::act(Method::DELETE, &format!("/api/v1/teams/{}/members/{}", enc(&team), enc(&user))).await;
                            report(r.map(|()| format!("Removed {user} from {team}")));
                        });
                    };
                    view! { <li>{m.clone()} " " <button type="button" class="button small" on:click=remove aria-label=format!("Remove {m} from the team")>"×"</button></li> }
                }).collect_view()}
            </ul>
            <form class="toolbar" on:submit=add>
                <label for=input_id.clone()>"Add member"</label>
                <input id=input_id placeholder="user name" prop:value=member on:input=move |e| member.set(event_target_value(&e))/>
                <button type="submit" class="button small">"Add"</button>
                <button type="button" class="button small danger" on:click=remove_team>"Remove team"</button>
            </form>
        </li>
    }
}

/// The lifetimes the form offers a new token: (days, label).
const TOKEN_EXPIRIES: [(u64, &str); 5] =
    [(1, "in 1 day"), (7, "in 7 days"), (30, "in 30 days"), (90, "in 90 days"), (365, "in 1 year")];

#[component]
fn NewToken(report: impl Fn(Result<String, ApiError>) + Copy + Send + Sync + 'static) -> impl IntoView {
    let user = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let role = RwSignal::new(String::new());
    // Days until the token expires; empty: never.
    let expiry = RwSignal::new(String::new());
    let secret = RwSignal::new(None::<String>);
    let submit = move |e: leptos::ev::SubmitEvent| {
        e.prevent_default();
        let body = CreateToken {
            user: user.get_untracked().trim().to_owned(),
            name: name.get_untracked().trim().to_owned(),
            role: Role::parse(&role.get_untracked()),
            expires_in: expiry.get_untracked().parse::<u64>().ok().map(|days| days * 24 * 3600),
        };
        leptos::task::spawn_local(async move {
            let r: Result<CreatedToken, _> = api::send_json(Method::POST, "/api/v1/tokens", &body).await;
            if let Ok(created) = &r {
                secret.set(Some(created.secret.clone()));
            }
            report(r.map(|t| format!("Created token {} for {}", t.token.name, t.token.user)));
        });
    };
    view! {
        <form class="toolbar" on:submit=submit aria-label="New API token">
            <label for="token-user">"User"</label>
            <input id="token-user" required prop:value=user on:input=move |e| user.set(event_target_value(&e))/>
            <label for="token-name">"Name"</label>
            <input id="token-name" required placeholder="ci, deploy…" prop:value=name on:input=move |e| name.set(event_target_value(&e))/>
            <label for="token-role">"Role"</label>
            <select id="token-role" on:change=move |e| role.set(event_target_value(&e))>
                <option value="">"the user's role"</option>
                {Role::ALL.into_iter().map(|r| view! { <option value=r.as_str()>{r.as_str()}</option> }).collect_view()}
            </select>
            <label for="token-expiry">"Expires"</label>
            <select id="token-expiry" on:change=move |e| expiry.set(event_target_value(&e))>
                <option value="">"never"</option>
                {TOKEN_EXPIRIES.into_iter().map(|(days, label)| view! { <option value=days.to_string()>{label}</option> }).collect_view()}
            </select>
            <button type="submit" class="button primary small">"Create token"</button>
        </form>
        {move || secret.get().map(|s| view! {
            <div class="notice ok secret" role="alert">
                <p><strong>"Copy this token now: it is not shown again."</strong></p>
                <code class="secret-value">{s}</code>
                <button type="button" class="button small" on:click=move |_| secret.set(None)>"Done"</button>
            </div>
        })}
    }
}

//! What `up` does to reach the file's state from the containers there are: which to create,
//! recreate (their `config-hash` label or their image changed), start, keep, or remove (scaled
//! down, orphans). Pure: the engine calls come in [`super::apply`].

use std::collections::{BTreeMap, BTreeSet};

use berth_types::container::{ContainerStatus, ContainerSummary};
use berth_types::StackUp;

use super::model::{Project, LABEL_CONFIG_HASH, LABEL_NUMBER, LABEL_ONEOFF, LABEL_PROJECT, LABEL_SERVICE};

/// A container of the project as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub id: String,
    pub name: String,
    pub service: String,
    pub number: u32,
    pub config_hash: String,
    pub image_id: String,
    /// Running, restarting or paused.
    pub live: bool,
}

impl Existing {
    /// The project's containers among `containers` (one-off containers left out).
    pub fn of_project(project: &str, containers: &[ContainerSummary]) -> Vec<Existing> {
        let mut out: Vec<Existing> = containers
            .iter()
            .filter(|c| c.labels.get(LABEL_PROJECT).map(String::as_str) == Some(project))
            .filter(|c| c.labels.get(LABEL_ONEOFF).map(String::as_str) != Some("True"))
            .map(|c| Existing {
                id: c.id.clone(),
                name: c.name.clone(),
                service: c.labels.get(LABEL_SERVICE).cloned().unwrap_or_default(),
                number: c.labels.get(LABEL_NUMBER).and_then(|n| n.parse().ok()).unwrap_or(0),
                config_hash: c.labels.get(LABEL_CONFIG_HASH).cloned().unwrap_or_default(),
                image_id: c.image_id.clone(),
                live: matches!(
                    c.state.status,
                    ContainerStatus::Running | ContainerStatus::Paused | ContainerStatus::Restarting
                ),
            })
            .collect();
        out.sort_by(|a, b| a.service.cmp(&b.service).then(a.number.cmp(&b.number)));
        out
    }
}

/// One step for one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A new container with this number.
    Create { number: u32 },
    /// Remove the old container and create its replacement with the same number.
    Recreate { old: Existing },
    /// Start a stopped container whose config did not change.
    Start { existing: Existing },
    /// Running and unchanged.
    Keep { existing: Existing },
    /// Scaled away.
    Remove { existing: Existing },
}

/// What to do for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePlan {
    pub service: String,
    pub config_hash: String,
    pub actions: Vec<Action>,
}

/// The whole plan: services in dependency order, and the containers of services the file no
/// longer has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub services: Vec<ServicePlan>,
    pub orphans: Vec<Existing>,
}

/// Plans `up` for the `selected` services. `image_ids` holds the current image ID of each
/// service's image where it is known: a container made from another image is recreated, as
/// Compose does after a pull or a build.
pub fn plan(
    project: &Project,
    selected: &BTreeSet<String>,
    existing: &[Existing],
    image_ids: &BTreeMap<String, String>,
    options: &StackUp,
) -> crate::Result<Plan> {
    let mut services = Vec::new();
    for name in project.dependency_order()? {
        if !selected.contains(&name) {
            continue;
        }
        let service = &project.services[&name];
        let hash = project.config_hash(service);
        let mut mine: Vec<&Existing> = existing.iter().filter(|e| e.service == name).collect();
        mine.sort_by_key(|e| e.number);
        let wanted = service.replicas as usize;
        let mut actions = Vec::new();
        for (i, e) in mine.iter().enumerate() {
            if i >= wanted {
                actions.push(Action::Remove { existing: (*e).clone() });
                continue;
            }
            let image_changed =
                image_ids.get(&name).is_some_and(|id| !e.image_id.is_empty() && *id != e.image_id);
            let changed = e.config_hash != hash || image_changed;
            let action = if options.force_recreate || (changed && !options.no_recreate) {
                Action::Recreate { old: (*e).clone() }
            } else if !e.live {
                Action::Start { existing: (*e).clone() }
            } else {
                Action::Keep { existing: (*e).clone() }
            };
            actions.push(action);
        }
        // New replicas take the lowest free numbers.
        let used: BTreeSet<u32> = mine.iter().take(wanted).map(|e| e.number).collect();
        let mut number = 1;
        for _ in mine.len().min(wanted)..wanted {
            while used.contains(&number) {
                number += 1;
            }
            actions.push(Action::Create { number });
            number += 1;
        }
        services.push(ServicePlan { service: name, config_hash: hash, actions });
    }
    let orphans = existing.iter().filter(|e| !project.services.contains_key(&e.service)).cloned().collect();
    Ok(Plan { services, orphans })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::model::load;

    fn project(text: &str) -> Project {
        let request =
            StackUp { compose_file: text.into(), working_dir: "/srv/app".into(), ..Default::default() };
        load(&request, None).unwrap()
    }

    fn existing(p: &Project, service: &str, number: u32, live: bool) -> Existing {
        Existing {
            id: format!("{service}{number}"),
            name: format!("{}-{service}-{number}", p.name),
            service: service.into(),
            number,
            config_hash: p.services.get(service).map(|s| p.config_hash(s)).unwrap_or_default(),
            image_id: "sha256:a".into(),
            live,
        }
    }

    const FILE: &str = "services:\n  web:\n    image: busybox\n    deploy: {replicas: 2}\n  client:\n    image: busybox\n    depends_on: [web]\n";

    #[test]
    fn fresh_project_creates_in_dependency_order() {
        let p = project(FILE);
        let plan = plan(&p, &p.selected(&[]).unwrap(), &[], &BTreeMap::new(), &StackUp::default()).unwrap();
        assert_eq!(plan.services.len(), 2);
        assert_eq!(plan.services[0].service, "web");
        assert_eq!(plan.services[0].actions, [Action::Create { number: 1 }, Action::Create { number: 2 }]);
        assert_eq!(plan.services[1].actions, [Action::Create { number: 1 }]);
        assert!(plan.orphans.is_empty());
    }

    #[test]
    fn unchanged_keeps_stopped_starts_changed_recreates() {
        let p = project(FILE);
        let mut web2 = existing(&p, "web", 2, false);
        let mut client = existing(&p, "client", 1, true);
        client.config_hash = "old".into();
        let have =
            vec![existing(&p, "web", 1, true), web2.clone(), client.clone(), existing(&p, "gone", 1, true)];
        let plan = plan(&p, &p.selected(&[]).unwrap(), &have, &BTreeMap::new(), &StackUp::default()).unwrap();
        assert_eq!(
            plan.services[0].actions,
            [Action::Keep { existing: have[0].clone() }, Action::Start { existing: web2.clone() }]
        );
        assert_eq!(plan.services[1].actions, [Action::Recreate { old: client.clone() }]);
        assert_eq!(plan.orphans, [have[3].clone()]);

        // A new image recreates; --no-recreate keeps; --force-recreate recreates all.
        let ids = [("web".to_string(), "sha256:b".to_string())].into_iter().collect();
        let again = super::plan(&p, &p.selected(&[]).unwrap(), &have, &ids, &StackUp::default()).unwrap();
        assert!(matches!(again.services[0].actions[0], Action::Recreate { .. }));
        let keep = StackUp { no_recreate: true, ..Default::default() };
        let again = super::plan(&p, &p.selected(&[]).unwrap(), &have, &ids, &keep).unwrap();
        assert!(matches!(again.services[1].actions[0], Action::Keep { .. }));
        let force = StackUp { force_recreate: true, ..Default::default() };
        web2.live = true;
        let have = vec![existing(&p, "web", 1, true), web2];
        let again = super::plan(&p, &p.selected(&[]).unwrap(), &have, &BTreeMap::new(), &force).unwrap();
        assert!(again.services[0].actions.iter().all(|a| matches!(a, Action::Recreate { .. })));
    }

    #[test]
    fn scaling_fills_gaps_and_removes_the_highest() {
        let mut p = project(FILE);
        let have = vec![existing(&p, "web", 1, true), existing(&p, "web", 3, true)];
        p.services.get_mut("web").unwrap().replicas = 4;
        let plan1 =
            plan(&p, &p.selected(&["web".into()]).unwrap(), &have, &BTreeMap::new(), &StackUp::default())
                .unwrap();
        assert_eq!(plan1.services.len(), 1, "only web is selected");
        let creates: Vec<_> =
            plan1.services[0].actions.iter().filter(|a| matches!(a, Action::Create { .. })).collect();
        assert_eq!(creates, [&Action::Create { number: 2 }, &Action::Create { number: 4 }]);
        p.services.get_mut("web").unwrap().replicas = 1;
        let plan2 =
            plan(&p, &p.selected(&["web".into()]).unwrap(), &have, &BTreeMap::new(), &StackUp::default())
                .unwrap();
        assert_eq!(
            plan2.services[0].actions,
            [Action::Keep { existing: have[0].clone() }, Action::Remove { existing: have[1].clone() }]
        );
    }

    #[test]
    fn selecting_a_service_takes_its_dependencies() {
        let p = project(FILE);
        assert_eq!(p.selected(&["client".into()]).unwrap(), ["client".to_string(), "web".to_string()].into());
        assert_eq!(p.selected(&["nope".into()]).unwrap_err().to_string(), "no such service: nope");
    }
}

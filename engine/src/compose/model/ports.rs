//! `ports:` of a service as port bindings.

use berth_types::network::PortBinding;
use docker_compose_types as spec;

use super::invalid_project;
use crate::error::Result;

/// `ports:` in the short (`[ip:][host:]container[/proto]`, ranges allowed) and long syntax.
pub fn parse_ports(service: &str, ports: &spec::Ports) -> Result<Vec<PortBinding>> {
    let bad = |p: &str| invalid_project(format!("services.{service}.ports: invalid port {p:?}"));
    let range = |text: &str, p: &str| -> Result<(u16, u16)> {
        let (a, b) = text.split_once('-').unwrap_or((text, text));
        let a: u16 = a.trim().parse().map_err(|_| bad(p))?;
        let b: u16 = b.trim().parse().map_err(|_| bad(p))?;
        if b < a {
            return Err(bad(p));
        }
        Ok((a, b))
    };
    let mut out = Vec::new();
    match ports {
        spec::Ports::Short(list) => {
            for p in list {
                let bindings = berth_types::parse::parse_publish(p).map_err(|e| {
                    invalid_project(format!("services.{service}.ports: invalid port {p:?}: {e}"))
                })?;
                out.extend(bindings);
            }
        }
        spec::Ports::Long(list) => {
            for p in list {
                let host_port = match &p.published {
                    None => 0,
                    Some(spec::PublishedPort::Single(n)) => *n,
                    Some(spec::PublishedPort::Range(r)) => range(r, r)?.0,
                };
                out.push(PortBinding {
                    host_ip: p.host_ip.clone().unwrap_or_default(),
                    host_port,
                    container_port: p.target,
                    protocol: p.protocol.clone().unwrap_or_else(|| "tcp".into()),
                });
            }
        }
    }
    Ok(out)
}

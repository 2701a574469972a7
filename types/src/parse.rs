//! Option values as Docker reads them, shared by the CLI's flags, compose files and the
//! dashboard's run form: sizes (`512m`), CPUs (`1.5`), restart policies (`on-failure:3`) and
//! published ports (`127.0.0.1:8080:80/tcp`). Errors are the reason alone; each caller puts it in
//! its own context (a flag, a compose key, a form field).

use crate::container::RestartPolicy;
use crate::network::PortBinding;

/// Docker's `RAMInBytes`: a number with an optional binary unit (`b`, `k`, `m`, `g`, `t`, `p`,
/// any case, optionally followed by `b` or `ib`): `512m`, `1.5g`, `100KiB`, `4096`.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let invalid = || format!("invalid size: '{text}'");
    let t = text.trim();
    let digits_end = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix("ib").or_else(|| unit.strip_suffix('b')).unwrap_or(&unit);
    let multiplier: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return Err(invalid()),
    };
    let bytes = number * multiplier as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(bytes as u64)
}

/// `--cpus`: a positive decimal number of CPUs.
pub fn parse_cpus(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n),
        Ok(_) => Err(format!("invalid number of CPUs: {text}")),
        Err(_) => Err(format!("failed to parse {text} as a rational number")),
    }
}

/// `--restart no|always|unless-stopped|on-failure[:max-retries]`.
pub fn parse_restart(text: &str) -> Result<RestartPolicy, String> {
    let (name, count) = match text.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (text, None),
    };
    let no_count = |policy: RestartPolicy| match count {
        None => Ok(policy),
        Some(_) => Err(format!("maximum retry count cannot be used with restart policy '{name}'")),
    };
    match name {
        "" | "no" => no_count(RestartPolicy::No),
        "always" => no_count(RestartPolicy::Always),
        "unless-stopped" => no_count(RestartPolicy::UnlessStopped),
        "on-failure" => {
            let max_retries = match count {
                None => 0,
                Some(c) => c.parse::<u32>().map_err(|_| {
                    format!("invalid restart policy format: maximum retry count must be an integer: {c}")
                })?,
            };
            Ok(RestartPolicy::OnFailure { max_retries })
        }
        other => Err(format!(
            "invalid restart policy '{other}': choose no, always, unless-stopped or on-failure[:max-retries]"
        )),
    }
}

/// `-p [ip:][host_port:]container_port[/proto]`, with ranges (`8000-8001:80-81`) as one
/// binding per port, as Docker's CLI reads it.
pub fn parse_publish(spec: &str) -> Result<Vec<PortBinding>, String> {
    let bad = |why: &str| why.to_string();
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((rest, proto)) => (rest, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if protocol != "tcp" && protocol != "udp" {
        return Err(bad(&format!("invalid proto: {protocol}")));
    }
    let parts: Vec<&str> = rest.rsplitn(3, ':').collect();
    let (host_ip, host_ports, container_ports) = match parts.as_slice() {
        [c] => ("", "", *c),
        [c, h] => ("", *h, *c),
        [c, h, ip] => (*ip, *h, *c),
        _ => return Err(bad("invalid format")),
    };
    let host_ip = host_ip.trim_start_matches('[').trim_end_matches(']');
    if !host_ip.is_empty() && host_ip.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(bad(&format!("invalid IP address: {host_ip}")));
    }
    let range = |text: &str| -> Result<(u16, u16), String> {
        let parse = |p: &str| p.parse::<u16>().ok().filter(|n| *n != 0);
        match text.split_once('-') {
            Some((a, b)) => match (parse(a), parse(b)) {
                (Some(a), Some(b)) if a <= b => Ok((a, b)),
                _ => Err(bad(&format!("invalid port range: {text}"))),
            },
            None => parse(text).map(|p| (p, p)).ok_or_else(|| bad(&format!("invalid port: {text}"))),
        }
    };
    let (c_first, c_last) = range(container_ports)?;
    let host = if host_ports.is_empty() { None } else { Some(range(host_ports)?) };
    if let Some((h_first, h_last)) = host {
        if h_last - h_first != c_last - c_first {
            return Err(bad("host and container port ranges differ in size"));
        }
    }
    Ok((c_first..=c_last)
        .enumerate()
        .map(|(i, container_port)| PortBinding {
            host_ip: host_ip.to_string(),
            host_port: host.map(|(first, _)| first + i as u16).unwrap_or(0),
            container_port,
            protocol: protocol.clone(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("4096").unwrap(), 4096);
        assert_eq!(parse_memory("512m").unwrap(), 512 << 20);
        assert_eq!(parse_memory("512M").unwrap(), 512 << 20);
        assert_eq!(parse_memory("512mb").unwrap(), 512 << 20);
        assert_eq!(parse_memory("1g").unwrap(), 1 << 30);
        assert_eq!(parse_memory("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_memory("100KiB").unwrap(), 100 << 10);
        assert_eq!(parse_memory("10b").unwrap(), 10);
        for bad in ["", "m", "abc", "12x", "-1m", "1.2.3m", "1e3"] {
            assert_eq!(parse_memory(bad).unwrap_err(), format!("invalid size: '{bad}'"), "{bad}");
        }
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("1.5").unwrap(), 1.5);
        assert_eq!(parse_cpus("0.01").unwrap(), 0.01);
        assert!(parse_cpus("abc").unwrap_err().contains("rational number"));
        assert!(parse_cpus("-1").is_err());
        assert!(parse_cpus("NaN").is_err());
    }

    #[test]
    fn restart_policies() {
        assert_eq!(parse_restart("no").unwrap(), RestartPolicy::No);
        assert_eq!(parse_restart("always").unwrap(), RestartPolicy::Always);
        assert_eq!(parse_restart("unless-stopped").unwrap(), RestartPolicy::UnlessStopped);
        assert_eq!(parse_restart("on-failure").unwrap(), RestartPolicy::OnFailure { max_retries: 0 });
        assert_eq!(parse_restart("on-failure:3").unwrap(), RestartPolicy::OnFailure { max_retries: 3 });
        assert!(parse_restart("on-failure:x").unwrap_err().contains("must be an integer"));
        assert!(parse_restart("always:3").unwrap_err().contains("cannot be used"));
        assert!(parse_restart("sometimes").unwrap_err().contains("invalid restart policy 'sometimes'"));
    }

    #[test]
    fn publish_flags_parse_like_dockers() {
        let one = parse_publish("127.0.0.1:8080:80").unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(
            (one[0].host_ip.as_str(), one[0].host_port, one[0].container_port),
            ("127.0.0.1", 8080, 80)
        );
        assert_eq!(one[0].protocol, "tcp");
        let bare = parse_publish("80/udp").unwrap();
        assert_eq!((bare[0].host_port, bare[0].container_port, bare[0].protocol.as_str()), (0, 80, "udp"));
        let no_host = parse_publish("127.0.0.1::80").unwrap();
        assert_eq!((no_host[0].host_ip.as_str(), no_host[0].host_port), ("127.0.0.1", 0));
        let ranges = parse_publish("8000-8001:80-81").unwrap();
        assert_eq!(
            ranges.iter().map(|b| (b.host_port, b.container_port)).collect::<Vec<_>>(),
            [(8000, 80), (8001, 81)]
        );
        assert!(parse_publish("80/sctp").is_err());
        assert!(parse_publish("nope:80:80").is_err());
        assert!(parse_publish("8000-8002:80-81").is_err());
        assert!(parse_publish("0").is_err());
        assert!(parse_publish("99999").is_err());
    }
}

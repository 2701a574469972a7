//! How the dashboard writes sizes, times, IDs and image names. Pure functions with no browser
//! access, so they are unit-tested natively (`cargo test -p berth-web`).
//!
//! Docker's CLI is the reference for the wording: `4.26MB`, `2 hours ago`, 12-character IDs,
//! `busybox` rather than `docker.io/library/busybox`, `<none>` for what an image does not have.

pub use berth_types::format::{parse_time, short_id, split_tag, time_ago};

/// A volume name for a table cell: anonymous volumes are 64 hex digits, shown as 12 (as IDs
/// are); named volumes stay whole.
pub fn short_volume_name(name: &str) -> String {
    if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        name[..12].to_owned()
    } else {
        name.to_owned()
    }
}

/// What Docker shows for a repository or tag an image does not have.
pub const NONE: &str = "<none>";

/// A byte count as `docker images` prints it (three significant digits): `4.26MB`.
pub fn human_size(bytes: u64) -> String {
    berth_types::format::human_size_with_precision(bytes, 3)
}

/// A normalised repository as people write it: Docker Hub's `docker.io/library/` and `docker.io/`
/// are left out, every other registry stays.
pub fn familiar_repository(repository: &str) -> &str {
    repository
        .strip_prefix("docker.io/library/")
        .filter(|rest| !rest.contains('/'))
        .or_else(|| repository.strip_prefix("docker.io/"))
        .unwrap_or(repository)
}

/// One line of the images table: an image appears once per tag, as in `docker images`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    /// Familiar repository name, or `<none>`.
    pub repository: String,
    /// The full normalised repository, for a tooltip (empty for `<none>`).
    pub full_repository: String,
    /// Tag, or `<none>`.
    pub tag: String,
    /// `sha256:<hex>` of the image config.
    pub id: String,
    /// RFC 3339 creation time as the API sent it (may be empty).
    pub created: String,
    pub size: u64,
}

/// Expands image summaries into table rows: one per tag; an image known only by digest shows
/// its repository with tag `<none>`; a dangling image shows `<none>` twice. Newest first, as
/// `docker images` orders them; images without a creation time come last.
pub fn image_rows(images: &[berth_types::ImageSummary]) -> Vec<ImageRow> {
    let mut sorted: Vec<&berth_types::ImageSummary> = images.iter().collect();
    // Stable sort: images created at the same time keep the daemon's order.
    sorted.sort_by_key(|image| std::cmp::Reverse(parse_time(&image.created)));
    let mut rows = Vec::new();
    for image in sorted {
        let row = |repository: &str, tag: &str| ImageRow {
            repository: if repository.is_empty() {
                NONE.to_owned()
            } else {
                familiar_repository(repository).to_owned()
            },
            full_repository: repository.to_owned(),
            tag: tag.to_owned(),
            id: image.id.clone(),
            created: image.created.clone(),
            size: image.size,
        };
        if !image.repo_tags.is_empty() {
            for reference in &image.repo_tags {
                let (repository, tag) = split_tag(reference);
                rows.push(row(repository, tag.unwrap_or(NONE)));
            }
        } else if !image.repo_digests.is_empty() {
            for reference in &image.repo_digests {
                let repository = reference.split('@').next().unwrap_or(reference);
                rows.push(row(repository, NONE));
            }
        } else {
            rows.push(row("", NONE));
        }
    }
    rows
}

/// A published port as `docker ps` shows it: `0.0.0.0:8080->80/tcp`.
pub fn port_text(p: &berth_types::PublishedPort) -> String {
    let ip = if p.host_ip.is_empty() { "0.0.0.0" } else { p.host_ip.as_str() };
    let protocol = if p.protocol.is_empty() { "tcp" } else { p.protocol.as_str() };
    if ip.contains(':') {
        format!("[{ip}]:{}->{}/{protocol}", p.host_port, p.container_port)
    } else {
        format!("{ip}:{}->{}/{protocol}", p.host_port, p.container_port)
    }
}

/// `s` for counts other than one.
pub fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `—` for an empty value.
pub fn dash(text: &str) -> String {
    if text.is_empty() {
        "—".to_owned()
    } else {
        text.to_owned()
    }
}

/// Exact size for a tooltip: `4261000 bytes`.
pub fn bytes_title(bytes: u64) -> String {
    format!("{bytes} bytes")
}

/// Labels as `key=value, key=value`, or `none`.
pub fn labels_text(labels: &std::collections::BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        "none".to_owned()
    } else {
        labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_types::ImageSummary;

    #[test]
    fn sizes_have_three_significant_digits_like_docker_images() {
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(12_345), "12.3kB");
    }

    #[test]
    fn repositories_and_tags_split_like_docker_shows_them() {
        assert_eq!(familiar_repository("docker.io/library/busybox"), "busybox");
        assert_eq!(familiar_repository("docker.io/grafana/grafana"), "grafana/grafana");
        assert_eq!(familiar_repository("docker.io/library/a/b"), "library/a/b");
        assert_eq!(familiar_repository("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(
            split_tag("docker.io/library/busybox:latest"),
            ("docker.io/library/busybox", Some("latest"))
        );
        assert_eq!(split_tag("localhost:5000/app:v1"), ("localhost:5000/app", Some("v1")));
        assert_eq!(split_tag("localhost:5000/app"), ("localhost:5000/app", None));
    }

    fn image(id: &str, tags: &[&str], digests: &[&str], created: &str) -> ImageSummary {
        ImageSummary {
            id: id.to_owned(),
            repo_tags: tags.iter().map(|s| s.to_string()).collect(),
            repo_digests: digests.iter().map(|s| s.to_string()).collect(),
            created: created.to_owned(),
            size: 42,
        }
    }

    #[test]
    fn image_rows_one_per_tag_newest_first_with_none_for_missing_parts() {
        let images = [
            image("sha256:old", &[], &[], "2020-01-01T00:00:00Z"),
            image("sha256:unknown", &["docker.io/library/x:1"], &[], ""),
            image(
                "sha256:new",
                &["docker.io/library/busybox:latest", "localhost:5000/bb:v1"],
                &[],
                "2026-01-01T00:00:00Z",
            ),
            image("sha256:digest", &[], &["docker.io/library/alpine@sha256:ffff"], "2025-01-01T00:00:00Z"),
        ];
        let rows = image_rows(&images);
        let shown: Vec<(&str, &str, &str)> =
            rows.iter().map(|r| (r.repository.as_str(), r.tag.as_str(), r.id.as_str())).collect();
        assert_eq!(
            shown,
            [
                ("busybox", "latest", "sha256:new"),
                ("localhost:5000/bb", "v1", "sha256:new"),
                ("alpine", NONE, "sha256:digest"),
                (NONE, NONE, "sha256:old"),
                ("x", "1", "sha256:unknown"),
            ]
        );
        assert_eq!(rows[0].full_repository, "docker.io/library/busybox");
        assert_eq!(rows[3].full_repository, "");
        assert!(image_rows(&[]).is_empty());
    }

    #[test]
    fn ports_as_docker_shows_them() {
        let port = |ip: &str, protocol: &str| berth_types::PublishedPort {
            host_ip: ip.into(),
            host_port: 8080,
            container_port: 80,
            protocol: protocol.into(),
        };
        assert_eq!(port_text(&port("", "")), "0.0.0.0:8080->80/tcp");
        assert_eq!(port_text(&port("127.0.0.1", "udp")), "127.0.0.1:8080->80/udp");
        assert_eq!(port_text(&port("::1", "tcp")), "[::1]:8080->80/tcp");
    }
}

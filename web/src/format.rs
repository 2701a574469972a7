//! How the dashboard writes sizes, times, IDs and image names. Pure functions with no browser
//! access, so they are unit-tested natively (`cargo test -p berth-web`).
//!
//! Docker's CLI is the reference for the wording: `4.26MB`, `2 hours ago`, 12-character IDs,
//! `busybox` rather than `docker.io/library/busybox`, `<none>` for what an image does not have.

use chrono::{DateTime, Utc};

/// What Docker shows for a repository or tag an image does not have.
pub const NONE: &str = "<none>";

/// A byte count in decimal units with three significant digits, as `docker images` prints it:
/// `999B`, `12.3kB`, `4.26MB`, `1GB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let mut text = three_significant(value);
    // Rounding can carry into the next unit (999.7kB would read "1000kB"); Docker prints
    // "1e+03kB" there, which no one wants to read.
    if text == "1000" && unit < UNITS.len() - 1 {
        unit += 1;
        text = "1".to_owned();
    }
    format!("{text}{}", UNITS[unit])
}

/// `value` (0 ≤ value < 1000) rounded to three significant digits, trailing zeros dropped.
fn three_significant(value: f64) -> String {
    let mut decimals: usize = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    let mut text = format!("{value:.decimals$}");
    // 9.996 rounds to "10.00": one digit too many, so drop one decimal.
    let integer_digits = text.split('.').next().map_or(0, str::len);
    if integer_digits + decimals > 3 && decimals > 0 {
        decimals -= 1;
        text = format!("{value:.decimals$}");
    }
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    text
}

/// How long ago `created` (RFC 3339) was, seen at `now`, in Docker's words: `2 hours ago`,
/// `About a minute ago`. `N/A` when the time is missing or unreadable.
pub fn time_ago(created: &str, now: DateTime<Utc>) -> String {
    match parse_time(created) {
        Some(then) => format!("{} ago", human_duration((now - then).num_seconds())),
        None => "N/A".to_owned(),
    }
}

/// Parses an RFC 3339 time as the API sends it; `None` for an empty or malformed one.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim()).ok().map(|t| t.with_timezone(&Utc))
}

/// A duration in seconds in the words `docker ps` / `docker images` use. A negative duration
/// (the node's clock is ahead of the browser's) reads as less than a second.
pub fn human_duration(seconds: i64) -> String {
    const MINUTE: i64 = 60;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    if seconds < 1 {
        return "Less than a second".to_owned();
    }
    if seconds == 1 {
        return "1 second".to_owned();
    }
    if seconds < MINUTE {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / MINUTE;
    if minutes == 1 {
        return "About a minute".to_owned();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // Hours are rounded (1h40m reads "2 hours"); larger units count whole ones.
    let hours = (seconds + HOUR / 2) / HOUR;
    if hours == 1 {
        return "About an hour".to_owned();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", seconds / DAY / 365)
}

/// The 12 hex digits Docker shows for an ID (`sha256:` dropped).
pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.get(..12).unwrap_or(hex)
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

/// Splits `repository:tag` at the tag's colon; a colon before the last `/` belongs to a
/// registry port (`localhost:5000/app`), not to a tag.
pub fn split_tag(reference: &str) -> (&str, Option<&str>) {
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(i) => {
            let colon = name_start + i;
            (&reference[..colon], Some(&reference[colon + 1..]))
        }
        None => (reference, None),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use berth_types::ImageSummary;

    #[test]
    fn sizes_read_like_docker() {
        let cases = [
            (0, "0B"),
            (999, "999B"),
            (1000, "1kB"),
            (1234, "1.23kB"),
            (12_345, "12.3kB"),
            (123_456, "123kB"),
            (999_499, "999kB"),
            (999_700, "1MB"),
            (4_261_000, "4.26MB"),
            (9_996_000, "10MB"),
            (10_060_000, "10.1MB"),
            (1_000_000_000, "1GB"),
            (u64::MAX, "18.4EB"),
        ];
        for (bytes, want) in cases {
            assert_eq!(human_size(bytes), want, "{bytes} bytes");
        }
    }

    #[test]
    fn durations_read_like_docker() {
        let cases = [
            (-30, "Less than a second"),
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (119, "About a minute"),
            (120, "2 minutes"),
            (59 * 60 + 59, "59 minutes"),
            (3600, "About an hour"),
            (5400, "2 hours"),
            (47 * 3600, "47 hours"),
            (48 * 3600, "2 days"),
            (13 * 86_400, "13 days"),
            (14 * 86_400, "2 weeks"),
            (59 * 86_400, "8 weeks"),
            (60 * 86_400, "2 months"),
            (729 * 86_400, "24 months"),
            (730 * 86_400, "2 years"),
        ];
        for (seconds, want) in cases {
            assert_eq!(human_duration(seconds), want, "{seconds} s");
        }
    }

    #[test]
    fn time_ago_parses_rfc3339_with_any_precision_and_offset() {
        let now = parse_time("2026-11-27T12:00:00Z").unwrap();
        assert_eq!(time_ago("2026-11-27T10:00:00Z", now), "2 hours ago");
        assert_eq!(time_ago("2026-11-27T11:58:30.123456789Z", now), "About a minute ago");
        assert_eq!(time_ago("2026-11-27T13:00:00+02:00", now), "About an hour ago");
        assert_eq!(time_ago("", now), "N/A");
        assert_eq!(time_ago("yesterday", now), "N/A");
    }

    #[test]
    fn short_ids_have_twelve_digits() {
        assert_eq!(short_id("sha256:0123456789abcdef0123"), "0123456789ab");
        assert_eq!(short_id("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_id("sha256:abc"), "abc");
        assert_eq!(short_id(""), "");
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
}

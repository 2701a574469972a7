//! `berth search TERM` as Docker's (NAME, DESCRIPTION, STARS, OFFICIAL, AUTOMATED; `--limit`,
//! `--filter`, `--format`, `--no-trunc`), and `berth search --tags REPOSITORY`: the tags of a
//! remote repository with their size, platforms and digest.

use berth_types::{RemoteTag, SearchFilter, SearchResult};
use clap::Args;

use super::client::{query, CliError, Client};
use super::format::{human_size, Template};
use super::out;

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Filter output based on conditions provided (is-official=BOOL, is-automated=BOOL, stars=N)
    #[arg(short, long = "filter", value_name = "FILTER")]
    pub filters: Vec<String>,
    /// Pretty-print search using a Go-like template ({{.Name}}, {{.Description}}, {{.StarCount}},
    /// {{.IsOfficial}}, {{.IsAutomated}}; with --tags {{.Tag}}, {{.Digest}}, {{.Size}},
    /// {{.Platforms}}, {{.MediaType}})
    #[arg(long)]
    pub format: Option<String>,
    /// Max number of search results
    #[arg(long)]
    pub limit: Option<usize>,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// List the tags of the repository TERM names (registry/repository), with their size,
    /// platforms and digest, instead of searching
    #[arg(long)]
    pub tags: bool,
    /// What to search for; `registry/term` searches that registry (Docker Hub by default)
    #[arg(value_name = "TERM")]
    pub term: String,
}

/// Docker truncates descriptions to this many characters (with "…") unless --no-trunc.
const DESCRIPTION_WIDTH: usize = 45;

const SEARCH_FIELDS: &[(&str, &str)] = &[
    ("Name", "NAME"),
    ("Description", "DESCRIPTION"),
    ("StarCount", "STARS"),
    ("IsOfficial", "OFFICIAL"),
    ("IsAutomated", "AUTOMATED"),
];

const TAG_FIELDS: &[(&str, &str)] = &[
    ("Tag", "TAG"),
    ("Size", "SIZE"),
    ("Platforms", "PLATFORMS"),
    ("Digest", "DIGEST"),
    ("MediaType", "MEDIA TYPE"),
];

/// `berth search`.
pub async fn search(client: &Client, args: SearchArgs) -> Result<(), CliError> {
    if args.tags {
        return tags(client, &args).await;
    }
    let mut pairs = Vec::new();
    for f in &args.filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("bad format of filter (expected name=value): {f}")))?;
        pairs.push((k.to_string(), v.to_string()));
    }
    // Checked here for Docker's message; the daemon checks again.
    SearchFilter::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(CliError::Usage)?;
    let mut filters = serde_json::Map::new();
    for (k, v) in &pairs {
        let entry = filters.entry(k.clone()).or_insert_with(|| serde_json::json!([]));
        entry.as_array_mut().expect("an array").push(v.clone().into());
    }
    let filters = serde_json::Value::Object(filters).to_string();
    let limit = args.limit.map(|l| l.to_string());
    let mut params = vec![("term", args.term.as_str()), ("filters", filters.as_str())];
    if let Some(l) = &limit {
        params.push(("limit", l.as_str()));
    }
    let results: Vec<SearchResult> =
        client.get_json(&format!("/api/v1/images/search{}", query(params))).await?;

    let format = args
        .format
        .as_deref()
        .unwrap_or("table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}\t{{.IsAutomated}}");
    let names: Vec<&str> = SEARCH_FIELDS.iter().map(|(f, _)| *f).collect();
    let template = Template::parse(format, &names).map_err(CliError::Usage)?;
    let table = template.is_table();
    let lines = results
        .iter()
        .map(|r| {
            let mut description = r.description.replace('\n', " ");
            if !args.no_trunc && description.chars().count() > DESCRIPTION_WIDTH {
                description = description.chars().take(DESCRIPTION_WIDTH - 1).collect::<String>() + "…";
            }
            // The table marks official and automated with [OK]; a template gets the booleans.
            let mark = |b: bool| -> serde_json::Value {
                if table {
                    if b { "[OK]" } else { "" }.into()
                } else {
                    b.into()
                }
            };
            let fields = serde_json::json!({
                "Name": r.name,
                "Description": description,
                "StarCount": r.star_count.to_string(),
                "IsOfficial": mark(r.is_official),
                "IsAutomated": mark(r.is_automated),
            });
            template.render(fields.as_object().expect("an object"))
        })
        .collect();
    out(&template.output(lines, SEARCH_FIELDS))
}

/// `berth search --tags REPOSITORY`.
async fn tags(client: &Client, args: &SearchArgs) -> Result<(), CliError> {
    let found: Vec<RemoteTag> = client
        .get_json(&format!("/api/v1/registry/tags{}", query([("repository", args.term.as_str())])))
        .await?;
    let format = args.format.as_deref().unwrap_or("table {{.Tag}}\t{{.Size}}\t{{.Platforms}}\t{{.Digest}}");
    let names: Vec<&str> = TAG_FIELDS.iter().map(|(f, _)| *f).collect();
    let template = Template::parse(format, &names).map_err(CliError::Usage)?;
    let lines = found
        .iter()
        .take(args.limit.unwrap_or(usize::MAX))
        .map(|t| {
            let digest = if args.no_trunc || !template.is_table() {
                t.digest.clone()
            } else {
                t.digest.chars().take(19).collect()
            };
            let fields = serde_json::json!({
                "Tag": t.tag,
                "Size": human_size(t.size),
                "Platforms": t.platforms.join(","),
                "Digest": digest,
                "MediaType": t.media_type,
            });
            template.render(fields.as_object().expect("an object"))
        })
        .collect();
    out(&template.output(lines, TAG_FIELDS))
}

//! Finding images in a registry: `search` (Docker Hub's `/v1/search` where a registry has it,
//! else the distribution API's `_catalog`, page by page, filtered by the term) and the tags of
//! one repository with what their manifests say (digest, size, platforms).

use berth_types::{RemoteBlob, RemoteImage, RemoteManifest, RemoteTag, SearchResult};
use reqwest::header::{ACCEPT, CONTENT_TYPE, LINK};
use reqwest::StatusCode;
use serde::Deserialize;

use super::client::{answer_error, repository_scope, RegistryClient};
use super::pull::MANIFEST_ACCEPT;
use super::{normalise_server, Credentials};
use crate::digest::sha256_of;
use crate::error::{Error, ErrorKind, Result};
use crate::reference::{Reference, DEFAULT_DOMAIN};
use crate::Engine;

/// At most this many catalog pages are read (a registry with more is searched in part).
const CATALOG_PAGES: usize = 100;
const CATALOG_PAGE_SIZE: usize = 1000;
/// Manifests and configs read for a tag listing are small; more than this is refused.
const DOCUMENT_LIMIT: usize = 4 << 20;

/// `registry/term` → (registry, term): a first component with a dot or colon, or `localhost`,
/// names the registry; else Docker Hub.
pub fn split_term(term: &str) -> Result<(String, String)> {
    match term.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            Ok((normalise_server(first)?, rest.to_string()))
        }
        _ => Ok((DEFAULT_DOMAIN.to_string(), term.to_string())),
    }
}

#[derive(Deserialize)]
struct V1Results {
    results: Vec<V1Result>,
}

#[derive(Deserialize)]
struct V1Result {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    star_count: u64,
    #[serde(default)]
    is_official: bool,
    #[serde(default)]
    is_automated: bool,
}

#[derive(Deserialize)]
struct Catalog {
    #[serde(default)]
    repositories: Vec<String>,
}

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// The next page's path from a `Link: <path>; rel="next"` header.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get(LINK)?.to_str().ok()?;
    let start = link.find('<')? + 1;
    let end = link[start..].find('>')? + start;
    link[end..].contains("rel=\"next\"").then(|| link[start..end].to_string())
}

impl Engine {
    /// Whether credentials are stored for `server` (`berth login`).
    pub async fn has_credentials(&self, server: &str) -> bool {
        let Ok(server) = normalise_server(server) else { return false };
        self.blocking(move |inner| inner.registries.client.credentials.get(&server))
            .await
            .is_ok_and(|c| c.is_some())
    }

    /// The registries added as objects that may be reached over plain HTTP (`host[:port]`).
    pub fn set_insecure_registry_objects(&self, registries: Vec<String>) {
        self.inner.registries.client.set_insecure_objects(registries);
    }

    /// `docker search TERM`: up to `limit` repositories of the registry named in the term (Docker
    /// Hub when none) whose names contain it.
    pub async fn search_images(
        &self,
        term: &str,
        limit: usize,
        credentials: Option<Credentials>,
    ) -> Result<Vec<SearchResult>> {
        let (registry, wanted) = split_term(term)?;
        if wanted.is_empty() {
            return Err(Error::InvalidInput("a search term is needed".into()));
        }
        let client = &self.inner.registries.client;
        let shown = |name: &str| {
            if registry == DEFAULT_DOMAIN {
                name.to_string()
            } else {
                format!("{registry}/{name}")
            }
        };
        // Docker Hub's search API, where the registry has one.
        let query = wanted.clone();
        let response = client
            .send_as(&registry, &[], credentials.as_ref(), &|http, base| {
                let mut url = base.join("v1/search").expect("a fixed path");
                url.query_pairs_mut().append_pair("q", &query).append_pair("n", &limit.to_string());
                http.get(url)
            })
            .await?;
        if response.status().is_success() {
            if let Ok(found) = response.json::<V1Results>().await {
                return Ok(found
                    .results
                    .into_iter()
                    .take(limit)
                    .map(|r| SearchResult {
                        name: shown(&r.name),
                        description: r.description.unwrap_or_default(),
                        star_count: r.star_count,
                        is_official: r.is_official,
                        is_automated: r.is_automated,
                    })
                    .collect());
            }
        }
        // Else the catalog, page by page.
        let needle = wanted.to_ascii_lowercase();
        let mut found = Vec::new();
        let mut path = format!("_catalog?n={CATALOG_PAGE_SIZE}");
        for _ in 0..CATALOG_PAGES {
            let page = path.clone();
            let scopes = ["registry:catalog:*".to_string()];
            let response = client
                .send_as(&registry, &scopes, credentials.as_ref(), &|http, base| {
                    http.get(RegistryClient::url(base, &page))
                })
                .await?;
            match response.status() {
                s if s.is_success() => {}
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    return Err(answer_error(response, &format!("searching {registry}: access denied")).await)
                }
                _ => return Err(answer_error(response, &format!("searching {registry}")).await),
            }
            let next = next_link(response.headers());
            let catalog: Catalog = response.json().await.map_err(|e| Error::Registry {
                message: format!("{registry}: the catalog is not valid JSON: {e}"),
                kind: ErrorKind::Internal,
            })?;
            found.extend(
                catalog.repositories.into_iter().filter(|r| r.to_ascii_lowercase().contains(&needle)).map(
                    |r| SearchResult {
                        name: shown(&r),
                        description: String::new(),
                        star_count: 0,
                        is_official: false,
                        is_automated: false,
                    },
                ),
            );
            if found.len() >= limit {
                break;
            }
            match next {
                // The link is a path from the root (`/v2/_catalog?...`).
                Some(link) => path = link.trim_start_matches('/').trim_start_matches("v2/").to_string(),
                None => break,
            }
        }
        found.truncate(limit);
        Ok(found)
    }

    /// The tags of a remote repository (`registry/repo`), each with its manifest's digest, size
    /// and platforms.
    pub async fn remote_tags(
        &self,
        repository: &str,
        credentials: Option<Credentials>,
    ) -> Result<Vec<RemoteTag>> {
        let reference = Reference::parse(repository)?;
        let registry = reference.domain().to_string();
        let path = reference.path().to_string();
        let scopes = vec![repository_scope(&path, "pull")];
        let remote = Remote { engine: self, registry, scopes, credentials };
        let get = |target: String, accept: &'static str| remote.get(target, accept);
        let (list, _) = get(format!("{path}/tags/list"), "application/json").await?;
        let tags: TagList = serde_json::from_slice(&list)
            .map_err(|e| Error::InvalidInput(format!("{repository}: the tag list is not valid JSON: {e}")))?;
        let mut out = Vec::new();
        for tag in tags.tags.unwrap_or_default() {
            let (bytes, content_type) = get(format!("{path}/manifests/{tag}"), MANIFEST_ACCEPT).await?;
            let document: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                Error::InvalidInput(format!("{repository}:{tag}: the manifest is not JSON: {e}"))
            })?;
            let media_type = document["mediaType"].as_str().map(str::to_string).unwrap_or(content_type);
            let mut size = 0;
            let mut platforms = Vec::new();
            if let Some(children) = document["manifests"].as_array() {
                for child in children {
                    if let Some(p) = platform_of(&child["platform"]) {
                        platforms.push(p);
                    }
                    if let Some(d) = child["digest"].as_str() {
                        let (child_bytes, _) = get(format!("{path}/manifests/{d}"), MANIFEST_ACCEPT).await?;
                        let child: serde_json::Value =
                            serde_json::from_slice(&child_bytes).unwrap_or_default();
                        size += image_size(&child);
                    }
                }
            } else {
                size = image_size(&document);
                if let Some(config) = document["config"]["digest"].as_str() {
                    let (config_bytes, _) = get(format!("{path}/blobs/{config}"), "*/*").await?;
                    let config: serde_json::Value = serde_json::from_slice(&config_bytes).unwrap_or_default();
                    if let Some(p) = platform_of(&config) {
                        platforms.push(p);
                    }
                }
            }
            out.push(RemoteTag { tag, digest: sha256_of(&bytes).to_string(), media_type, size, platforms });
        }
        Ok(out)
    }

    /// A remote tag's manifest (`registry/repo:tag`, or `@digest`) with, for each image it
    /// holds, its platform, config and layers: what the dashboard shows of a tag.
    pub async fn remote_manifest(
        &self,
        reference: &str,
        credentials: Option<Credentials>,
    ) -> Result<RemoteManifest> {
        let parsed = Reference::parse(reference)?;
        let path = parsed.path().to_string();
        let wanted = match (parsed.digest(), parsed.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => "latest".to_string(),
        };
        let remote = Remote {
            engine: self,
            registry: parsed.domain().to_string(),
            scopes: vec![repository_scope(&path, "pull")],
            credentials,
        };
        let (bytes, content_type) = remote.get(format!("{path}/manifests/{wanted}"), MANIFEST_ACCEPT).await?;
        let document = json_document(&bytes, reference)?;
        let media_type = document["mediaType"].as_str().map(str::to_string).unwrap_or(content_type);
        let mut images = Vec::new();
        match document["manifests"].as_array() {
            Some(children) => {
                for child in children {
                    let Some(digest) = child["digest"].as_str() else { continue };
                    let (child_bytes, child_type) =
                        remote.get(format!("{path}/manifests/{digest}"), MANIFEST_ACCEPT).await?;
                    let manifest = json_document(&child_bytes, reference)?;
                    let media_type = child["mediaType"].as_str().map(str::to_string).unwrap_or(child_type);
                    let platform = platform_of(&child["platform"]);
                    images.push(remote.image(&path, &manifest, digest, media_type, platform).await?);
                }
            }
            None => {
                let digest = sha256_of(&bytes).to_string();
                images.push(remote.image(&path, &document, &digest, media_type.clone(), None).await?);
            }
        }
        Ok(RemoteManifest {
            reference: reference.to_string(),
            digest: sha256_of(&bytes).to_string(),
            media_type,
            images,
        })
    }

    /// Deletes a tag of a remote repository (`registry/repo:tag`), where the registry allows it
    /// (the distribution API's `DELETE /v2/<name>/manifests/<tag>`). Only the tag goes: a
    /// manifest deleted by digest would take every other tag naming it along.
    pub async fn delete_remote_tag(&self, reference: &str, credentials: Option<Credentials>) -> Result<()> {
        let parsed = Reference::parse(reference)?;
        let (Some(tag), None) = (parsed.tag(), parsed.digest()) else {
            return Err(Error::InvalidInput(format!("{reference}: name a tag to delete (repository:tag)")));
        };
        let registry = parsed.domain().to_string();
        let path = parsed.path().to_string();
        let target = format!("{path}/manifests/{tag}");
        let scopes = [repository_scope(&path, "delete")];
        let response = self
            .inner
            .registries
            .client
            .send_as(&registry, &scopes, credentials.as_ref(), &|http, base| {
                http.delete(RegistryClient::url(base, &target))
            })
            .await?;
        match response.status() {
            s if s.is_success() => Ok(()),
            // distribution 2.8 answers a tag where it wants a digest with 400 DIGEST_INVALID.
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::BAD_REQUEST => Err(Error::Registry {
                message: format!(
                    "{registry} does not allow deleting a tag (only a manifest by digest, with all its tags): {}",
                    answer_error(response, &format!("deleting {reference}")).await
                ),
                kind: ErrorKind::Forbidden,
            }),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let e = answer_error(response, &format!("deleting {reference}")).await;
                Err(Error::Registry { message: e.to_string(), kind: ErrorKind::Forbidden })
            }
            _ => Err(answer_error(response, &format!("deleting {reference}")).await),
        }
    }
}

/// A registry as one browse talks to it: where, with which scopes and credentials.
struct Remote<'a> {
    engine: &'a Engine,
    registry: String,
    scopes: Vec<String>,
    credentials: Option<Credentials>,
}

impl Remote<'_> {
    /// `GET /v2/<target>` (a small document: a tag list, manifest or config), with its media type.
    async fn get(&self, target: String, accept: &'static str) -> Result<(Vec<u8>, String)> {
        let registry = &self.registry;
        let response = self
            .engine
            .inner
            .registries
            .client
            .send_as(registry, &self.scopes, self.credentials.as_ref(), &|http, base| {
                http.get(RegistryClient::url(base, &target)).header(ACCEPT, accept)
            })
            .await?;
        if !response.status().is_success() {
            return Err(answer_error(response, &format!("reading {target} from {registry}")).await);
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        let bytes = response.bytes().await.map_err(|e| super::client::network_error(registry, &e))?;
        if bytes.len() > DOCUMENT_LIMIT {
            return Err(Error::InvalidInput(format!("{target} is larger than {DOCUMENT_LIMIT} bytes")));
        }
        Ok((bytes.to_vec(), content_type))
    }

    /// One image of a manifest: its config read for the platform, creation time and command.
    async fn image(
        &self,
        path: &str,
        manifest: &serde_json::Value,
        digest: &str,
        media_type: String,
        platform: Option<String>,
    ) -> Result<RemoteImage> {
        let config = blob_of(&manifest["config"]);
        let document: serde_json::Value = if config.digest.is_empty() {
            serde_json::Value::Null
        } else {
            let (bytes, _) = self.get(format!("{path}/blobs/{}", config.digest), "*/*").await?;
            serde_json::from_slice(&bytes).unwrap_or_default()
        };
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map_or_else(Vec::new, |a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
        };
        let mut command = strings(&document["config"]["Entrypoint"]);
        command.extend(strings(&document["config"]["Cmd"]));
        Ok(RemoteImage {
            digest: digest.to_string(),
            media_type,
            platform: platform.or_else(|| platform_of(&document)).unwrap_or_default(),
            config,
            created: document["created"].as_str().map(String::from),
            command,
            layers: manifest["layers"].as_array().map_or_else(Vec::new, |l| l.iter().map(blob_of).collect()),
        })
    }
}

fn json_document(bytes: &[u8], reference: &str) -> Result<serde_json::Value> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::InvalidInput(format!("{reference}: the manifest is not JSON: {e}")))
}

/// A descriptor's digest, media type and size.
fn blob_of(descriptor: &serde_json::Value) -> RemoteBlob {
    RemoteBlob {
        digest: descriptor["digest"].as_str().unwrap_or("").to_string(),
        media_type: descriptor["mediaType"].as_str().unwrap_or("").to_string(),
        size: descriptor["size"].as_u64().unwrap_or(0),
    }
}

/// `os/arch[/variant]` of an index entry's `platform` or an image config.
fn platform_of(value: &serde_json::Value) -> Option<String> {
    let (os, arch) = (value["os"].as_str()?, value["architecture"].as_str()?);
    Some(match value["variant"].as_str() {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    })
}

/// The compressed size of an image manifest: its config and layers.
fn image_size(manifest: &serde_json::Value) -> u64 {
    let config = manifest["config"]["size"].as_u64().unwrap_or(0);
    let layers: u64 =
        manifest["layers"].as_array().map_or(0, |l| l.iter().filter_map(|d| d["size"].as_u64()).sum());
    config + layers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_name_their_registry() {
        assert_eq!(split_term("busybox").unwrap(), ("docker.io".into(), "busybox".into()));
        assert_eq!(split_term("127.0.0.1:5000/app").unwrap(), ("127.0.0.1:5000".into(), "app".into()));
        assert_eq!(split_term("localhost/team").unwrap(), ("localhost".into(), "team".into()));
        assert_eq!(split_term("team/app").unwrap(), ("docker.io".into(), "team/app".into()));
    }

    #[test]
    fn next_page_comes_from_the_link_header() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(LINK, "</v2/_catalog?last=b&n=2>; rel=\"next\"".parse().unwrap());
        assert_eq!(next_link(&h).as_deref(), Some("/v2/_catalog?last=b&n=2"));
    }
}

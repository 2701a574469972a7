//! `ImageService`: the same image store, pulls and credentials as `berth pull`, so that a pod's
//! image and a `berth run` container share layers.

use std::collections::HashMap;

use axum::http::StatusCode;
use base64::Engine as _;
use berth_engine::registry::Credentials;
use berth_types::{ImageInspect, PullRequest, TransferEvent};
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_server::ImageService;
use tonic::{Request, Response, Status};

use super::{status, Cri};
use crate::serve::ops;

#[tonic::async_trait]
impl ImageService for Cri {
    async fn list_images(
        &self,
        request: Request<cri::ListImagesRequest>,
    ) -> Result<Response<cri::ListImagesResponse>, Status> {
        let caller = self.caller("ImageService", "ListImages");
        let wanted =
            request.into_inner().filter.and_then(|f| f.image).map(|i| i.image).filter(|i| !i.is_empty());
        let wanted_id = match wanted {
            Some(name) => match ops::images::inspect(&self.state, &caller, &name).await {
                Ok(image) => Some(image.id),
                Err(e) if e.status == StatusCode::NOT_FOUND => {
                    return Ok(Response::new(cri::ListImagesResponse { images: Vec::new() }))
                }
                Err(e) => return Err(status(e)),
            },
            None => None,
        };
        let mut images = Vec::new();
        for summary in ops::images::list(&self.state, &caller).await.map_err(status)? {
            if wanted_id.as_ref().is_some_and(|id| *id != summary.id) {
                continue;
            }
            if let Ok(image) = ops::images::inspect(&self.state, &caller, &summary.id).await {
                images.push(to_cri(&image));
            }
        }
        Ok(Response::new(cri::ListImagesResponse { images }))
    }

    /// An image that is not there is answered with no image, not an error (CRI's contract).
    async fn image_status(
        &self,
        request: Request<cri::ImageStatusRequest>,
    ) -> Result<Response<cri::ImageStatusResponse>, Status> {
        let caller = self.caller("ImageService", "ImageStatus");
        let request = request.into_inner();
        let name = request.image.map(|i| i.image).unwrap_or_default();
        if name.is_empty() {
            return Err(Status::invalid_argument("ImageStatus: no image given"));
        }
        let image = match ops::images::inspect(&self.state, &caller, &name).await {
            Ok(image) => Some(image),
            Err(e) if e.status == StatusCode::NOT_FOUND || e.status == StatusCode::BAD_REQUEST => None,
            Err(e) => return Err(status(e)),
        };
        let mut info = HashMap::new();
        if request.verbose {
            if let Some(image) = &image {
                info.insert("info".to_string(), serde_json::to_string(&image.config).unwrap_or_default());
            }
        }
        Ok(Response::new(cri::ImageStatusResponse { image: image.as_ref().map(to_cri), info }))
    }

    async fn pull_image(
        &self,
        request: Request<cri::PullImageRequest>,
    ) -> Result<Response<cri::PullImageResponse>, Status> {
        let caller = self.caller("ImageService", "PullImage");
        let request = request.into_inner();
        let reference = request.image.map(|i| i.image).unwrap_or_default();
        if reference.is_empty() {
            return Err(Status::invalid_argument("PullImage: no image given"));
        }
        let credentials = match request.auth {
            Some(auth) => credentials(auth)?,
            None => None,
        };
        let pull = PullRequest { reference: reference.clone(), platform: None };
        let mut events =
            ops::registry::pull(&self.state, &caller, Ok(pull), credentials).await.map_err(status)?;
        let mut last = None;
        while let Some(event) = events.recv().await {
            last = Some(event);
        }
        match last {
            Some(TransferEvent::Pulled(report)) => {
                Ok(Response::new(cri::PullImageResponse { image_ref: report.id }))
            }
            Some(TransferEvent::Error { message, status: code }) => {
                let code = code.and_then(|c| StatusCode::from_u16(c).ok()).unwrap_or(StatusCode::BAD_GATEWAY);
                Err(status(crate::serve::error::ApiError::new(
                    code,
                    format!("pulling {reference}: {message}"),
                )))
            }
            _ => Err(Status::internal(format!("pulling {reference}: the pull ended without a result"))),
        }
    }

    /// Removing an image that is not there succeeds (CRI's contract).
    async fn remove_image(
        &self,
        request: Request<cri::RemoveImageRequest>,
    ) -> Result<Response<cri::RemoveImageResponse>, Status> {
        let caller = self.caller("ImageService", "RemoveImage");
        let name = request.into_inner().image.map(|i| i.image).unwrap_or_default();
        if name.is_empty() {
            return Err(Status::invalid_argument("RemoveImage: no image given"));
        }
        // By ID, with every tag (kubelet removes images by ID).
        match ops::images::remove(&self.state, &caller, &name, true).await {
            Ok(_) => Ok(Response::new(cri::RemoveImageResponse {})),
            Err(e) if e.status == StatusCode::NOT_FOUND => Ok(Response::new(cri::RemoveImageResponse {})),
            Err(e) => Err(status(e)),
        }
    }

    async fn image_fs_info(
        &self,
        _request: Request<cri::ImageFsInfoRequest>,
    ) -> Result<Response<cri::ImageFsInfoResponse>, Status> {
        let caller = self.caller("ImageService", "ImageFsInfo");
        let images = ops::images::list(&self.state, &caller).await.map_err(status)?;
        let used: u64 = images.iter().map(|i| i.size).sum();
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        let usage = |dir: &str| cri::FilesystemUsage {
            timestamp: now,
            fs_id: Some(cri::FilesystemIdentifier {
                mountpoint: self.state.root.join(dir).display().to_string(),
            }),
            used_bytes: Some(cri::UInt64Value { value: used }),
            inodes_used: Some(cri::UInt64Value { value: 0 }),
        };
        Ok(Response::new(cri::ImageFsInfoResponse {
            image_filesystems: vec![usage("snapshots")],
            container_filesystems: Vec::new(),
        }))
    }
}

/// A pull's own credentials: user and password, or `auth` (base64 `user:password`). Token
/// authentication (identity or registry token) is refused by name.
fn credentials(auth: cri::AuthConfig) -> Result<Option<Credentials>, Status> {
    if !auth.identity_token.is_empty() || !auth.registry_token.is_empty() {
        return Err(Status::invalid_argument(
            "PullImage: identity_token and registry_token are not supported (give username and password)",
        ));
    }
    if !auth.username.is_empty() {
        return Ok(Some(Credentials { username: auth.username, password: auth.password }));
    }
    if !auth.auth.is_empty() {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.auth.trim())
            .map_err(|_| Status::invalid_argument("PullImage: auth is not base64"))?;
        let text = String::from_utf8(decoded)
            .map_err(|_| Status::invalid_argument("PullImage: auth is not text"))?;
        let (username, password) = text
            .split_once(':')
            .ok_or_else(|| Status::invalid_argument("PullImage: auth is not user:password"))?;
        return Ok(Some(Credentials { username: username.into(), password: password.into() }));
    }
    Ok(None)
}

/// An image as CRI shows it: its ID, tags, digests, size, and the user it runs as.
pub(super) fn to_cri(image: &ImageInspect) -> cri::Image {
    let user = image.config.user.split(':').next().unwrap_or("").to_string();
    let (uid, username) = match user.parse::<i64>() {
        Ok(uid) => (Some(cri::Int64Value { value: uid }), String::new()),
        Err(_) => (None, user),
    };
    cri::Image {
        id: image.id.clone(),
        repo_tags: image.repo_tags.clone(),
        repo_digests: image.repo_digests.clone(),
        size: image.size,
        uid,
        username,
        spec: Some(cri::ImageSpec { image: image.id.clone(), ..Default::default() }),
        pinned: false,
    }
}

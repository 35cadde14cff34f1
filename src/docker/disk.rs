//! What the engine's disk use is made of (`GET /system/df`): images, build
//! cache, containers' writable layers and volumes, each with the bytes a
//! prune could give back, computed the way `docker system df` computes them,
//! plus the items themselves for a dry run to list. Read raw: bollard 0.21
//! parses only API 1.52's summary shape, and the engines hostmedic meets
//! (Debian 12's 20.10, API 1.41) answer the older itemised one; both are
//! read here.

use std::path::Path;

use bollard::errors::Error as BollardError;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use serde::Deserialize;

use super::{Connection, DockerError};

/// The kinds of disk use the engine reports, in the order they are exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskKind {
    Images,
    BuildCache,
    Containers,
    Volumes,
}

impl DiskKind {
    pub const ALL: [DiskKind; 4] = [
        DiskKind::Images,
        DiskKind::BuildCache,
        DiskKind::Containers,
        DiskKind::Volumes,
    ];

    /// The `kind` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskKind::Images => "images",
            DiskKind::BuildCache => "build_cache",
            DiskKind::Containers => "containers",
            DiskKind::Volumes => "volumes",
        }
    }
}

/// One kind's bytes and what of them is reclaimable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindUsage {
    pub kind: DiskKind,
    pub bytes: u64,
    pub reclaimable: u64,
}

/// An image as `/system/df` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DfImage {
    pub id: String,
    pub tags: Vec<String>,
    pub size: u64,
    /// Containers created from it (running or not).
    pub containers: i64,
}

impl DfImage {
    /// Untagged: what `docker image prune` (dangling only) removes when no
    /// container uses it.
    pub fn dangling(&self) -> bool {
        self.tags.iter().all(|t| t == "<none>:<none>")
    }
}

/// A build cache record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DfCache {
    pub id: String,
    pub description: String,
    pub size: u64,
    pub in_use: bool,
    pub shared: bool,
}

/// A container's writable layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DfContainer {
    pub name: String,
    pub size_rw: u64,
    /// `running`, `exited`, …
    pub state: String,
}

impl DfContainer {
    /// Running, paused or restarting: never pruned.
    pub fn active(&self) -> bool {
        ["running", "paused", "restarting"]
            .iter()
            .any(|s| self.state.contains(s))
    }
}

/// A volume with its size (`None`: the engine did not measure it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DfVolume {
    pub name: String,
    pub size: Option<u64>,
    /// Containers that mount it; 0 = unused.
    pub ref_count: i64,
}

/// What one prune request removed, as the engine reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub removed: usize,
    /// `SpaceReclaimed`.
    pub space_reclaimed: u64,
}

/// One answer of `/system/df`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// One entry per [`DiskKind::ALL`], in that order.
    pub kinds: Vec<KindUsage>,
    /// The items (empty when the engine answered API 1.52's summary shape).
    pub images: Vec<DfImage>,
    pub build_cache: Vec<DfCache>,
    pub containers: Vec<DfContainer>,
    pub volumes: Vec<DfVolume>,
}

impl DiskUsage {
    pub fn kind(&self, kind: DiskKind) -> KindUsage {
        self.kinds
            .iter()
            .copied()
            .find(|k| k.kind == kind)
            .unwrap_or(KindUsage {
                kind,
                bytes: 0,
                reclaimable: 0,
            })
    }

    /// Parses either shape of the answer (see the module doc).
    pub fn parse(body: &[u8]) -> Result<DiskUsage, serde_json::Error> {
        let raw: RawDf = serde_json::from_slice(body)?;
        Ok(raw.into_usage())
    }
}

fn non_negative(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Both shapes, every field optional (engines leave some out).
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RawDf {
    layers_size: Option<i64>,
    images: Option<Vec<RawImage>>,
    containers: Option<Vec<RawContainer>>,
    volumes: Option<Vec<RawVolume>>,
    build_cache: Option<Vec<RawCache>>,
    image_usage: Option<RawSummary>,
    container_usage: Option<RawSummary>,
    volume_usage: Option<RawSummary>,
    build_cache_usage: Option<RawSummary>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RawSummary {
    total_size: i64,
    reclaimable: i64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RawImage {
    id: String,
    repo_tags: Option<Vec<String>>,
    size: i64,
    shared_size: i64,
    containers: i64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RawContainer {
    names: Vec<String>,
    size_rw: i64,
    state: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RawVolume {
    name: String,
    usage_data: Option<RawVolumeUsage>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RawVolumeUsage {
    size: i64,
    ref_count: i64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawCache {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Description")]
    description: String,
    #[serde(rename = "Size")]
    size: i64,
    #[serde(rename = "InUse")]
    in_use: bool,
    #[serde(rename = "Shared")]
    shared: bool,
}

impl RawDf {
    fn into_usage(self) -> DiskUsage {
        let summarised = self.layers_size.is_none() && self.images.is_none() && self.image_usage.is_some();
        if summarised {
            let k = |kind, s: Option<RawSummary>| {
                let s = s.unwrap_or_default();
                KindUsage {
                    kind,
                    bytes: non_negative(s.total_size),
                    reclaimable: non_negative(s.reclaimable),
                }
            };
            return DiskUsage {
                kinds: vec![
                    k(DiskKind::Images, self.image_usage),
                    k(DiskKind::BuildCache, self.build_cache_usage),
                    k(DiskKind::Containers, self.container_usage),
                    k(DiskKind::Volumes, self.volume_usage),
                ],
                ..DiskUsage::default()
            };
        }
        let raw_images = self.images.unwrap_or_default();
        // As the CLI: all layers, less the unique part of images in use.
        let used: i64 = raw_images
            .iter()
            .filter(|i| i.containers > 0 && i.size >= 0 && i.shared_size >= 0)
            .map(|i| i.size - i.shared_size)
            .sum();
        let layers = self.layers_size.unwrap_or(0);
        let images = raw_images
            .into_iter()
            .map(|i| DfImage {
                id: i.id,
                tags: i.repo_tags.unwrap_or_default(),
                size: non_negative(i.size),
                containers: i.containers,
            })
            .collect();
        let build_cache: Vec<DfCache> = self
            .build_cache
            .unwrap_or_default()
            .into_iter()
            .map(|c| DfCache {
                id: c.id,
                description: c.description,
                size: non_negative(c.size),
                in_use: c.in_use,
                shared: c.shared,
            })
            .collect();
        let containers: Vec<DfContainer> = self
            .containers
            .unwrap_or_default()
            .into_iter()
            .map(|c| DfContainer {
                name: super::own_name(&c.names).to_string(),
                size_rw: non_negative(c.size_rw),
                state: c.state,
            })
            .collect();
        let volumes: Vec<DfVolume> = self
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| {
                let u = v.usage_data.unwrap_or(RawVolumeUsage { size: -1, ref_count: 0 });
                DfVolume {
                    name: v.name,
                    size: u64::try_from(u.size).ok(),
                    ref_count: u.ref_count,
                }
            })
            .collect();
        let own_cache = build_cache.iter().filter(|c| !c.shared);
        let cache_bytes: u64 = own_cache.clone().map(|c| c.size).sum();
        let cache_in_use: u64 = own_cache.filter(|c| c.in_use).map(|c| c.size).sum();
        let kinds = vec![
            KindUsage {
                kind: DiskKind::Images,
                bytes: non_negative(layers),
                reclaimable: non_negative(layers - used),
            },
            KindUsage {
                kind: DiskKind::BuildCache,
                bytes: cache_bytes,
                reclaimable: cache_bytes - cache_in_use,
            },
            KindUsage {
                kind: DiskKind::Containers,
                bytes: containers.iter().map(|c| c.size_rw).sum(),
                reclaimable: containers.iter().filter(|c| !c.active()).map(|c| c.size_rw).sum(),
            },
            KindUsage {
                kind: DiskKind::Volumes,
                bytes: volumes.iter().filter_map(|v| v.size).sum(),
                reclaimable: volumes.iter().filter(|v| v.ref_count == 0).filter_map(|v| v.size).sum(),
            },
        ];
        DiskUsage {
            kinds,
            images,
            build_cache,
            containers,
            volumes,
        }
    }
}

impl Connection {
    /// `GET /system/df` under `timeout` (it walks every layer and volume:
    /// seconds to minutes on a big host, so never on a scrape).
    pub async fn disk_usage(&self, timeout: std::time::Duration) -> Result<DiskUsage, DockerError> {
        let what = "/system/df";
        let body = super::error::deadline(
            &self.host,
            what,
            timeout,
            self.get_raw(&format!("/v{}/system/df", self.api_version)),
        )
        .await?;
        DiskUsage::parse(&body)
            .map_err(|e| super::error::engine_err(&self.host, what, BollardError::JsonSerdeError { err: e }))
    }

    /// The engine's data root (`/info` `DockerRootDir`, e.g. `/var/lib/docker`):
    /// where its images, containers, logs and volumes are.
    pub async fn root_dir(&self) -> Result<std::path::PathBuf, DockerError> {
        let info = self.run("/info".into(), self.docker.info()).await?;
        info.docker_root_dir
            .filter(|d| !d.is_empty())
            .map(std::path::PathBuf::from)
            .ok_or_else(|| DockerError::Invalid(format!("the engine at {} names no DockerRootDir in /info", self.host)))
    }

    /// `POST /images/prune?filters={"dangling":["true"]}`: untagged images no
    /// container uses, as `docker image prune` (without `-a`), under `timeout`.
    pub async fn prune_dangling_images(&self, timeout: std::time::Duration) -> Result<Pruned, DockerError> {
        let filters = std::collections::HashMap::from([("dangling".to_string(), vec!["true".to_string()])]);
        let opts = bollard::query_parameters::PruneImagesOptions { filters: Some(filters) };
        let docker = self.docker.clone().with_timeout(timeout);
        let r = super::error::deadline(&self.host, "image prune", timeout, docker.prune_images(Some(opts))).await?;
        Ok(Pruned {
            removed: r
                .images_deleted
                .map_or(0, |d| d.iter().filter(|i| i.deleted.is_some()).count()),
            space_reclaimed: non_negative(r.space_reclaimed.unwrap_or(0)),
        })
    }

    /// `POST /build/prune`: the build cache nothing uses, as `docker builder
    /// prune` (without `-a`), under `timeout`.
    pub async fn prune_build_cache(&self, timeout: std::time::Duration) -> Result<Pruned, DockerError> {
        let docker = self.docker.clone().with_timeout(timeout);
        let opts = bollard::query_parameters::PruneBuildOptions::default();
        let r =
            super::error::deadline(&self.host, "build cache prune", timeout, docker.prune_build(Some(opts))).await?;
        Ok(Pruned {
            removed: r.caches_deleted.map_or(0, |d| d.len()),
            space_reclaimed: non_negative(r.space_reclaimed.unwrap_or(0)),
        })
    }

    /// `POST /containers/prune`: every stopped container, under `timeout`.
    pub async fn prune_stopped_containers(&self, timeout: std::time::Duration) -> Result<Pruned, DockerError> {
        let docker = self.docker.clone().with_timeout(timeout);
        let opts = bollard::query_parameters::PruneContainersOptions::default();
        let r = super::error::deadline(
            &self.host,
            "container prune",
            timeout,
            docker.prune_containers(Some(opts)),
        )
        .await?;
        Ok(Pruned {
            removed: r.containers_deleted.map_or(0, |d| d.len()),
            space_reclaimed: non_negative(r.space_reclaimed.unwrap_or(0)),
        })
    }

    /// `DELETE /volumes/{name}` without force: the engine refuses (409) a
    /// volume a container uses, running or not.
    pub async fn remove_unused_volume(&self, name: &str) -> Result<(), DockerError> {
        let opts = bollard::query_parameters::RemoveVolumeOptions { force: false };
        self.run(format!("volume {name}"), self.docker.remove_volume(name, Some(opts)))
            .await
    }

    /// One `GET` on a fresh HTTP/1.1 connection to the engine; the body of a
    /// 2xx answer, else the engine's message as bollard reports it.
    async fn get_raw(&self, path: &str) -> Result<Bytes, BollardError> {
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, "docker")
            .body(Empty::<Bytes>::new())?;
        let response = if let Some(sock) = self.host.strip_prefix("unix://") {
            if !Path::new(sock).exists() {
                return Err(BollardError::SocketNotFoundError(sock.to_string()));
            }
            send(tokio::net::UnixStream::connect(sock).await?, request).await?
        } else {
            let addr = self
                .host
                .trim_start_matches("tcp://")
                .trim_start_matches("http://")
                .trim_end_matches('/');
            send(tokio::net::TcpStream::connect(addr).await?, request).await?
        };
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            #[derive(Deserialize, Default)]
            #[serde(default)]
            struct Message {
                message: String,
            }
            let message = serde_json::from_slice::<Message>(&body)
                .map(|m| m.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            return Err(BollardError::DockerResponseServerError {
                status_code: status.as_u16(),
                message,
            });
        }
        Ok(body)
    }
}

async fn send<S>(
    stream: S,
    request: hyper::Request<Empty<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, BollardError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "docker: raw connection ended with an error");
        }
    });
    Ok(sender.send_request(request).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Engine 20.10's itemised answer: sizes as `docker system df` adds them up.
    #[test]
    fn itemised_answer_adds_up_as_the_cli_does() {
        let body = br#"{"LayersSize":1000,
          "Images":[{"Id":"sha256:a","RepoTags":["app:1"],"Size":600,"SharedSize":100,"Containers":1},
                    {"Id":"sha256:b","RepoTags":null,"Size":300,"SharedSize":100,"Containers":0},
                    {"Id":"sha256:c","RepoTags":["<none>:<none>"],"Size":100,"SharedSize":0,"Containers":0}],
          "Containers":[{"Names":["/web"],"SizeRw":50,"State":"running"},{"Names":["/old"],"SizeRw":70,"State":"exited"}],
          "Volumes":[{"Name":"data","UsageData":{"Size":400,"RefCount":1}},{"Name":"junk","UsageData":{"Size":30,"RefCount":0}},
                     {"Name":"unmeasured","UsageData":{"Size":-1,"RefCount":0}}],
          "BuildCache":[{"ID":"x","Description":"COPY a","Size":200,"InUse":false,"Shared":false},
                        {"ID":"y","Size":20,"InUse":true,"Shared":false},{"ID":"z","Size":5,"InUse":false,"Shared":true}]}"#;
        let u = DiskUsage::parse(body).unwrap();
        let k = |kind| {
            let k = u.kind(kind);
            (k.bytes, k.reclaimable)
        };
        assert_eq!(k(DiskKind::Images), (1000, 500));
        assert_eq!(k(DiskKind::BuildCache), (220, 200));
        assert_eq!(k(DiskKind::Containers), (120, 70));
        assert_eq!(k(DiskKind::Volumes), (430, 30));
        let dangling: Vec<&str> = u
            .images
            .iter()
            .filter(|i| i.dangling())
            .map(|i| i.id.as_str())
            .collect();
        assert_eq!(dangling, ["sha256:b", "sha256:c"]);
        assert_eq!(u.containers[1].name, "old");
        assert!(u.containers[0].active() && !u.containers[1].active());
        assert_eq!(u.volumes[2].size, None);
    }

    /// API 1.52's summaries are taken as they are.
    #[test]
    fn summarised_answer_is_read_too() {
        let body = br#"{"ImageUsage":{"ActiveCount":1,"TotalCount":2,"Reclaimable":10,"TotalSize":90},
          "ContainerUsage":{"TotalSize":5,"Reclaimable":0},"VolumeUsage":{"TotalSize":7,"Reclaimable":7},
          "BuildCacheUsage":{"TotalSize":3,"Reclaimable":3}}"#;
        let u = DiskUsage::parse(body).unwrap();
        assert_eq!(
            (u.kind(DiskKind::Images).bytes, u.kind(DiskKind::Images).reclaimable),
            (90, 10)
        );
        assert_eq!(u.kind(DiskKind::Volumes).reclaimable, 7);
        assert!(u.images.is_empty());
    }
}

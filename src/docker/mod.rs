//! Docker Engine access shared by the `docker` collector and the remediation
//! actions: one way to connect (configured host, else `DOCKER_HOST`, else the
//! local socket; API version negotiated down to what the engine speaks, e.g.
//! 1.41 on Debian 12; every request under a timeout) and the few container
//! operations hostmedic needs, each returning a typed [`DockerError`].
//!
//! Every helper takes a [`Connection`] from [`connect`] and applies the
//! client's own timeout ([`Connection::timeout`]) as a hard deadline, so a
//! hung engine never hangs a scrape or an action.
//!
//! One file per topic: `error.rs` (what can go wrong, and which answers are
//! races worth a retry), `connection.rs` (finding and connecting to the
//! engine, and the operations), `disk.rs` (`/system/df`: what the engine's
//! disk use is made of), `status.rs` (what an inspect or a list says
//! about a container, as enums until printed).

mod connection;
mod disk;
mod error;
mod status;

pub use connection::{Connection, Settings, check_host, connect, connect_to, resolve_host};
pub use disk::{DfCache, DfContainer, DfImage, DfVolume, DiskKind, DiskUsage, KindUsage, Pruned};
pub use error::DockerError;
pub use status::{ContainerStatus, HEALTHS, Health, HealthProbe, Listed, STATES, State, own_name, parse_time};

/// The engine address used when neither the configuration nor `DOCKER_HOST`
/// names one.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Compose's labels, exported on `hostmedic_docker_container_info`.
pub const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";
pub const COMPOSE_SERVICE_LABEL: &str = "com.docker.compose.service";
/// Compose v2's record of a service's `depends_on`:
/// `service:condition:restart,…` (e.g. `db:service_healthy:false`).
/// Compose v1 (Debian 12's `docker-compose` 1.29) writes none.
pub const COMPOSE_DEPENDS_ON_LABEL: &str = "com.docker.compose.depends_on";

//! Prometheus: the agent as an exporter, and comparisons as textfiles.
//!
//! - [`exposition`]: the classic text format and OpenMetrics, as the scraper
//!   asks.
//! - [`pair`]: a pair's metrics: what a comparison found, and what the agent
//!   knows across rounds.
//! - [`servers`]: the pair's ensembles and servers, from the probes.
//! - [`registry`]: the agent's latest rounds and probes, rendered per scrape.
//! - [`http`]: the agent's `/metrics` endpoint.
//! - [`textfile`]: a comparison's metrics for node_exporter's textfile
//!   collector, written atomically.
//!
//! The metric families, the alerting rules and the dashboard are described
//! in `prometheus/README.md`.

pub mod exposition;
pub mod http;
pub mod pair;
pub mod registry;
mod servers;
pub mod textfile;

pub use registry::{Registry, Update};

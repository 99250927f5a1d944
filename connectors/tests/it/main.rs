//! Connectors against the simulated partners, on both backends.

mod compliance;
mod conformance;
mod contracts;
mod exchange;
mod file_drops;
mod http_feeds;
mod registry;

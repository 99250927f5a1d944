//! Connectors against the simulated partners, on both backends.

mod compliance;
mod contracts;
mod registry;

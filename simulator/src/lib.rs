//! The simulator: partner systems on loopback and the city's case flow, for
//! the demo, hermetic tests and benchmarks. So far it holds the case-flow
//! generator and the court-push load generator; the partner servers arrive
//! with the rest of the simulator issue.
//!
//! # Layout
//!
//! - [`world`]: the simulated city's own model of what happened (no `store`, no `gateway`).
//! - [`caseflow`]: the seeded case-flow generator (cases, filings, loans, QC findings, evaluations, anomalies).
//! - [`servers`]: partner servers on loopback (so far the registry's business system) with fault injection.
//! - [`court_push`]: signed court orders pushed to the gateway at a rate, with latency percentiles.

pub mod caseflow;
pub mod court_push;
pub mod exchange;
pub mod servers;
pub mod world;

//! The simulator: partner systems on loopback and the city's case flow, for
//! the demo, hermetic tests and benchmarks. So far it holds the court-push
//! load generator; the case-flow generator and the partner servers arrive
//! with the simulator issue.
//!
//! # Layout
//!
//! - [`court_push`]: signed court orders pushed to the gateway at a rate, with latency percentiles.

pub mod court_push;

//! The simulator: partner systems on loopback and the city's case flow, for
//! the demo, hermetic tests and benchmarks. Not built yet: arrives with the
//! simulator issue.
//!
//! # Layout
//!
//! Empty until the simulator issue.

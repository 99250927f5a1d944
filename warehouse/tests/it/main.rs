//! The warehouse over a simulated store, on both backends.

#[cfg(feature = "ballista")]
mod ballista;
mod engines;
mod kpis;
mod rhythm;
mod rollup;

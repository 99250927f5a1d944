//! The warehouse over a simulated store, on both backends.

#[cfg(feature = "ballista")]
mod ballista;
mod kpis;
mod engines;

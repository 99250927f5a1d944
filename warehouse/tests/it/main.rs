//! The warehouse over a simulated store, on both backends.

mod kpis;

//! Partner connectors: one shared poll loop, a hook per partner, cron schedules.
//! Only this crate calls partner systems; it writes only through `store`.
//!
//! Built so far: the loop, retrying fetches, and the registry's case feed.
//! The other partners (QC findings, evaluations, housing, banks, provident
//! fund, court platform), the scheduler in `serve`, reconciliation and
//! health metrics are still to come.
//!
//! # Layout
//!
//! - [`schedule`]: cron expressions, validated once, asked for the next run after a given `now`.
//! - [`fetch`]: HTTP GET with retries, backoff, jitter and `Retry-After`.
//! - [`poll`]: the shared loop: a page and its cursor in one transaction, bad rows to quarantine.
//! - [`registry`]: the registry's case feed.

pub mod fetch;
pub mod poll;
pub mod registry;
pub mod schedule;

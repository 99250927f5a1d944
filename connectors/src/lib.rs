//! Partner connectors: one shared poll loop, a hook per partner, cron schedules.
//! Only this crate calls partner systems; it writes only through `store`.
//!
//! # Layout
//!
//! - [`schedule`]: cron expressions, validated once, asked for the next run after a given `now`.
//! - [`fetch`]: HTTP GET and POST with retries, backoff, jitter and `Retry-After`.
//! - [`poll`]: the shared loop: a page and its cursor in one transaction, bad rows to quarantine.
//! - [`registry`]: the registry's feeds: cases, QC findings, evaluations.
//! - [`housing`]: the housing authority's daily GBK CSV exports, each loaded exactly once.
//! - [`lenders`]: each bank's JSON feed and the provident fund's GB18030 XML feed.
//! - [`court_platform`]: requests pulled from the courts' control platform, feedback from an outbox.
//! - [`conformance`]: `wangban partner check`: a partner's test endpoint read twice and checked against its contract.
//! - [`partner`]: partners by configuration: exchange tables and HTTP feeds mapped in TOML onto our record kinds.
//! - [`replay`]: quarantined records validated again and written, fixed or as kept.
//! - [`xmlrows`]: row-wise XML lists, so one broken row is one bad row.
//! - [`runner`]: the configured connectors by name, run once or each on its cron schedule.

pub mod conformance;
pub mod court_platform;
pub mod fetch;
pub mod housing;
pub mod lenders;
pub mod partner;
pub mod poll;
pub mod registry;
pub mod replay;
pub mod runner;
pub mod schedule;
pub mod xmlrows;

//! Partner connectors: one shared poll loop, a hook per partner, cron schedules.
//!
//! Today this crate holds the schedule type the configuration is checked
//! with; the poll loop and the partner modules arrive with the connectors issue.
//!
//! # Layout
//!
//! - [`schedule`]: cron expressions, validated once, asked for the next run after a given `now`.

pub mod schedule;

//! The dashboards over a simulated store and warehouse, on both backends:
//! every page under every role, logins, lockout, idle timeout, downloads,
//! the SQL API and console, golden SVG charts, and the monthly report read
//! back with a reader that is not our writer.

mod browser;
mod charts;
mod pages;
mod report;

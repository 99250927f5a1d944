//! The dashboards over a simulated store and warehouse, on both backends:
//! every page under every role, logins, lockout, idle timeout, downloads,
//! the SQL API and console, and golden SVG charts.

mod browser;
mod charts;
mod pages;

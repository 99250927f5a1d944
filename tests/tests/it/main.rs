//! End-to-end: the service started on port 0 over real HTTP, on both backends.

mod court;
mod health;
mod support;
mod tidy;

//! End-to-end: the service started on port 0 over real HTTP, on both backends.

mod app;
mod apply;
mod arbitrary_input;
mod contracts;
mod court;
mod front_doors;
mod full_disk;
mod health;
mod pg_restart;
mod pgwire;
mod sandbox;
mod simulator_contracts;
mod support;
mod tidy;
mod tls;

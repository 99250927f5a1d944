//! End-to-end tests across crates live in `tests/it/`; this library is empty.
//! They start the whole service on port 0 against a fresh SQLite file and a
//! fresh PostgreSQL database (when `WANGBAN_TEST_POSTGRES_URL` is set).
//!
//! # Layout
//!
//! - `tests/it/main.rs`: the one end-to-end test binary.

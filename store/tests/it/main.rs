//! Store tests, each run on a fresh SQLite database and a fresh PostgreSQL
//! database (the latter when `WANGBAN_TEST_POSTGRES_URL` is set, as `.ci/run` does).

mod alerts;
mod records;
mod support;
mod system;

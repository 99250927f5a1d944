//! One module per command.

pub(crate) mod alerts;
pub(crate) mod audit;
pub(crate) mod backup;
pub(crate) mod calendar;
pub(crate) mod cluster;
pub(crate) mod config;
pub(crate) mod demo;
pub(crate) mod partner;
pub(crate) mod quarantine;
pub(crate) mod report;
pub(crate) mod seizures;
pub(crate) mod serve;
pub(crate) mod simulate;
pub(crate) mod sync;
pub(crate) mod user;
pub(crate) mod validate;
pub(crate) mod warehouse;

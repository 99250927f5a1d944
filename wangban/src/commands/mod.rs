//! One module per command.

pub(crate) mod calendar;
pub(crate) mod partner;
pub(crate) mod quarantine;
pub(crate) mod seizures;
pub(crate) mod serve;
pub(crate) mod simulate;
pub(crate) mod sync;
pub(crate) mod unavailable;
pub(crate) mod validate;
pub(crate) mod warehouse;

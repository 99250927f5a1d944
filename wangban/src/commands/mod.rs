//! One module per command.

pub(crate) mod calendar;
pub(crate) mod partner;
pub(crate) mod serve;
pub(crate) mod unavailable;
pub(crate) mod validate;

//! The `wangban` binary as a user runs it: exit codes, output, and the service
//! started with `serve --listen 127.0.0.1:0`.

mod calendar;
mod crash;
mod ops;
mod partner;
mod serve;
mod simulate;
mod support;
mod validate;

//! Request signatures: the `signing` crate, the one place the gateway and
//! the simulator's court client sign and verify `X-Signature`.

pub use signing::*;

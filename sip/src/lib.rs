//! SIP user-agent core, layered transport -> transaction -> dialog -> UA, all sans-IO.
//!
//! Its own crate so the compiler enforces sans-IO: no `mio`, no sockets, no clock. The
//! reactor feeds it bytes and `now` and carries out what it asks.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod call;
pub mod dialog;
pub mod dns;
/// Parser invariant checks for the fuzz target and the mutation test; panics by design on a
/// broken invariant and is never called by the gateway itself.
pub mod exercise;
pub mod framing;
pub mod locate;
pub mod msg;
pub mod publication;
pub mod registrar;
pub mod registration;
pub mod request;
pub mod stack;
pub mod subscription;
pub mod transport;
pub mod txn;

//! SIP user-agent core, layered transport -> transaction -> dialog -> UA, all sans-IO.

pub mod auth;
pub mod exercise;
pub mod framing;
pub mod msg;
pub mod txn;

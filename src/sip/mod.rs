//! SIP user-agent core, layered transport -> transaction -> dialog -> UA, all sans-IO.

pub mod auth;
pub mod call;
pub mod dialog;
pub mod dns;
pub mod exercise;
pub mod framing;
pub mod locate;
pub mod msg;
pub mod registration;
pub mod stack;
pub mod transport;
pub mod txn;

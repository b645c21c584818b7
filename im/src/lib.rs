//! Instant-message formats, sans-IO: CPIM (RFC 3862) and IMDN (RFC 5438).
//!
//! Shared by SIP MESSAGE (the gateway's messaging) and MSRP chat: both carry CPIM
//! messages, and IMDN documents inside them. Parsers take bytes and keep what they must
//! (a [`cpim::Cpim`] keeps its raw bytes and the content byte-exact), enforce size limits,
//! and say what is wrong with typed errors ([`cpim::CpimError`], [`imdn::ImdnError`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cpim;
pub mod imdn;

#[cfg(test)]
mod mutation;

pub use cpim::{Cpim, CpimAddress, CpimBuilder, CpimError};
pub use imdn::{Imdn, ImdnError, ImdnStatus, NotificationKind};

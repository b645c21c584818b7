//! Presence documents, sans-IO: what the gateway reads from NOTIFYs and XCAP servers and
//! writes into PUBLISHes and XCAP documents.
//!
//! - [`pidf`]: PIDF (RFC 3863) with the data model (RFC 4479) persons and RPID activities
//!   and notes (RFC 4480); parsed into a [`pidf::Presence`] summary, written by
//!   [`pidf::PidfBuilder`].
//! - [`rlmi`]: `multipart/related` bodies (RFC 2387) of resource-list NOTIFYs with their
//!   RLMI document (RFC 4662 section 5) and a PIDF part per resource instance.
//! - [`resource_lists`]: RFC 4826 buddy lists, extension elements kept for round trips.
//! - [`pres_rules`]: RFC 5025 presence authorization rules (common-policy, RFC 4745).
//!
//! Every parser takes bytes from a peer: each enforces a size limit, a nesting depth and an
//! element count ([`xml`]), refuses DTDs (no entity expansion), and says what is wrong with
//! a typed error. None panics on any input (fuzz targets in `fuzz/`, deterministic
//! mutations in the normal suite).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Parser invariant checks for the fuzz targets and the mutation test; panics by design on a
/// broken invariant and is never called by the gateway itself.
pub mod exercise;
pub mod pidf;
pub mod pres_rules;
pub mod resource_lists;
pub mod rlmi;
pub mod xml;

#[cfg(test)]
mod mutation;

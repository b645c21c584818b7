//! The shared vocabulary of sylk-gateway's sans-IO engines.
//!
//! Every protocol engine (SIP stack, media bridge, and the engines of later waves) has the
//! same shape, after str0m (`src/lib.rs`, "Run loop") and quinn-proto: input through
//! `handle_*(now, ..)`, output through one `poll_output` that yields [`Output`]s until it
//! yields [`Output::Timeout`]. Engines never read the clock or the OS's random source: the
//! reactor passes `now` in and seeds each engine's [`Rng`] once.
//!
//! - [`Output`]: the one output verb.
//! - [`Deadlines`]: the keyed deadline table that serves every timer table that is not a
//!   fixed RFC table (the reactor's connections, bridges, registrations, calls, ...).
//! - [`Rng`]: an injected, seedable CSPRNG.
//! - [`Table`]: a slab with generation-checked [`Key`]s, for every id that outlives its entry.
//! - [`drops`]: peer-caused drops counted per [`DropKind`], logged at most once per interval.
//! - [`Histogram`]: fixed-bucket latency counts for the metrics endpoint, allocation-free to
//!   update.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod deadlines;
pub mod drops;
pub mod histogram;
mod rng;
mod table;

pub use deadlines::Deadlines;
pub use drops::DropKind;
pub use histogram::Histogram;
pub use rng::Rng;
pub use table::{Key, Table};

use std::time::Instant;

/// What an engine's `poll_output` yields. Call it after every input until it yields
/// [`Output::Timeout`]: transmits and events come first, in the order the engine produced
/// them, and the timeout says the engine is quiet until then (or until the next input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<T, E> {
    /// Bytes (or a socket action) for the reactor to carry out.
    Transmit(T),
    /// Something for the layer above (the gateway).
    Event(E),
    /// Nothing more to do now: call `handle_timeout` at this instant (`None`: no timer).
    Timeout(Option<Instant>),
}

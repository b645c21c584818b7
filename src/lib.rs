//! sylk-gateway: a single-threaded sylkRTC (WebSocket JSON) <-> SIP gateway with in-process
//! WebRTC media.
//!
//! Every protocol engine here is sans-IO: input through `handle_*(now, ..)`, output through
//! `poll_*`, deadlines through `poll_timeout`. Only [`reactor`] touches sockets or reads the clock.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod config;
pub mod gateway;
pub mod logging;
pub mod metrics;
pub mod reactor;
pub mod switchboard;
pub mod sylkrtc;
pub mod web;
pub mod ws;

//! Sans-IO media bridge between a WebRTC leg and a plain RTP leg toward SIP.
//!
//! No sockets and no clock reads live here: the reactor feeds datagrams in with their
//! arrival time and drains what the bridge wants to send.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bridge;
pub mod error;
mod media_kind;
pub mod rtp;
pub mod rtp_leg;
pub mod sdp;
pub mod srtp;
mod transmit_queue;
pub mod webrtc_leg;

pub use media_kind::MediaKind;

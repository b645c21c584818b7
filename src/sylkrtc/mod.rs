//! The sylkRTC protocol layer: wire types of both dialects, decoding of client requests and
//! encoding of replies and events.
//!
//! sylkRTC-1 is the 2015 protocol (`../shared/spec/sylkrtc-v1-seed.textile`); sylkRTC-2 is what
//! sylkrtc.js has spoken since 2017 (`../shared/spec/sylkrtc-protocol.md` section 6). Requests
//! kept their names between the two; events were renamed and flattened, so only [`event`]
//! looks at the [`Dialect`].

pub mod aor;
pub mod contacts;
pub mod event;
mod fields;
pub mod messaging;
pub mod request;

pub use aor::Aor;
pub use event::{
    ChatState, DtmfMethod, Event, Originator, RegistrationState, SessionState, TransferState,
    UpdateState,
};
pub use request::{decode, Decoded, Envelope, Request, RequestError};

/// The subprotocol a connection negotiated; fixed for the connection's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// `sylkRTC-1`: `{"sylkrtc":"event","event":"ready"}`, `*_event` with a `data` object.
    V1,
    /// `sylkRTC-2`: `{"sylkrtc":"ready-event"}`, dashed names, flattened fields.
    V2,
}

impl Dialect {
    /// The `Sec-WebSocket-Protocol` token of this dialect.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Dialect::V1 => "sylkRTC-1",
            Dialect::V2 => "sylkRTC-2",
        }
    }

    /// Picks the dialect from the subprotocols a client offers, preferring the newer one when
    /// both are offered. `None` means the handshake must be refused with 406, as SylkServer
    /// does (spec section 3, "Handshake").
    pub fn negotiate<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<Dialect> {
        let mut best = None;
        for token in offered {
            match token.trim() {
                "sylkRTC-2" => return Some(Dialect::V2),
                "sylkRTC-1" => best = Some(Dialect::V1),
                _ => {}
            }
        }
        best
    }
}

/// The reply every understood request gets exactly once.
pub fn encode_ack(transaction: &str) -> String {
    serde_json::json!({"sylkrtc": "ack", "transaction": transaction}).to_string()
}

/// The error reply; `error` is the human-readable text sylkrtc.js puts into `new Error(..)`.
pub fn encode_error(transaction: &str, error: &str) -> String {
    serde_json::json!({"sylkrtc": "error", "transaction": transaction, "error": error}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_v2_and_refuses_others() {
        assert_eq!(Dialect::negotiate(["sylkRTC-1"]), Some(Dialect::V1));
        assert_eq!(
            Dialect::negotiate(["sylkRTC-1", "sylkRTC-2"]),
            Some(Dialect::V2)
        );
        assert_eq!(Dialect::negotiate([" sylkRTC-2 "]), Some(Dialect::V2));
        assert_eq!(Dialect::negotiate(["sylkrtc-2", "chat"]), None);
        assert_eq!(Dialect::negotiate([]), None);
    }

    #[test]
    fn replies_carry_the_transaction() {
        let v: serde_json::Value = serde_json::from_str(&encode_ack("t\"1")).unwrap();
        assert_eq!(v, serde_json::json!({"sylkrtc":"ack","transaction":"t\"1"}));
        let v: serde_json::Value = serde_json::from_str(&encode_error("t2", "bad")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"sylkrtc":"error","transaction":"t2","error":"bad"})
        );
    }
}

//! A chat in renegotiations of its session (re-INVITE or UPDATE, either side's offer;
//! `calls/update.rs`). The bridge knows only audio and video, so beside them the chat's
//! `m=message` line is taken out of what the SIP side sends before the bridge sees it, and
//! put back at the same index into what the bridge writes: RFC 3264 section 8 keeps every
//! m-line where it was, and the MSRP connection goes on as it is. A chat-only session has
//! no bridge: a re-offer is answered with our last description, directions mirrored
//! (section 6.1), as every re-INVITE was before the bridge could renegotiate.

use std::time::Instant;

use media::sdp::SessionDescription;
use sip::stack::CallId as SipCallId;

use super::sdp::refused_line;
use crate::gateway::{CallKey, ChatStop, Engines, Gateway};

impl Gateway {
    /// Whether call `key` is a chat-only session (no bridge to renegotiate).
    pub(in crate::gateway) fn is_chat_only(&self, key: CallKey) -> bool {
        self.chat.sessions.get(&key).is_some_and(|c| c.chat_only)
    }

    /// Whether call `key` has a chat (live, over, or refused: its line is in the SDP).
    pub(in crate::gateway) fn has_chat(&self, key: CallKey) -> bool {
        self.chat.sessions.contains_key(&key)
    }

    /// A SIP re-offer in a chat-only session's dialog: our last description, directions
    /// mirrored (488 when either cannot be read: RFC 3261 section 14.2 keeps the session).
    pub(in crate::gateway) fn chat_only_reoffer(
        &mut self,
        now: Instant,
        sip: SipCallId,
        sdp: &str,
        e: &mut Engines<'_>,
    ) {
        let offer = SessionDescription::parse(sdp.as_bytes());
        let ours = e
            .sip
            .local_sdp(sip)
            .map(|local| SessionDescription::parse(local.as_bytes()));
        let result = match (offer, ours) {
            (Ok(offer), Some(Ok(ours))) => {
                e.sip
                    .answer_reinvite(now, sip, ours.mirror_direction(&offer))
            }
            _ => e.sip.reject_reinvite(now, sip, 488),
        };
        if let Err(err) = result {
            log::info!("sip call {sip:?} chat re-offer not answered: {err}");
        }
    }

    /// What the bridge is to see of a SIP description (re-offer or answer to ours) of call
    /// `key`: without the chat's line. A re-offer that refuses the line (port 0) ends the
    /// chat; the call goes on.
    pub(in crate::gateway) fn chat_strip(
        &mut self,
        now: Instant,
        key: CallKey,
        sdp: &str,
        e: &mut Engines<'_>,
    ) -> String {
        let Some(chat) = self.chat.sessions.get(&key).filter(|c| !c.chat_only) else {
            return sdp.to_owned();
        };
        let index = chat.index;
        let Ok(d) = SessionDescription::parse(sdp.as_bytes()) else {
            return sdp.to_owned();
        };
        let Some(line) = d.media.get(index).filter(|m| m.is_msrp()) else {
            return sdp.to_owned();
        };
        if line.is_port_zero() && chat.msrp.is_some() {
            log::info!("{} chat refused by a re-offer", self.call_context(key));
            self.chat_refused(now, key, ChatStop::Removed, e);
        }
        d.without_media(index).to_sdp_string()
    }

    /// A description the bridge wrote for the SIP side (re-offer or answer) of call `key`:
    /// the chat's line back at its index (port 0 once the chat is over or was refused).
    pub(in crate::gateway) fn chat_restore(&self, key: CallKey, sdp: String) -> String {
        let Some(chat) = self.chat.sessions.get(&key).filter(|c| !c.chat_only) else {
            return sdp;
        };
        let Some(line) = chat.line.as_ref() else {
            return sdp;
        };
        let line = match chat.msrp {
            Some(_) => line.clone(),
            None => refused_line(line),
        };
        match SessionDescription::parse(sdp.as_bytes()) {
            Ok(d) => d.with_media_at(chat.index, line).to_sdp_string(),
            Err(_) => sdp,
        }
    }
}

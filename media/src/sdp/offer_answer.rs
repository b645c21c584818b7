//! The offer/answer questions (RFC 3264) the gateway and the SIP layer ask of a parsed
//! description, instead of scanning SDP text: does an offer carry video, is it a hold, which
//! direction does it offer, and what is our answer to a re-offer that keeps our media as it
//! is with the direction mirrored.

use super::model::MediaDirection;
use super::{MediaType, SessionDescription};

impl SessionDescription {
    /// Whether an active `m=video` line is present (port not 0, or `a=bundle-only`): the
    /// call needs a video socket pair toward SIP.
    pub fn has_active_video(&self) -> bool {
        self.media
            .iter()
            .any(|m| m.kind == MediaType::Video && m.is_active())
    }

    /// The direction this description offers (RFC 3264 section 5.1): that of its first
    /// active media section (its own attribute, else the session-level one, else sendrecv);
    /// the session-level one, else sendrecv, when no section is active.
    pub fn offered_direction(&self) -> MediaDirection {
        let first_active = self.media.iter().position(|m| m.is_active());
        self.media_direction(first_active.unwrap_or(usize::MAX))
    }

    /// Whether this (re-)offer puts the call on hold: an active media section that is
    /// `sendonly` or `inactive` (RFC 3264 section 8.4), or whose connection address is
    /// unspecified (`c=IN IP4 0.0.0.0`, the RFC 2543 hold that section 8.4 still lets peers
    /// send). On hold the peer sends no media by design.
    pub fn is_hold(&self) -> bool {
        self.media.iter().enumerate().any(|(i, m)| {
            m.is_active()
                && (matches!(
                    self.media_direction(i),
                    MediaDirection::SendOnly | MediaDirection::Inactive
                ) || self
                    .media_connection(i)
                    .and_then(|c| c.ip())
                    .is_some_and(|ip| ip.is_unspecified()))
        })
    }

    /// Our answer to the re-offer `offer`, made from `self` (our last SDP of the session):
    /// the same media, each section's direction mirrored from the offer's for it (RFC 3264
    /// section 6.1: sendonly is answered recvonly, recvonly sendonly, inactive inactive,
    /// sendrecv sendrecv), and the `o=` version incremented because the description changed
    /// (section 8). A section of ours the offer has no counterpart for mirrors
    /// [`SessionDescription::offered_direction`]. Session-level directions are dropped: each
    /// section carries its own.
    ///
    /// This is the answer when the gateway does not renegotiate a re-INVITE itself: hold,
    /// unhold and session refreshes keep the media flowing as it is.
    pub fn mirror_direction(&self, offer: &SessionDescription) -> String {
        let fallback = offer.offered_direction();
        let mut answer = self.clone();
        answer
            .attributes
            .retain(|a| a.value.is_some() || MediaDirection::from_attribute(&a.name).is_none());
        for (i, m) in answer.media.iter_mut().enumerate() {
            let offered = if i < offer.media.len() {
                offer.media_direction(i)
            } else {
                fallback
            };
            m.set_direction(offered.answer_to(MediaDirection::SendRecv));
        }
        answer.origin.session_version = answer.origin.session_version.wrapping_add(1);
        answer.to_sdp_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdp(text: &str) -> SessionDescription {
        SessionDescription::parse(text.as_bytes()).expect("test SDP")
    }

    const LOCAL: &str = "v=0\r\no=- 1 5 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n\
        m=audio 4000 RTP/AVP 0\r\na=sendrecv\r\nm=video 4002 RTP/AVP 96\r\n\
        a=rtpmap:96 VP8/90000\r\n";

    fn offer(session: &str, audio: &str) -> SessionDescription {
        sdp(&format!(
            "v=0\r\no=x 9 9 IN IP4 5.6.7.8\r\ns=-\r\nc=IN IP4 5.6.7.8\r\nt=0 0\r\n{session}\
             m=audio 5000 RTP/AVP 0\r\n{audio}"
        ))
    }

    #[test]
    fn mirror_direction_answers_hold_with_recvonly_and_bumps_version() {
        let local = sdp(LOCAL);
        let answer = local.mirror_direction(&offer("", "a=sendonly\r\n"));
        assert!(answer.contains("o=- 1 6 IN IP4 1.2.3.4\r\n"), "{answer}");
        // The video section has no counterpart in the offer: it mirrors the offer's
        // direction too.
        assert_eq!(answer.matches("a=recvonly").count(), 2, "{answer}");
        assert!(!answer.contains("sendrecv"), "{answer}");
        assert!(
            answer.contains("a=rtpmap:96 VP8/90000\r\n"),
            "media kept: {answer}"
        );
        let parsed = sdp(&answer);
        assert_eq!(parsed.media.len(), 2);
        assert_eq!(parsed.media_direction(0), MediaDirection::RecvOnly);
    }

    #[test]
    fn mirror_direction_unholds_and_keeps_inactive() {
        let local = sdp(LOCAL);
        let unhold = local.mirror_direction(&offer("", ""));
        assert_eq!(unhold.matches("a=sendrecv").count(), 2, "{unhold}");
        let inactive = local.mirror_direction(&offer("a=inactive\r\n", ""));
        assert_eq!(inactive.matches("a=inactive").count(), 2, "{inactive}");
        let recvonly = local.mirror_direction(&offer("", "a=recvonly\r\n"));
        assert_eq!(recvonly.matches("a=sendonly").count(), 2, "{recvonly}");
        // Each answer is one version on from ours, not from the previous answer.
        assert!(recvonly.contains("o=- 1 6 "), "{recvonly}");
    }

    #[test]
    fn mirror_direction_mirrors_each_section_on_its_own() {
        let local = sdp(LOCAL);
        let offer = sdp(
            "v=0\r\no=x 9 9 IN IP4 5.6.7.8\r\ns=-\r\nc=IN IP4 5.6.7.8\r\nt=0 0\r\n\
            m=audio 5000 RTP/AVP 0\r\na=sendonly\r\nm=video 5002 RTP/AVP 96\r\n\
            a=rtpmap:96 VP8/90000\r\na=inactive\r\n",
        );
        let answer = sdp(&local.mirror_direction(&offer));
        assert_eq!(answer.media_direction(0), MediaDirection::RecvOnly);
        assert_eq!(answer.media_direction(1), MediaDirection::Inactive);
    }

    #[test]
    fn hold_offers() {
        assert!(offer("", "a=sendonly\r\n").is_hold());
        assert!(offer("", "a=inactive\r\n").is_hold());
        assert!(
            offer("a=sendonly\r\n", "").is_hold(),
            "session-level direction"
        );
        assert!(sdp(
            "v=0\r\no=x 9 9 IN IP4 5.6.7.8\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
                m=audio 5000 RTP/AVP 0\r\n"
        )
        .is_hold());
        assert!(!offer("", "a=sendrecv\r\n").is_hold());
        assert!(!offer("", "a=recvonly\r\n").is_hold());
        assert!(!offer("", "").is_hold());
        // A rejected section on hold does not hold the call.
        assert!(!sdp(
            "v=0\r\no=x 9 9 IN IP4 5.6.7.8\r\ns=-\r\nc=IN IP4 5.6.7.8\r\nt=0 0\r\n\
                m=audio 5000 RTP/AVP 0\r\nm=video 0 RTP/AVP 96\r\na=inactive\r\n"
        )
        .is_hold());
    }

    #[test]
    fn offered_direction_is_the_first_active_sections() {
        assert_eq!(
            offer("", "a=recvonly\r\n").offered_direction(),
            MediaDirection::RecvOnly
        );
        assert_eq!(
            offer("a=inactive\r\n", "").offered_direction(),
            MediaDirection::Inactive
        );
        assert_eq!(offer("", "").offered_direction(), MediaDirection::SendRecv);
        // Media-level wins over session-level (RFC 3264 section 5.1).
        assert_eq!(
            offer("a=sendonly\r\n", "a=sendrecv\r\n").offered_direction(),
            MediaDirection::SendRecv
        );
    }

    #[test]
    fn active_video_is_recognised() {
        assert!(!sdp(LOCAL.replace("m=video 4002", "m=video 0").as_str()).has_active_video());
        assert!(sdp(LOCAL).has_active_video());
        assert!(!offer("", "").has_active_video());
        let bundled = LOCAL.replace("m=video 4002", "m=video 0") + "a=bundle-only\r\n";
        assert!(
            sdp(&bundled).has_active_video(),
            "bundle-only keeps port 0 active"
        );
    }
}

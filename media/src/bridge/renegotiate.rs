//! Renegotiation of a running call, from either side (RFC 3264 section 8), one at a time.
//!
//! The browser re-offers (sylkRTC `session-update`: hold, an added or removed video stream,
//! an ICE restart): [`Bridge::handle_webrtc_reoffer`] turns it into our SIP re-offer, which
//! keeps the m-lines of the SIP session in their places and appends new ones; the SIP answer
//! goes to [`Bridge::apply_sip_reanswer`], which re-answers the browser over the same
//! transport and moves both legs to what was agreed.
//!
//! The SIP peer re-offers (re-INVITE or UPDATE: hold, new codecs, added video, a new address,
//! new SDES keys): [`Bridge::handle_sip_reoffer`] says whether the media the browser sees
//! changes at all. If not (a refresh whose version went up) the answer is made at once; if so
//! the browser gets our re-offer, over the m-lines of its session plus new ones, and its
//! answer goes to [`Bridge::apply_webrtc_reanswer`]; without a browser answer
//! [`Bridge::answer_sip_reoffer_locally`] answers with the browser's media as it is (hold,
//! address and keys follow, new streams are refused).
//!
//! Until an answer is applied nothing changes: [`Bridge::cancel_renegotiation`] after a
//! refusal (488, 491, a timeout) leaves the call on its previous media. A kept SIP stream
//! keeps its SSRC and sequence, a kept key its SRTP context (RFC 4568 section 7.1.4: a new
//! key is a new context), an unchanged peer address its latching.

use std::time::Instant;

use super::codecs::{has_media_codec, pair_codecs};
use super::negotiate::{offered_codecs, sdp_error};
use super::sdes::{fresh_crypto, sdes_offer_cryptos};
use super::session::{directions_of, line_of, media_digest};
use super::{Bridge, MediaLeg, Negotiation};
use crate::error::BridgeError;
use crate::sdp::{
    finalize_browser_sdp, sip_answer_to_negotiated, sip_offer_answered, sip_offer_to_negotiated,
    webrtc_answer_to_sip_answer, webrtc_offer_to_sip_offer, Attribute, MediaDirection,
    MediaSection, MediaType, NegotiatedSession, SessionDescription, SipLocalMedia,
    SipLocalMediaLine,
};
use crate::webrtc_leg::{CodecSpec, OfferLine};
use crate::MediaKind;

/// The browser's profile, for the lines we write on its behalf.
const WEBRTC_PROFILE: &str = "UDP/TLS/RTP/SAVPF";

/// What a SIP re-offer means for the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SipReoffer {
    /// Nothing the browser sees changes (a refresh, possibly with a new version): this is
    /// the SIP answer, made and applied already.
    Unchanged(String),
    /// The browser's media changes: this is our re-offer to the browser; its answer goes to
    /// [`Bridge::apply_webrtc_reanswer`].
    Browser(String),
}

/// An offer/answer under way.
#[derive(Debug)]
pub(super) enum Renegotiation {
    /// The browser offered; our SIP offer is out.
    FromBrowser {
        webrtc_offer: Box<SessionDescription>,
        /// The browser's lines in the SIP session's order (placeholders where it has none).
        model: Box<SessionDescription>,
        sip_offer: Box<SessionDescription>,
    },
    /// The SIP peer offered; our offer to the browser is out.
    FromSip {
        sip_offer: Box<SessionDescription>,
        /// Our offer's lines, in the browser session's order.
        lines: Vec<OfferLine>,
    },
}

/// The first active audio and video lines of a browser offer that the WebRTC leg would
/// take (BUNDLE members after the first, like the initial answer).
fn browser_media_lines(offer: &SessionDescription) -> [Option<usize>; 2] {
    let bundle = offer.bundle_group();
    let mut picks = [None, None];
    for (i, m) in offer.media.iter().enumerate() {
        let Some(kind) = MediaKind::from_sdp(&m.kind) else {
            continue;
        };
        if m.is_port_zero() || picks[kind.index()].is_some() || !m.is_rtp() {
            continue;
        }
        let in_bundle = m.mid().is_some_and(|mid| bundle.contains(&mid));
        if picks.iter().any(Option::is_some) && !in_bundle {
            continue;
        }
        picks[kind.index()] = Some(i);
    }
    picks
}

/// A rejected line of `kind` standing where a side has nothing (RFC 3264 section 8.2).
fn placeholder(kind: MediaType, protocol: &str, formats: &[String]) -> MediaSection {
    let formats = if formats.is_empty() {
        vec!["0".to_owned()]
    } else {
        formats.to_vec()
    };
    MediaSection::new(kind, 0, protocol, formats)
}

/// The codecs of `kind` in `pairs`, browser side.
fn browser_side(pairs: &[(CodecSpec, CodecSpec)], kind: MediaKind) -> Vec<CodecSpec> {
    pairs
        .iter()
        .filter(|(w, _)| w.kind == kind)
        .map(|(w, _)| w.clone())
        .collect()
}

impl Bridge {
    /// Whether a renegotiation may start: media agreed, nothing under way.
    fn ready_to_renegotiate(&self) -> Result<(), BridgeError> {
        if !matches!(self.negotiation, Negotiation::Active)
            || self.agreed.is_none()
            || self.webrtc.is_none()
        {
            return Err(BridgeError::WrongState("no agreed media to renegotiate"));
        }
        if self.renegotiation.is_some() {
            return Err(BridgeError::WrongState("a renegotiation is under way"));
        }
        Ok(())
    }

    /// Whether an offer/answer is under way.
    pub fn is_renegotiating(&self) -> bool {
        self.renegotiation.is_some()
    }

    /// A socket pair for SIP-side video, bound by the reactor, for a call that had none: a
    /// renegotiation may then offer (or accept) video toward SIP.
    pub fn add_sip_video_socket(&mut self, local: std::net::SocketAddr) {
        if self.config.sip_video_local.is_none() {
            self.config.sip_video_local = Some(local);
        }
    }

    /// Whether the call has a SIP-side video socket.
    pub fn has_sip_video_socket(&self) -> bool {
        self.config.sip_video_local.is_some()
    }

    /// The browser re-offers (its offer of a running call): returns our SIP re-offer. It
    /// keeps the SIP session's m-lines where they are (the browser's audio and video in the
    /// lines of their kind, others rejected with port 0) and appends a line for a kind the
    /// SIP session lacks (video needs [`Bridge::add_sip_video_socket`] first). On an
    /// `RTP/SAVP` line our key stays as it is; a new line gets fresh keys.
    pub fn handle_webrtc_reoffer(
        &mut self,
        now: Instant,
        webrtc_offer_sdp: &str,
    ) -> Result<String, BridgeError> {
        let _ = now;
        self.ready_to_renegotiate()?;
        let offer = SessionDescription::parse(webrtc_offer_sdp.as_bytes())
            .map_err(sdp_error(MediaLeg::Webrtc))?;
        let picks = browser_media_lines(&offer);
        let Some(agreed) = self.agreed.as_ref() else {
            return Err(BridgeError::WrongState("no agreed media"));
        };
        let sip_before = agreed.sip_local.clone();
        let mut model = offer.clone();
        model.media = Vec::with_capacity(sip_before.media.len() + 1);
        let mut covered = [false; 2];
        for m in &sip_before.media {
            let usable = MediaKind::from_sdp(&m.kind).filter(|k| {
                !covered[k.index()] && picks[k.index()].is_some() && self.sip_local(*k).is_some()
            });
            match usable.and_then(|k| picks[k.index()].map(|i| (k, i))) {
                Some((kind, i)) => {
                    covered[kind.index()] = true;
                    model.media.push(offer.media[i].clone());
                }
                None if m.kind.is_rtp_media() => {
                    model
                        .media
                        .push(placeholder(m.kind.clone(), WEBRTC_PROFILE, &m.formats));
                }
                None => model
                    .media
                    .push(placeholder(m.kind.clone(), &m.protocol, &m.formats)),
            }
        }
        for kind in MediaKind::ALL {
            if let (false, Some(i), true) = (
                covered[kind.index()],
                picks[kind.index()],
                self.sip_local(kind).is_some(),
            ) {
                model.media.push(offer.media[i].clone());
            }
        }
        let secure = sip_before.media.iter().any(|m| m.is_sdes_srtp());
        let mut lines = Vec::with_capacity(model.media.len());
        for (i, m) in model.media.iter().enumerate() {
            let kind = MediaKind::from_sdp(&m.kind);
            let rtp_port = kind.and_then(|k| self.sip_local(k)).map_or(0, |a| a.port());
            let existing = kind.and_then(|k| self.fwd.sip[k.index()].as_ref());
            let cryptos = match (secure, existing.and_then(|s| s.keys.clone())) {
                (false, _) => Vec::new(),
                // Our key as agreed, under its tag: the answer names it (RFC 4568 7.1.2).
                (true, Some((ours, _))) if i < sip_before.media.len() => vec![ours],
                (true, _) => sdes_offer_cryptos(&mut self.rng)?,
            };
            lines.push(SipLocalMediaLine { rtp_port, cryptos });
        }
        let local = SipLocalMedia {
            address: self.config.sip_ip(),
            rtcp_mux: false,
            lines,
            codecs: Self::supported_codecs(&self.config),
        };
        let sip_offer = webrtc_offer_to_sip_offer(&model, &local, &mut self.origin)
            .map_err(sdp_error(MediaLeg::Webrtc))?;
        let text = sip_offer.to_sdp_string();
        self.renegotiation = Some(Renegotiation::FromBrowser {
            webrtc_offer: Box::new(offer),
            model: Box::new(model),
            sip_offer: Box::new(sip_offer),
        });
        Ok(text)
    }

    /// The SIP answer to our re-offer from [`Bridge::handle_webrtc_reoffer`]: returns the
    /// answer for the browser, and both legs move to what was agreed. An unusable answer is
    /// an error and the call stays on its previous media (the renegotiation is over).
    pub fn apply_sip_reanswer(
        &mut self,
        now: Instant,
        sip_answer_sdp: &str,
    ) -> Result<String, BridgeError> {
        let Some(Renegotiation::FromBrowser {
            webrtc_offer,
            model,
            sip_offer,
        }) = self.renegotiation.take()
        else {
            return Err(BridgeError::WrongState(
                "no SIP re-offer of ours is pending",
            ));
        };
        let answer = SessionDescription::parse(sip_answer_sdp.as_bytes())
            .map_err(sdp_error(MediaLeg::Sip))?;
        let negotiated =
            sip_answer_to_negotiated(&sip_offer, &answer).map_err(sdp_error(MediaLeg::Sip))?;
        let mut pairs = Vec::new();
        for kind in MediaKind::ALL {
            let Some(n) = line_of(&negotiated, kind) else {
                continue;
            };
            let Some(browser) = model
                .media
                .iter()
                .find(|m| m.is_active() && MediaKind::from_sdp(&m.kind) == Some(kind))
            else {
                continue;
            };
            let offered: Vec<CodecSpec> = browser
                .codecs()
                .iter()
                .map(|c| CodecSpec::from_sdp(kind, c))
                .collect();
            let sip: Vec<CodecSpec> = n
                .codecs
                .iter()
                .map(|c| CodecSpec::from_sdp(kind, c))
                .collect();
            let kind_pairs = pair_codecs(&offered, &sip);
            if has_media_codec(&kind_pairs, kind) {
                pairs.extend(kind_pairs);
            }
        }
        if pairs.is_empty() {
            return Err(BridgeError::NoCommonCodec);
        }
        self.check_agreement(&negotiated, &pairs)?;
        let webrtc_codecs: Vec<CodecSpec> = pairs.iter().map(|(w, _)| w.clone()).collect();
        let Some(leg) = self.webrtc.as_mut() else {
            return Err(BridgeError::WrongState("no WebRTC leg"));
        };
        let mut browser_answer = leg.reanswer(now, &webrtc_offer, &webrtc_codecs)?;
        self.apply_agreement(now, &negotiated, &pairs, directions_of(&webrtc_offer))?;
        let directions = self.browser_directions(&browser_answer, &negotiated);
        finalize_browser_sdp(&mut browser_answer, &directions);
        self.browser_offered = offered_codecs(&webrtc_offer);
        self.record_agreed(*sip_offer, answer, directions_of(&webrtc_offer), &pairs);
        self.drain_webrtc(now);
        Ok(browser_answer.to_sdp_string())
    }

    /// The SIP peer re-offers (re-INVITE or UPDATE). [`SipReoffer::Unchanged`] carries the
    /// answer when the browser's media stays the same; [`SipReoffer::Browser`] our re-offer
    /// to the browser otherwise (its answer goes to [`Bridge::apply_webrtc_reanswer`], or
    /// [`Bridge::answer_sip_reoffer_locally`] answers without it). A new video line needs
    /// [`Bridge::add_sip_video_socket`] first to be offered to the browser.
    pub fn handle_sip_reoffer(
        &mut self,
        now: Instant,
        sip_offer_sdp: &str,
    ) -> Result<SipReoffer, BridgeError> {
        self.ready_to_renegotiate()?;
        let mut offer = SessionDescription::parse(sip_offer_sdp.as_bytes())
            .map_err(sdp_error(MediaLeg::Sip))?;
        let unchanged = self
            .agreed
            .as_ref()
            .is_some_and(|a| media_digest(&offer) == a.sip_remote);
        if unchanged {
            return self
                .local_sip_answer(now, &offer)
                .map(SipReoffer::Unchanged);
        }
        Self::restrict_media(&self.config, &mut offer);
        let negotiated = sip_offer_to_negotiated(&offer, &Self::supported_codecs(&self.config))
            .map_err(sdp_error(MediaLeg::Sip))?;
        let lines = self.browser_reoffer_lines(&negotiated);
        // No codec both sides carry (the gateway does not transcode): refused at once (488),
        // without troubling the browser.
        if !lines
            .iter()
            .any(|l| l.codecs.iter().any(|c| !c.is_telephone_event()))
        {
            return Err(BridgeError::NoCommonCodec);
        }
        let Some(leg) = self.webrtc.as_mut() else {
            return Err(BridgeError::WrongState("no WebRTC leg"));
        };
        let mut webrtc_offer = leg.reoffer(lines.clone());
        finalize_browser_sdp(&mut webrtc_offer, &[]);
        self.renegotiation = Some(Renegotiation::FromSip {
            sip_offer: Box::new(offer),
            lines,
        });
        self.drain_webrtc(now);
        Ok(SipReoffer::Browser(webrtc_offer.to_sdp_string()))
    }

    /// Our re-offer's lines for the browser: its session's m-lines in order (each kind's
    /// first line carries the SIP side's codecs for that kind that the browser can take,
    /// with the browser's payload types where it already has the codec), then a new line
    /// for a kind it lacks.
    fn browser_reoffer_lines(&self, negotiated: &NegotiatedSession) -> Vec<OfferLine> {
        let current = self
            .webrtc
            .as_ref()
            .map(|l| l.lines().to_vec())
            .unwrap_or_default();
        let agreed_pairs = self
            .agreed
            .as_ref()
            .map(|a| a.pairs.clone())
            .unwrap_or_default();
        // RFC 8843 section 9.1: a payload type means one codec across the BUNDLE group.
        let mut used: Vec<u8> = agreed_pairs.iter().map(|(w, _)| w.payload_type).collect();
        let mut codecs_for = |kind: MediaKind| -> Vec<CodecSpec> {
            let Some(n) = line_of(negotiated, kind) else {
                return Vec::new();
            };
            n.codecs
                .iter()
                .map(|c| CodecSpec::from_sdp(kind, c))
                .filter(|sip| self.browser_can_take(sip))
                .map(|sip| {
                    let known = agreed_pairs
                        .iter()
                        .find(|(w, s)| w.kind == kind && s.same_codec(&sip))
                        .map(|(w, _)| w.payload_type);
                    let pt = known.unwrap_or_else(|| {
                        let pt = if used.contains(&sip.payload_type) {
                            (96..=127)
                                .find(|p| !used.contains(p))
                                .unwrap_or(sip.payload_type)
                        } else {
                            sip.payload_type
                        };
                        used.push(pt);
                        pt
                    });
                    CodecSpec {
                        payload_type: pt,
                        ..sip
                    }
                })
                .collect()
        };
        let direction_of = |kind: MediaKind| {
            line_of(negotiated, kind).map_or(MediaDirection::Inactive, |n| n.direction)
        };
        let mut lines = Vec::with_capacity(current.len() + 1);
        let mut covered = [false; 2];
        let mut mids: Vec<String> = Vec::new();
        for (j, l) in current.iter().enumerate() {
            let mid = l.mid.clone().unwrap_or_else(|| j.to_string());
            mids.push(mid.clone());
            match l.kind {
                Some(kind) if !covered[kind.index()] => {
                    covered[kind.index()] = true;
                    lines.push(OfferLine {
                        kind: Some(kind),
                        media_type: kind.to_sdp(),
                        protocol: WEBRTC_PROFILE.to_owned(),
                        mid,
                        codecs: codecs_for(kind),
                        direction: direction_of(kind),
                    });
                }
                kind => lines.push(OfferLine {
                    kind,
                    media_type: kind.map_or(MediaType::Application, MediaKind::to_sdp),
                    protocol: if kind.is_some() {
                        WEBRTC_PROFILE.to_owned()
                    } else {
                        "UDP/DTLS/SCTP".to_owned()
                    },
                    mid,
                    codecs: Vec::new(),
                    direction: MediaDirection::Inactive,
                }),
            }
        }
        for kind in MediaKind::ALL {
            if covered[kind.index()] || line_of(negotiated, kind).is_none() {
                continue;
            }
            let mid = (0..)
                .map(|n: usize| n.to_string())
                .find(|m| !mids.contains(m))
                .unwrap_or_default();
            mids.push(mid.clone());
            lines.push(OfferLine {
                kind: Some(kind),
                media_type: kind.to_sdp(),
                protocol: WEBRTC_PROFILE.to_owned(),
                mid,
                codecs: codecs_for(kind),
                direction: direction_of(kind),
            });
        }
        lines
    }

    /// Whether the browser can take `sip`'s codec: it is in force, or the browser's last
    /// offer listed it; any codec of a kind that offer had no codec of (an incoming call:
    /// the browser's answer shows what it picked, not what it can do).
    fn browser_can_take(&self, sip: &CodecSpec) -> bool {
        let in_force = self
            .agreed
            .as_ref()
            .is_some_and(|a| a.pairs.iter().any(|(w, _)| w.same_codec(sip)));
        in_force
            || !self.browser_offered.iter().any(|w| w.kind == sip.kind)
            || self.browser_offered.iter().any(|w| w.same_codec(sip))
    }

    /// The browser's answer to our re-offer from [`Bridge::handle_sip_reoffer`]: returns the
    /// SIP answer, and both legs move to what was agreed.
    pub fn apply_webrtc_reanswer(
        &mut self,
        now: Instant,
        webrtc_answer_sdp: &str,
    ) -> Result<String, BridgeError> {
        let Some(Renegotiation::FromSip { sip_offer, lines }) = self.renegotiation.take() else {
            return Err(BridgeError::WrongState(
                "no re-offer to the browser is pending",
            ));
        };
        let answer = SessionDescription::parse(webrtc_answer_sdp.as_bytes())
            .map_err(sdp_error(MediaLeg::Webrtc));
        let Some(leg) = self.webrtc.as_mut() else {
            return Err(BridgeError::WrongState("no WebRTC leg"));
        };
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                leg.cancel_reoffer();
                return Err(e);
            }
        };
        leg.apply_reanswer(now, &answer)?;
        let browser_codecs = leg.negotiated_codecs();
        // The browser's answer lines in the SIP offer's order.
        let mut model = answer.clone();
        model.media = sip_offer
            .media
            .iter()
            .map(|m| {
                let at = MediaKind::from_sdp(&m.kind).and_then(|kind| {
                    lines
                        .iter()
                        .position(|l| l.kind == Some(kind) && !l.codecs.is_empty())
                });
                match at.and_then(|j| answer.media.get(j)) {
                    Some(line) if line.is_active() => line.clone(),
                    _ => placeholder(m.kind.clone(), WEBRTC_PROFILE, &m.formats),
                }
            })
            .collect();
        self.answer_with_browser(now, &sip_offer, &model, &browser_codecs, &answer)
    }

    /// Answers the pending SIP re-offer without the browser (it did not answer, or cannot:
    /// a sylkRTC-1 client): the browser's media stays as it is; the SIP side follows the
    /// offer's directions, addresses and keys; streams the browser lacks are refused.
    pub fn answer_sip_reoffer_locally(&mut self, now: Instant) -> Result<String, BridgeError> {
        let Some(Renegotiation::FromSip { sip_offer, .. }) = self.renegotiation.take() else {
            return Err(BridgeError::WrongState("no SIP re-offer is pending"));
        };
        if let Some(leg) = self.webrtc.as_mut() {
            leg.cancel_reoffer();
        }
        self.local_sip_answer(now, &sip_offer)
    }

    /// Our SIP answer to `offer` with the browser's current media.
    fn local_sip_answer(
        &mut self,
        now: Instant,
        offer: &SessionDescription,
    ) -> Result<String, BridgeError> {
        let Some(agreed) = self.agreed.as_ref() else {
            return Err(BridgeError::WrongState("no agreed media"));
        };
        let pairs = agreed.pairs.clone();
        let mut offer = offer.clone();
        Self::restrict_media(&self.config, &mut offer);
        let mut covered = [false; 2];
        let mut model = SessionDescription {
            attributes: Vec::new(),
            ..offer.clone()
        };
        model.media = offer
            .media
            .iter()
            .map(|m| {
                let kind = MediaKind::from_sdp(&m.kind)
                    .filter(|k| m.port != 0 && !covered[k.index()] && has_media_codec(&pairs, *k));
                let Some(kind) = kind else {
                    return placeholder(m.kind.clone(), WEBRTC_PROFILE, &m.formats);
                };
                covered[kind.index()] = true;
                let codecs = browser_side(&pairs, kind);
                let mut line = MediaSection::new(
                    kind.to_sdp(),
                    9,
                    WEBRTC_PROFILE,
                    codecs.iter().map(|c| c.payload_type.to_string()).collect(),
                );
                for c in &codecs {
                    c.to_sdp().push_format_attributes(&mut line.attributes);
                }
                line.attributes
                    .push(Attribute::flag(self.browser_direction(kind).as_str()));
                line
            })
            .collect();
        let browser_codecs: Vec<CodecSpec> = pairs.iter().map(|(w, _)| w.clone()).collect();
        let browser = model.clone();
        self.answer_with_browser(now, &offer, &model, &browser_codecs, &browser)
    }

    /// Our SIP answer to `offer` from the browser's side of it (`model`: its lines in the
    /// offer's order; `browser_codecs`: its codecs with its payload types), applied to both
    /// legs and recorded; `webrtc_remote` gives the browser's directions from now on.
    fn answer_with_browser(
        &mut self,
        now: Instant,
        offer: &SessionDescription,
        model: &SessionDescription,
        browser_codecs: &[CodecSpec],
        webrtc_remote: &SessionDescription,
    ) -> Result<String, BridgeError> {
        let local = self.sip_reanswer_local_media(offer);
        let sip_answer = webrtc_answer_to_sip_answer(model, offer, &local, &mut self.origin)
            .map_err(sdp_error(MediaLeg::Webrtc))?;
        let agreed = sip_offer_answered(offer, &sip_answer).map_err(sdp_error(MediaLeg::Sip))?;
        let mut pairs = Vec::new();
        for kind in MediaKind::ALL {
            let Some(n) = line_of(&agreed, kind) else {
                continue;
            };
            let browser: Vec<CodecSpec> = browser_codecs
                .iter()
                .filter(|c| c.kind == kind)
                .cloned()
                .collect();
            let sip: Vec<CodecSpec> = n
                .codecs
                .iter()
                .map(|c| CodecSpec::from_sdp(kind, c))
                .collect();
            let kind_pairs = pair_codecs(&browser, &sip);
            if has_media_codec(&kind_pairs, kind) {
                pairs.extend(kind_pairs);
            }
        }
        self.apply_agreement(now, &agreed, &pairs, directions_of(webrtc_remote))?;
        let text = sip_answer.to_sdp_string();
        self.record_agreed(
            sip_answer,
            offer.clone(),
            directions_of(webrtc_remote),
            &pairs,
        );
        self.drain_webrtc(now);
        Ok(text)
    }

    /// Our ports and keys for answering a SIP re-offer: on an `RTP/SAVP` line our key in
    /// force when the peer offers its suite (the answer writer takes the first key of the
    /// suite the peer chose), fresh keys for the suites it offers otherwise.
    fn sip_reanswer_local_media(&mut self, offer: &SessionDescription) -> SipLocalMedia {
        let mut local = Self::sip_local_media(&self.config, &mut self.rng, offer);
        for (m, line) in offer.media.iter().zip(local.lines.iter_mut()) {
            let Some(kind) = MediaKind::from_sdp(&m.kind) else {
                continue;
            };
            let ours = self.fwd.sip[kind.index()]
                .as_ref()
                .and_then(|s| s.keys.as_ref())
                .map(|(ours, _)| ours.clone());
            let peer_suite = m.cryptos().first().map(|c| c.suite);
            if let (Some(ours), Some(suite)) = (ours, peer_suite) {
                if ours.suite == suite {
                    line.cryptos.insert(0, ours);
                } else if line.cryptos.iter().all(|c| c.suite != suite) {
                    if let Some(k) = fresh_crypto(&mut self.rng, 1, suite) {
                        line.cryptos.push(k);
                    }
                }
            }
        }
        local
    }

    /// Forgets the renegotiation under way (the other side refused it, or it timed out):
    /// the call stays on its previous media.
    pub fn cancel_renegotiation(&mut self) {
        if self.renegotiation.take().is_some() {
            if let Some(leg) = self.webrtc.as_mut() {
                leg.cancel_reoffer();
            }
        }
    }

    /// Another answer to our current SIP offer: an early dialog of another fork with SDP,
    /// or a 2xx whose answer differs from the early one applied (RFC 3261 section 13.2.1,
    /// forking). The SIP side moves to it (address, keys, payload types) within the codecs
    /// the browser already has; the browser sees nothing.
    pub fn apply_other_sip_answer(
        &mut self,
        now: Instant,
        sip_answer_sdp: &str,
    ) -> Result<(), BridgeError> {
        if !matches!(self.negotiation, Negotiation::Active) {
            return Err(BridgeError::WrongState("no agreed media"));
        }
        let Some(agreed) = self.agreed.as_ref() else {
            return Err(BridgeError::WrongState("no agreed media"));
        };
        let sip_offer = agreed.sip_local.clone();
        let directions = agreed.browser_directions;
        let current = agreed.pairs.clone();
        let answer = SessionDescription::parse(sip_answer_sdp.as_bytes())
            .map_err(sdp_error(MediaLeg::Sip))?;
        let negotiated =
            sip_answer_to_negotiated(&sip_offer, &answer).map_err(sdp_error(MediaLeg::Sip))?;
        let mut pairs = Vec::new();
        for kind in MediaKind::ALL {
            let Some(n) = line_of(&negotiated, kind) else {
                continue;
            };
            let browser = browser_side(&current, kind);
            let sip: Vec<CodecSpec> = n
                .codecs
                .iter()
                .map(|c| CodecSpec::from_sdp(kind, c))
                .collect();
            let kind_pairs = pair_codecs(&browser, &sip);
            if has_media_codec(&kind_pairs, kind) {
                pairs.extend(kind_pairs);
            }
        }
        self.check_agreement(&negotiated, &pairs)?;
        self.apply_agreement(now, &negotiated, &pairs, directions)?;
        self.record_agreed(sip_offer, answer, directions, &pairs);
        Ok(())
    }

    /// Fails (changing nothing) when [`Bridge::apply_agreement`] would.
    fn check_agreement(
        &self,
        negotiated: &NegotiatedSession,
        pairs: &[(CodecSpec, CodecSpec)],
    ) -> Result<(), BridgeError> {
        let mut any = false;
        for kind in MediaKind::ALL {
            if let (Some(line), true) = (line_of(negotiated, kind), has_media_codec(pairs, kind)) {
                super::sdes::sdes_context(line)?;
                any = true;
            }
        }
        if any {
            Ok(())
        } else {
            Err(BridgeError::NoCommonCodec)
        }
    }

    /// The direction of each line of our answer to the browser: what the SIP side agreed
    /// for its kind (relayed as it is, RFC 3264 section 6.1 on the SIP side already).
    fn browser_directions(
        &self,
        answer: &SessionDescription,
        negotiated: &NegotiatedSession,
    ) -> Vec<MediaDirection> {
        answer
            .media
            .iter()
            .map(|m| {
                MediaKind::from_sdp(&m.kind)
                    .and_then(|k| line_of(negotiated, k))
                    .map_or(MediaDirection::Inactive, |n| n.direction)
            })
            .collect()
    }
}

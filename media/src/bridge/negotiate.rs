//! SDP negotiation in the four directions of the bridge's call flows (see the module docs
//! of [`crate::bridge`]), SDES retry included: what goes in is one side's SDP, what comes
//! out the other side's, and the legs are installed once both sides agreed.

use std::time::Instant;

use engine::Rng;

use super::codecs::{agreed_codecs, codec_kind, has_media_codec, pair_codecs, payload_maps};
use super::sdes::{fresh_crypto, offer_every_key, sdes_context, sdes_offer_cryptos};
use super::session::directions_of;
use super::{Bridge, BridgeConfig, MediaLeg, Negotiation};
use crate::error::BridgeError;
use crate::rtp_leg::RtpRemote;
use crate::sdp::{
    finalize_browser_sdp, sip_answer_to_negotiated, sip_offer_answered, sip_offer_to_negotiated,
    webrtc_answer_to_sip_answer, webrtc_offer_to_sip_offer, Attribute, Codec, MediaDirection,
    MediaSection, NegotiatedMedia, NegotiatedSession, SdpError, SessionDescription, SipLocalMedia,
    SipLocalMediaLine,
};
use crate::webrtc_leg::{CodecSpec, WebrtcLeg};
use crate::MediaKind;

impl Bridge {
    /// The codecs this call may forward, in `media::sdp` form (its defaults, restricted to
    /// [`BridgeConfig::codecs`]).
    pub(super) fn supported_codecs(config: &BridgeConfig) -> Vec<Codec> {
        SipLocalMedia::default_codecs()
            .into_iter()
            .filter(|c| {
                config
                    .codecs
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(&c.name))
            })
            .collect()
    }

    /// Keep the first audio and the first video m-line the bridge has a socket for; set every
    /// other m-line's port to 0 so the translation rejects it (RFC 3264 sec. 6).
    pub(super) fn restrict_media(config: &BridgeConfig, sdp: &mut SessionDescription) {
        let mut taken = [false; 2];
        for m in &mut sdp.media {
            let usable = match MediaKind::from_sdp(&m.kind) {
                Some(kind) => {
                    let has_socket = kind == MediaKind::Audio || config.sip_video_local.is_some();
                    let first = !taken[kind.index()];
                    if has_socket && first && m.port != 0 {
                        taken[kind.index()] = true;
                        true
                    } else {
                        false
                    }
                }
                None => false,
            };
            if !usable {
                m.port = 0;
            }
        }
    }

    pub(super) fn sip_local_media(
        config: &BridgeConfig,
        rng: &mut Rng,
        sdp: &SessionDescription,
    ) -> SipLocalMedia {
        SipLocalMedia {
            address: config.sip_ip(),
            rtcp_mux: false,
            lines: sdp
                .media
                .iter()
                .map(|m| SipLocalMediaLine {
                    rtp_port: MediaKind::from_sdp(&m.kind)
                        .and_then(|k| config.sip_local(k))
                        .map_or(0, |a| a.port()),
                    // A SIP peer offering RTP/SAVP (RFC 4568 SDES) gets our own fresh key for
                    // each suite it offers; the answer writer picks the one matching its
                    // first usable crypto line.
                    cryptos: if m.is_sdes_srtp() {
                        m.cryptos()
                            .iter()
                            .filter_map(|offered| fresh_crypto(rng, offered.tag, offered.suite))
                            .collect()
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
            codecs: Self::supported_codecs(config),
        }
    }

    /// What we put into a SIP offer we write ourselves: our ports and, with `sdes`, a fresh
    /// set of [`SDES_OFFER_SUITES`] keys per m-line, which makes the offer `RTP/SAVP`
    /// (RFC 4568 section 5.1: every key is new, never reused across offers or m-lines).
    pub(super) fn sip_offer_local_media(
        config: &BridgeConfig,
        rng: &mut Rng,
        sdp: &SessionDescription,
        sdes: bool,
    ) -> Result<SipLocalMedia, BridgeError> {
        let mut local = Self::sip_local_media(config, rng, sdp);
        if sdes {
            for line in &mut local.lines {
                line.cryptos = sdes_offer_cryptos(rng)?;
            }
        }
        Ok(local)
    }

    /// Outgoing call, step 1: the browser's offer in, the SIP offer (for the INVITE) out,
    /// translated by [`crate::sdp::webrtc_offer_to_sip_offer`]: plain `RTP/AVP`, or
    /// `RTP/SAVP` with SDES keys when [`BridgeConfig::sip_offer_sdes`] is set.
    ///
    /// The WebRTC leg itself is built in [`Bridge::apply_sip_answer`], once the SIP side has
    /// said which codecs it takes: `rtc` answers with the codecs registered in its media
    /// engine, and the browser must not be offered anything SIP cannot receive.
    /// Remote candidates may be added in between; they are kept until then.
    pub fn new_answerer(
        now: Instant,
        config: BridgeConfig,
        webrtc_offer_sdp: &str,
    ) -> Result<(Self, String), BridgeError> {
        let webrtc_offer = SessionDescription::parse(webrtc_offer_sdp.as_bytes())
            .map_err(sdp_error(MediaLeg::Webrtc))?;
        // A browser offer that cannot connect is refused before anything is dialled.
        webrtc_offer
            .check_webrtc_transport()
            .map_err(sdp_error(MediaLeg::Webrtc))?;
        let mut webrtc_model = webrtc_offer.clone();
        Self::restrict_media(&config, &mut webrtc_model);
        let mut bridge = Self::empty(now, config, Negotiation::Closed);
        let local = Self::sip_offer_local_media(
            &bridge.config,
            &mut bridge.rng,
            &webrtc_model,
            bridge.config.sip_offer_sdes,
        )?;
        let sip_offer = webrtc_offer_to_sip_offer(&webrtc_model, &local, &mut bridge.origin)
            .map_err(sdp_error(MediaLeg::Webrtc))?;
        let sdp = sip_offer.to_sdp_string();
        bridge.negotiation = Negotiation::AwaitingSipAnswer {
            webrtc_offer: Box::new(webrtc_offer),
            webrtc_model: Box::new(webrtc_model),
            sip_offer: Box::new(sip_offer),
            pending_candidates: Vec::new(),
            sdes_retry: None,
        };
        Ok((bridge, sdp))
    }

    /// Outgoing call, for a SIP peer that may insist on SRTP: the `RTP/SAVP` + SDES
    /// (RFC 4568) version of the plain offer [`Bridge::new_answerer`] returned, with fresh
    /// keys, for a new INVITE should the first be refused with 488 Not Acceptable Here
    /// (RFC 3261 section 21.4.26). The bridge keeps it aside and goes on expecting the answer
    /// to the first offer until [`Bridge::use_sdes_retry`].
    ///
    /// Only an answerer still awaiting the SIP answer can do this
    /// ([`BridgeError::WrongState`] otherwise, nothing changed).
    pub fn prepare_sdes_retry(&mut self) -> Result<String, BridgeError> {
        let Negotiation::AwaitingSipAnswer { webrtc_model, .. } = &self.negotiation else {
            return Err(BridgeError::WrongState(
                "prepare_sdes_retry needs an answerer awaiting the SIP answer",
            ));
        };
        let local = Self::sip_offer_local_media(&self.config, &mut self.rng, webrtc_model, true)?;
        let retry = webrtc_offer_to_sip_offer(webrtc_model, &local, &mut self.origin)
            .map_err(sdp_error(MediaLeg::Webrtc))?;
        let sdp = retry.to_sdp_string();
        if let Negotiation::AwaitingSipAnswer { sdes_retry, .. } = &mut self.negotiation {
            *sdes_retry = Some(Box::new(retry));
        }
        Ok(sdp)
    }

    /// The INVITE went out again with the offer of [`Bridge::prepare_sdes_retry`]: the SIP
    /// answer to come answers that offer, so its keys are the ones
    /// [`Bridge::apply_sip_answer`] must find. [`BridgeError::WrongState`] (nothing changed)
    /// without a prepared retry or once an answer was applied.
    pub fn use_sdes_retry(&mut self) -> Result<(), BridgeError> {
        let Negotiation::AwaitingSipAnswer {
            sip_offer,
            sdes_retry,
            ..
        } = &mut self.negotiation
        else {
            return Err(BridgeError::WrongState(
                "use_sdes_retry needs an answerer awaiting the SIP answer",
            ));
        };
        let retry = sdes_retry.take().ok_or(BridgeError::WrongState(
            "use_sdes_retry without prepare_sdes_retry",
        ))?;
        *sip_offer = retry;
        Ok(())
    }

    /// Outgoing call, step 2: the SIP answer (200 OK) in, the WebRTC answer (sylkRTC
    /// `accepted`) out. The WebRTC answer carries the host candidate, explicit directions and
    /// `a=end-of-candidates`.
    ///
    /// Calling it in the wrong state is [`BridgeError::WrongState`] and changes nothing; any
    /// other error ends the negotiation (the call cannot go on: tear it down).
    pub fn apply_sip_answer(
        &mut self,
        now: Instant,
        sip_answer_sdp: &str,
    ) -> Result<String, BridgeError> {
        let (webrtc_offer, webrtc_model, sip_offer, pending_candidates) = self.take_negotiation(
            "apply_sip_answer needs an answerer awaiting the SIP answer",
            |state| match state {
                Negotiation::AwaitingSipAnswer {
                    webrtc_offer,
                    webrtc_model,
                    sip_offer,
                    pending_candidates,
                    ..
                } => Ok((webrtc_offer, webrtc_model, sip_offer, pending_candidates)),
                other => Err(other),
            },
        )?;
        let answer_model = SessionDescription::parse(sip_answer_sdp.as_bytes())
            .map_err(sdp_error(MediaLeg::Sip))?;
        let negotiated = sip_answer_to_negotiated(&sip_offer, &answer_model)
            .map_err(sdp_error(MediaLeg::Sip))?;
        let mut pairs = Vec::new();
        for (i, n) in negotiated.media.iter().enumerate() {
            let (Some(kind), Some(browser)) =
                (MediaKind::from_sdp(&n.kind), webrtc_model.media.get(i))
            else {
                continue;
            };
            if n.rejected {
                continue;
            }
            let offered: Vec<CodecSpec> = browser
                .codecs()
                .iter()
                .map(|c| CodecSpec::from_sdp(kind, c))
                .collect();
            // With our RTP/SAVP offer, the answer named one of our crypto lines: we encrypt
            // with our key of that tag and suite, decrypt with the peer's (RFC 4568 6.1).
            pairs.extend(self.install_line(now, n, &n.codecs, &offered, Some(n))?);
        }
        if pairs.is_empty() {
            return Err(BridgeError::NoCommonCodec);
        }
        let webrtc_codecs: Vec<CodecSpec> = pairs.iter().map(|(w, _)| w.clone()).collect();
        let (leg, answer) = WebrtcLeg::answer(
            now,
            &self.config.webrtc,
            self.rng.fork(),
            self.clock,
            &webrtc_offer,
            &webrtc_codecs,
        )?;
        let leg = self.webrtc.insert(Box::new(leg));
        for candidate in pending_candidates {
            if let Err(e) = leg.add_remote_candidate(&candidate) {
                log::debug!("buffered remote candidate refused: {e}");
            }
        }
        self.start_media(now, &pairs);
        self.browser_offered = offered_codecs(&webrtc_offer);
        self.record_agreed(
            *sip_offer,
            answer_model,
            directions_of(&webrtc_offer),
            &pairs,
        );
        Ok(finalize_for_browser(answer, &negotiated))
    }

    /// Takes the negotiation state `extract` accepts, leaving `Closed` behind: an error past
    /// this point ends the negotiation. In any other state nothing changes and the call is
    /// [`BridgeError::WrongState`] (`why`).
    fn take_negotiation<T>(
        &mut self,
        why: &'static str,
        extract: impl FnOnce(Negotiation) -> Result<T, Negotiation>,
    ) -> Result<T, BridgeError> {
        match extract(std::mem::replace(
            &mut self.negotiation,
            Negotiation::Closed,
        )) {
            Ok(taken) => Ok(taken),
            Err(state) => {
                self.negotiation = state;
                Err(BridgeError::WrongState(why))
            }
        }
    }

    /// Both sides agreed on `pairs` and the WebRTC leg exists: the browser-side streams get
    /// the leg's SSRCs, packets may flow.
    fn start_media(&mut self, now: Instant, pairs: &[(CodecSpec, CodecSpec)]) {
        let ssrcs = MediaKind::ALL.map(|k| self.webrtc.as_ref().and_then(|e| e.local_ssrc(k)));
        self.install_webrtc_streams(pairs, |kind| ssrcs[kind.index()]);
        self.fwd.to_sip = payload_maps(pairs).0;
        self.negotiation = Negotiation::Active;
        self.drain_webrtc(now);
    }

    /// One agreed SIP m-line: its codecs (`agreed`, SIP payload types) paired with the
    /// browser's (`webrtc`). When a media codec is among the pairs, the line's RTP leg is
    /// installed, SDES-keyed from `keys` (RFC 4568 section 6.1), and the pairs are returned;
    /// otherwise nothing is installed and none are.
    fn install_line(
        &mut self,
        now: Instant,
        line: &NegotiatedMedia,
        agreed: &[Codec],
        webrtc: &[CodecSpec],
        keys: Option<&NegotiatedMedia>,
    ) -> Result<Vec<(CodecSpec, CodecSpec)>, BridgeError> {
        let Some(kind) = MediaKind::from_sdp(&line.kind) else {
            return Ok(Vec::new());
        };
        let sip: Vec<CodecSpec> = agreed
            .iter()
            .map(|c| CodecSpec::from_sdp(kind, c))
            .collect();
        let pairs = pair_codecs(webrtc, &sip);
        if !has_media_codec(&pairs, kind) {
            return Ok(Vec::new());
        }
        let (srtp, key_pair) = match keys {
            Some(k) => (
                sdes_context(k)?,
                k.local_crypto.clone().zip(k.remote_crypto.clone()),
            ),
            None => (None, None),
        };
        self.install_sip_stream(now, kind, line, &pairs, srtp, key_pair);
        Ok(pairs)
    }

    /// Incoming call without SDP in the INVITE (late offer, RFC 3261 sec. 13.2.1), step 1:
    /// the gateway offers first, in the 200 OK. Returns the SIP offer: every codec the call
    /// may forward, audio (and video with a video socket), plain RTP/AVP, or RTP/SAVP with
    /// SDES keys (RFC 4568) when [`BridgeConfig::sip_offer_sdes`] is set.
    pub fn new_late_offer(
        now: Instant,
        config: BridgeConfig,
    ) -> Result<(Self, String), BridgeError> {
        let mut bridge = Self::empty(now, config, Negotiation::Closed);
        // What we can do, written as a WebRTC-style template and translated like a browser's
        // offer, so the SIP offer comes out of the same writer as every other SIP SDP.
        let mut template =
            SessionDescription::parse(b"v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n")
                .map_err(sdp_error(MediaLeg::Sip))?;
        let supported = Self::supported_codecs(&bridge.config);
        for kind in MediaKind::ALL {
            if bridge.sip_local(kind).is_none() {
                continue;
            }
            let codecs: Vec<&Codec> = supported.iter().filter(|c| codec_kind(c) == kind).collect();
            if codecs.is_empty() {
                continue;
            }
            let mut m = MediaSection::new(
                kind.to_sdp(),
                9,
                "UDP/TLS/RTP/SAVPF",
                codecs.iter().map(|c| c.payload_type.to_string()).collect(),
            );
            for c in &codecs {
                c.push_format_attributes(&mut m.attributes);
            }
            m.attributes
                .push(Attribute::flag(MediaDirection::SendRecv.as_str()));
            template.media.push(m);
        }
        let local = Self::sip_offer_local_media(
            &bridge.config,
            &mut bridge.rng,
            &template,
            bridge.config.sip_offer_sdes,
        )?;
        let sip_offer = webrtc_offer_to_sip_offer(&template, &local, &mut bridge.origin)
            .map_err(sdp_error(MediaLeg::Sip))?;
        let sdp = sip_offer.to_sdp_string();
        bridge.negotiation = Negotiation::AwaitingLateSipAnswer {
            sip_offer: Box::new(sip_offer),
        };
        Ok((bridge, sdp))
    }

    /// Late offer, step 2: the SIP answer (from the ACK) in, the WebRTC offer for the browser
    /// out, with the codecs the SIP side kept and its payload types.
    ///
    /// Calling it in the wrong state is [`BridgeError::WrongState`] and changes nothing; any
    /// other error ends the negotiation (the call cannot go on: tear it down).
    pub fn apply_late_sip_answer(
        &mut self,
        now: Instant,
        sip_answer_sdp: &str,
    ) -> Result<String, BridgeError> {
        let sip_offer = self.take_negotiation(
            "apply_late_sip_answer needs a late-offer bridge awaiting the SIP answer",
            |state| match state {
                Negotiation::AwaitingLateSipAnswer { sip_offer } => Ok(sip_offer),
                other => Err(other),
            },
        )?;
        let answer = SessionDescription::parse(sip_answer_sdp.as_bytes())
            .map_err(sdp_error(MediaLeg::Sip))?;
        let negotiated =
            sip_answer_to_negotiated(&sip_offer, &answer).map_err(sdp_error(MediaLeg::Sip))?;
        let codecs = agreed_codecs(&negotiated)?;
        let (leg, offer) = WebrtcLeg::offer(
            now,
            &self.config.webrtc,
            self.rng.fork(),
            self.clock,
            &codecs,
        )?;
        self.webrtc = Some(Box::new(leg));
        let offer = finalize_for_browser(offer, &negotiated);
        self.negotiation = Negotiation::AwaitingLateWebrtcAnswer {
            negotiated,
            sip: Box::new((*sip_offer, answer)),
        };
        self.drain_webrtc(now);
        Ok(offer)
    }

    /// Incoming INVITE without SDP, as the gateway runs it: the browser must see an offer
    /// before the user answers, so the bridge offers the browser what it can do, the
    /// browser's answer becomes our offer in the 200 OK, and the SIP peer's answer arrives in
    /// the ACK. This step is the last one: `our_offer_sdp` is what went out in the 200 (the
    /// result of [`Bridge::apply_webrtc_answer_as_offer`]), `sip_answer_sdp` the ACK's body.
    /// It points the SIP legs at the addresses the answer names (RFC 3264 section 6) and,
    /// when our offer was `RTP/SAVP`, keys them with our key for the crypto tag the answer
    /// picked and the peer's key (RFC 4568 section 6.1). An answer that drops to `RTP/AVP`
    /// or names a tag or suite we did not offer is an error and changes nothing.
    ///
    /// Create the bridge for this flow with [`Bridge::new_offerer`] on the SDP that
    /// [`Bridge::capabilities_offer`] returns.
    pub fn apply_sip_answer_to_our_offer(
        &mut self,
        now: Instant,
        our_offer_sdp: &str,
        sip_answer_sdp: &str,
    ) -> Result<(), BridgeError> {
        let offer = SessionDescription::parse(our_offer_sdp.as_bytes())
            .map_err(sdp_error(MediaLeg::Sip))?;
        let answer = SessionDescription::parse(sip_answer_sdp.as_bytes())
            .map_err(sdp_error(MediaLeg::Sip))?;
        let negotiated =
            sip_answer_to_negotiated(&offer, &answer).map_err(sdp_error(MediaLeg::Sip))?;
        let mut updates = Vec::with_capacity(negotiated.media.len());
        for n in negotiated.media.iter().filter(|n| !n.rejected) {
            let Some(kind) = MediaKind::from_sdp(&n.kind) else {
                continue;
            };
            let Some(remote) = RtpRemote::from_negotiated(n) else {
                continue;
            };
            updates.push((kind, remote, sdes_context(n)?));
        }
        for (kind, remote, srtp) in updates {
            if let Some(stream) = self.fwd.sip[kind.index()].as_mut() {
                stream.leg.set_srtp(srtp);
                stream.leg.set_remote(now, remote);
                if let Some(n) = negotiated
                    .media
                    .iter()
                    .find(|n| !n.rejected && MediaKind::from_sdp(&n.kind) == Some(kind))
                {
                    stream.keys = n.local_crypto.clone().zip(n.remote_crypto.clone());
                }
            }
        }
        if let Some(agreed) = self.agreed.as_mut() {
            agreed.sip_local = offer;
            agreed.sip_remote = super::session::media_digest(&answer);
        }
        Ok(())
    }

    /// What the gateway can do, as a SIP-style offer whose media address is the discard
    /// port (RFC 863) of `config`'s SIP address: fed to [`Bridge::new_offerer`] for an
    /// INVITE without SDP, it yields the browser's offer, while nothing real is sent toward
    /// SIP until [`Bridge::apply_sip_answer_to_our_offer`] names the peer's address.
    ///
    /// `config` is the one the bridge of [`Bridge::new_offerer`] gets next; its random source
    /// is forked here, so that bridge draws no key or credential this offer used.
    pub fn capabilities_offer(
        now: Instant,
        config: &mut BridgeConfig,
    ) -> Result<String, BridgeError> {
        let mut probe = config.clone();
        probe.rng = config.rng.fork();
        let (_, sdp) = Self::new_late_offer(now, probe)?;
        let mut model =
            SessionDescription::parse(sdp.as_bytes()).map_err(sdp_error(MediaLeg::Sip))?;
        for m in &mut model.media {
            if m.port != 0 {
                m.port = 9;
            }
        }
        Ok(model.to_sdp_string())
    }

    /// Late offer, step 3: the browser's answer in; both legs are then set up (the SIP side
    /// already has its final SDP, so nothing goes back to SIP).
    ///
    /// Calling it in the wrong state is [`BridgeError::WrongState`] and changes nothing; any
    /// other error ends the negotiation (the call cannot go on: tear it down).
    pub fn apply_late_webrtc_answer(
        &mut self,
        now: Instant,
        webrtc_answer_sdp: &str,
    ) -> Result<(), BridgeError> {
        let (negotiated, sip) = self.take_negotiation(
            "apply_late_webrtc_answer needs a late-offer bridge awaiting the browser",
            |state| match state {
                Negotiation::AwaitingLateWebrtcAnswer { negotiated, sip } => Ok((negotiated, sip)),
                other => Err(other),
            },
        )?;
        let webrtc_answer = SessionDescription::parse(webrtc_answer_sdp.as_bytes())
            .map_err(sdp_error(MediaLeg::Webrtc))?;
        let Some(engine) = self.webrtc.as_mut() else {
            return Err(BridgeError::WrongState("late offer without WebRTC leg"));
        };
        engine.apply_remote_answer(now, &webrtc_answer)?;
        let browser_codecs = engine.negotiated_codecs();
        let mut pairs = Vec::new();
        for n in negotiated.media.iter().filter(|n| !n.rejected) {
            let Some(kind) = MediaKind::from_sdp(&n.kind) else {
                continue;
            };
            if self.fwd.sip[kind.index()].is_some() {
                continue;
            }
            // Our RTP/SAVP offer's key for the tag the answer picked, and the peer's.
            pairs.extend(self.install_line(now, n, &n.codecs, &browser_codecs, Some(n))?);
        }
        if pairs.is_empty() {
            return Err(BridgeError::NoCommonCodec);
        }
        self.start_media(now, &pairs);
        let (sip_offer, sip_answer) = *sip;
        self.record_agreed(sip_offer, sip_answer, directions_of(&webrtc_answer), &pairs);
        Ok(())
    }

    /// Incoming call, step 1: the SIP offer (INVITE) in, the WebRTC offer for the browser out
    /// (explicit directions, host candidate, `a=end-of-candidates`). The browser is offered
    /// the SIP side's codecs with the SIP payload types, so PTs usually match 1:1.
    pub fn new_offerer(
        now: Instant,
        config: BridgeConfig,
        sip_offer_sdp: &str,
    ) -> Result<(Self, String), BridgeError> {
        let mut sip_offer = SessionDescription::parse(sip_offer_sdp.as_bytes())
            .map_err(sdp_error(MediaLeg::Sip))?;
        Self::restrict_media(&config, &mut sip_offer);
        let negotiated = sip_offer_to_negotiated(&sip_offer, &Self::supported_codecs(&config))
            .map_err(sdp_error(MediaLeg::Sip))?;
        let codecs = agreed_codecs(&negotiated)?;
        let mut bridge = Self::empty(
            now,
            config,
            Negotiation::AwaitingWebrtcAnswer {
                sip_offer: Box::new(sip_offer),
            },
        );
        let (leg, offer) = WebrtcLeg::offer(
            now,
            &bridge.config.webrtc,
            bridge.rng.fork(),
            bridge.clock,
            &codecs,
        )?;
        bridge.webrtc = Some(Box::new(leg));
        bridge.drain_webrtc(now);
        Ok((bridge, finalize_for_browser(offer, &negotiated)))
    }

    /// Incoming call, step 2: the browser's answer in, the SIP answer (200 OK) out,
    /// translated by [`crate::sdp::webrtc_answer_to_sip_answer`].
    ///
    /// Calling it in the wrong state is [`BridgeError::WrongState`] and changes nothing; any
    /// other error ends the negotiation (the call cannot go on: tear it down).
    pub fn apply_webrtc_answer(
        &mut self,
        now: Instant,
        webrtc_answer_sdp: &str,
    ) -> Result<String, BridgeError> {
        self.webrtc_answer_to_sip(now, webrtc_answer_sdp, false)
    }

    /// [`Bridge::apply_webrtc_answer`] for an INVITE without SDP, where what it returns is
    /// not an answer but our offer in the 200 OK (created on [`Bridge::capabilities_offer`]):
    /// identical for plain RTP, and for `RTP/SAVP` it carries a fresh key for every suite of
    /// the capabilities offer instead of the single line an answer has (RFC 4568 section
    /// 5.1), so the peer may pick any. The SIP leg is re-keyed from the ACK's answer by
    /// [`Bridge::apply_sip_answer_to_our_offer`].
    pub fn apply_webrtc_answer_as_offer(
        &mut self,
        now: Instant,
        webrtc_answer_sdp: &str,
    ) -> Result<String, BridgeError> {
        self.webrtc_answer_to_sip(now, webrtc_answer_sdp, true)
    }

    pub(super) fn webrtc_answer_to_sip(
        &mut self,
        now: Instant,
        webrtc_answer_sdp: &str,
        as_offer: bool,
    ) -> Result<String, BridgeError> {
        let sip_offer = self.take_negotiation(
            "apply_webrtc_answer needs an offerer awaiting the answer",
            |state| match state {
                Negotiation::AwaitingWebrtcAnswer { sip_offer } => Ok(sip_offer),
                other => Err(other),
            },
        )?;
        let webrtc_answer = SessionDescription::parse(webrtc_answer_sdp.as_bytes())
            .map_err(sdp_error(MediaLeg::Webrtc))?;
        let Some(engine) = self.webrtc.as_mut() else {
            return Err(BridgeError::WrongState("offerer without WebRTC leg"));
        };
        engine.apply_remote_answer(now, &webrtc_answer)?;
        let browser_codecs = engine.negotiated_codecs();
        let local = Self::sip_local_media(&self.config, &mut self.rng, &sip_offer);
        let sip_answer =
            webrtc_answer_to_sip_answer(&webrtc_answer, &sip_offer, &local, &mut self.origin)
                .map_err(sdp_error(MediaLeg::Webrtc))?;
        // What the SIP side now has agreed to, seen from our side of the answer.
        let negotiated =
            sip_offer_to_negotiated(&sip_offer, &local.codecs).map_err(sdp_error(MediaLeg::Sip))?;
        // The SDES keys both sides settled on (ours from the answer, the peer's from its
        // offer), per m-line.
        let keys = sip_offer_answered(&sip_offer, &sip_answer).map_err(sdp_error(MediaLeg::Sip))?;
        let mut sip_answer = sip_answer;
        if as_offer {
            offer_every_key(&mut sip_answer, &local);
        }
        let mut pairs = Vec::new();
        for (i, n) in negotiated.media.iter().enumerate() {
            let Some(answered) = sip_answer.media.get(i).filter(|m| m.port != 0) else {
                continue;
            };
            if n.rejected {
                continue;
            }
            // The codecs of our SIP answer (browser's choice, SIP numbers) drive the maps.
            let agreed = answered.codecs();
            pairs.extend(self.install_line(now, n, &agreed, &browser_codecs, keys.media.get(i))?);
        }
        if pairs.is_empty() {
            return Err(BridgeError::NoCommonCodec);
        }
        self.start_media(now, &pairs);
        let text = sip_answer.to_sdp_string();
        self.record_agreed(
            sip_answer,
            *sip_offer,
            directions_of(&webrtc_answer),
            &pairs,
        );
        Ok(text)
    }
}

/// The WebRTC leg's SDP for the browser with explicit per-m-line directions taken from the
/// SIP side and `a=end-of-candidates` ([`crate::sdp::finalize_browser_sdp`]); sylkrtc.js
/// relies on both.
pub(super) fn finalize_for_browser(
    mut sdp: SessionDescription,
    negotiated: &NegotiatedSession,
) -> String {
    let directions: Vec<MediaDirection> = negotiated.media.iter().map(|n| n.direction).collect();
    finalize_browser_sdp(&mut sdp, &directions);
    sdp.to_sdp_string()
}

pub(super) fn sdp_error(leg: MediaLeg) -> impl Fn(SdpError) -> BridgeError {
    move |e| match e {
        SdpError::NoCommonCodec { .. } => BridgeError::NoCommonCodec,
        other => BridgeError::Sdp { leg, error: other },
    }
}

/// Every audio and video codec of a browser offer's RTP lines (its capabilities).
pub(super) fn offered_codecs(offer: &SessionDescription) -> Vec<CodecSpec> {
    let mut codecs = Vec::new();
    for m in &offer.media {
        if let Some(kind) = MediaKind::from_sdp(&m.kind).filter(|_| m.is_rtp()) {
            codecs.extend(m.codecs().iter().map(|c| CodecSpec::from_sdp(kind, c)));
        }
    }
    codecs
}

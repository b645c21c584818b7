//! Subsequent offers and answers with the browser (RFC 8829 sections 5.2.2 and 5.3.2) over
//! the transport that is up: codecs and streams change, m-lines come and go, an ICE restart
//! (new ufrag/pwd, RFC 8445 section 9) restarts the checks, and the DTLS association stays
//! as it is, with the role it has (RFC 8842 section 5.5): a new fingerprint would need a new
//! association, which the leg does not make.

use std::time::Instant;

pub(crate) use super::description::OfferLine;
use super::description::{self, DtlsRole, RemoteTransport};
use super::ice::{ICE_PWD_LEN, ICE_UFRAG_LEN};
use super::{engine_err, OutStream, WebrtcLeg};
use crate::error::WebrtcError;
use crate::rtp::SendStats;
use crate::sdp::SessionDescription;
use crate::webrtc_leg::CodecSpec;
use crate::MediaKind;

/// One m-line of the session with the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegLine {
    /// Audio or video; `None` for what the leg never carries (data channels).
    pub kind: Option<MediaKind>,
    /// Its `a=mid`, if it has one.
    pub mid: Option<String>,
    /// In use (not rejected with port 0).
    pub active: bool,
}

impl WebrtcLeg {
    /// The m-lines of the session with the browser, in order.
    pub fn lines(&self) -> &[LegLine] {
        &self.lines
    }

    /// The lines of `sdp`, with `accepted` (indices) in use.
    pub(super) fn lines_of(sdp: &SessionDescription, accepted: &[usize]) -> Vec<LegLine> {
        sdp.media
            .iter()
            .enumerate()
            .map(|(i, m)| LegLine {
                kind: MediaKind::from_sdp(&m.kind),
                mid: m.mid().map(str::to_owned),
                active: accepted.contains(&i),
            })
            .collect()
    }

    /// The `a=setup` of a subsequent answer: the role the association has (RFC 8842
    /// section 5.5).
    fn setup_of_role(&self) -> &'static str {
        match self.dtls_role {
            Some(DtlsRole::Server) => "passive",
            _ => "active",
        }
    }

    /// Refuses a description whose fingerprint differs from the association's.
    fn same_association(&self, remote: &RemoteTransport) -> Result<(), WebrtcError> {
        let Some(current) = self.remote.as_ref() else {
            return Err(WebrtcError::WrongState("no session to renegotiate"));
        };
        let normalise = |f: &str| f.replace(':', "").to_ascii_lowercase();
        if normalise(&current.fingerprint) != normalise(&remote.fingerprint) {
            return Err(WebrtcError::WrongState(
                "a new DTLS fingerprint needs a new association, which is not supported",
            ));
        }
        Ok(())
    }

    /// The browser's subsequent offer, answered with `codecs` (what the SIP side took, with
    /// the browser's payload types): new ICE credentials restart ICE with fresh ones of
    /// ours, new candidates are added, streams follow the codecs.
    pub fn reanswer(
        &mut self,
        now: Instant,
        offer: &SessionDescription,
        codecs: &[CodecSpec],
    ) -> Result<SessionDescription, WebrtcError> {
        if codecs.is_empty() {
            return Err(WebrtcError::NoCommonCodec);
        }
        let accepted = description::accepted_offer_lines(offer, codecs);
        let remote = description::remote_transport(offer, &accepted)?;
        self.same_association(&remote)?;
        self.last_now = now;
        self.cached_deadline = None;
        let restart = self
            .remote
            .as_ref()
            .is_some_and(|r| r.ufrag != remote.ufrag || r.pwd != remote.pwd);
        if restart {
            // RFC 8445 section 9: the offerer restarted; the answerer takes new credentials
            // too, and the offerer controls again (unless it is lite).
            self.restart_ice(now, &remote, remote.ice_lite)?;
        } else {
            for c in &remote.candidates {
                if let Err(e) = self.add_candidate_line(c) {
                    log::debug!("remote candidate {c:?} skipped: {e}");
                }
            }
        }
        self.remote = Some(remote);
        self.set_codecs(codecs);
        self.update_out_streams(codecs);
        self.sdp_version += 1;
        let candidate = self.candidate_line();
        let sources = self.sources();
        let answer = description::write_answer(
            offer,
            &accepted,
            codecs,
            &self.local_transport(self.setup_of_role(), &candidate),
            &sources,
            self.session_id(),
        );
        drop(sources);
        self.lines = Self::lines_of(offer, &accepted);
        self.drain_ice(now);
        Ok(answer)
    }

    /// A subsequent offer of ours (`lines`: every m-line of the session in order, then any
    /// new one), over the same transport. Its `a=setup` names our role in the association
    /// (RFC 8842 section 5.5 allows `active`/`passive` in offers), so the browser's answer
    /// cannot pick the other and ask for a new association; [`WebrtcLeg::apply_reanswer`]
    /// takes that answer.
    pub fn reoffer(&mut self, lines: Vec<OfferLine>) -> SessionDescription {
        self.sdp_version += 1;
        let candidate = self.candidate_line();
        let mut all: Vec<CodecSpec> = Vec::new();
        for l in &lines {
            all.extend(l.codecs.iter().cloned());
        }
        // Our sources for every kind offered (a stream we may now send).
        self.update_out_streams_adding(&all);
        let sources = self.sources();
        let offer = description::write_reoffer(
            &lines,
            &self.local_transport(self.setup_of_role(), &candidate),
            &sources,
            self.session_id(),
        );
        drop(sources);
        self.pending_reoffer = Some(lines);
        offer
    }

    /// The browser's answer to [`WebrtcLeg::reoffer`]: the codecs it kept become the leg's;
    /// its DTLS role and fingerprint must be the association's.
    pub fn apply_reanswer(
        &mut self,
        now: Instant,
        answer: &SessionDescription,
    ) -> Result<(), WebrtcError> {
        let Some(lines) = self.pending_reoffer.take() else {
            return Err(WebrtcError::WrongState("no offer of ours is pending"));
        };
        let accepted: Vec<usize> = answer
            .media
            .iter()
            .enumerate()
            .take(lines.len())
            .filter(|(i, m)| {
                !m.is_port_zero() && lines.get(*i).is_some_and(|l| !l.codecs.is_empty())
            })
            .map(|(i, _)| i)
            .collect();
        let remote = description::remote_transport(answer, &accepted)?;
        self.same_association(&remote)?;
        // The browser answers the role we named with the other one. One that answers with
        // ours (rtc 0.21 always says `active`) keeps the association it has all the same:
        // it renegotiates nothing over the established transport, so the call goes on as
        // it is rather than failing on a word.
        let role = match remote.setup.as_str() {
            "active" => Some(DtlsRole::Server),
            "passive" => Some(DtlsRole::Client),
            _ => None,
        };
        if role.is_some() && role != self.dtls_role {
            log::debug!(
                "browser answered a=setup:{} to our role {:?}; keeping the association",
                remote.setup,
                self.dtls_role
            );
        }
        let mut codecs = Vec::new();
        for &i in &accepted {
            let (Some(line), Some(kind)) = (lines.get(i), lines.get(i).and_then(|l| l.kind)) else {
                continue;
            };
            let answered = SessionDescription {
                media: vec![answer.media[i].clone()],
                ..answer.clone()
            };
            codecs.extend(description::answered_codecs(
                &answered,
                &[kind],
                &line.codecs,
            ));
        }
        if codecs.is_empty() {
            return Err(WebrtcError::NoCommonCodec);
        }
        self.last_now = now;
        self.cached_deadline = None;
        if self
            .remote
            .as_ref()
            .is_some_and(|r| r.ufrag != remote.ufrag || r.pwd != remote.pwd)
        {
            // The browser took new credentials without our asking (a restart of its own).
            let controlling = self.controlling;
            self.restart_ice(now, &remote, controlling)?;
        }
        self.remote = Some(remote);
        self.set_codecs(&codecs);
        self.update_out_streams(&codecs);
        self.lines = lines
            .iter()
            .enumerate()
            .map(|(i, l)| LegLine {
                kind: l.kind,
                mid: Some(l.mid.clone()),
                active: accepted.contains(&i),
            })
            .collect();
        self.drain_ice(now);
        Ok(())
    }

    /// Forgets an offer of ours that will not be answered (the SIP side refused).
    pub fn cancel_reoffer(&mut self) {
        self.pending_reoffer = None;
    }

    /// RFC 8445 section 9: fresh credentials of ours, the remote's new ones, the checks
    /// started over with every remote candidate it gave; the DTLS association rides on.
    fn restart_ice(
        &mut self,
        now: Instant,
        remote: &RemoteTransport,
        controlling: bool,
    ) -> Result<(), WebrtcError> {
        self.local_ufrag = self.rng.token(ICE_UFRAG_LEN);
        self.local_pwd = self.rng.token(ICE_PWD_LEN);
        self.agent
            .restart(now, self.local_ufrag.clone(), self.local_pwd.clone(), true)
            .map_err(engine_err("restart ICE"))?;
        self.controlling = controlling && !self.lite;
        self.agent
            .start_connectivity_checks(
                now,
                self.controlling,
                remote.ufrag.clone(),
                remote.pwd.clone(),
            )
            .map_err(engine_err("restart ICE checks"))?;
        self.ice_failed = false;
        for c in &remote.candidates {
            if let Err(e) = self.add_candidate_line(c) {
                log::debug!("remote candidate {c:?} skipped: {e}");
            }
        }
        log::debug!("ICE restarted with new credentials");
        Ok(())
    }

    /// An outgoing stream for each kind with a media codec in `codecs` (new SSRCs for new
    /// kinds, RFC 3550 sec. 8.1), none for the others.
    fn update_out_streams(&mut self, codecs: &[CodecSpec]) {
        for kind in MediaKind::ALL {
            let wanted = codecs
                .iter()
                .any(|c| c.kind == kind && !c.is_telephone_event());
            if !wanted {
                self.out_streams[kind.index()] = None;
            }
        }
        self.update_out_streams_adding(codecs);
    }

    fn update_out_streams_adding(&mut self, codecs: &[CodecSpec]) {
        for kind in MediaKind::ALL {
            let wanted = codecs
                .iter()
                .any(|c| c.kind == kind && !c.is_telephone_event());
            if wanted && self.out_streams[kind.index()].is_none() {
                let ssrc = self.rng.next_u32().max(1);
                self.out_streams[kind.index()] = Some(OutStream {
                    ssrc,
                    stats: SendStats::default(),
                    clock_rate: 0,
                });
            }
        }
    }
}

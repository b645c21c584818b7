//! The early dialogs of an outgoing call (RFC 3261 section 12.1.2) and the reliable
//! provisional responses they send (RFC 3262).
//!
//! A forking proxy may relay provisional responses from several callees, each with its own
//! To tag and so its own early dialog. The call keeps every one (up to [`MAX_FORKS`]): the
//! latest that sent something is the dialog the usage works with (early media follows the
//! latest dialog with SDP), the others wait aside. The first 2xx confirms its own dialog
//! and every other early dialog goes (RFC 3261 section 13.2.2.4; the proxy cancels the
//! other branches). A reliable provisional (`Require: 100rel` with `RSeq`) is acknowledged
//! with PRACK in its dialog, once per RSeq (RFC 3262 section 4).

use super::outgoing::OutgoingCall;
use super::usage::sdp_of;
use super::{CallAction, SendPurpose};
use crate::dialog::Dialog;
use crate::msg::{Method, SipResponse};

/// Most early dialogs kept per call; provisional responses of further forks still report
/// progress but open no dialog.
pub const MAX_FORKS: usize = 8;

/// What the call knows of one early dialog besides the dialog itself.
#[derive(Debug, Clone, Default)]
pub(super) struct ForkState {
    /// RSeq of its last reliable provisional response (RFC 3262 section 4: a higher one is
    /// new, the same one a retransmission).
    last_rseq: Option<u32>,
    /// The last answer it gave in a provisional response.
    pub(super) sdp: Option<String>,
}

/// An early dialog waiting aside.
#[derive(Debug, Clone)]
pub(super) struct EarlyFork {
    pub(super) dialog: Dialog,
    pub(super) state: ForkState,
}

/// What a provisional response means once its early dialog is known.
pub(super) enum Provisional {
    /// Report it (and PRACK it when reliable: done).
    New,
    /// A retransmission of a reliable provisional already acknowledged: nothing to report.
    Repeated,
}

impl OutgoingCall {
    /// Makes the early dialog of `response` (by its To tag) the usage's current one,
    /// creating it when new, and acknowledges a reliable provisional with PRACK.
    pub(super) fn take_provisional(&mut self, response: &SipResponse) -> Provisional {
        let Some(tag) = response.to().tag() else {
            return Provisional::New;
        };
        self.switch_to_fork(&tag, response);
        let sdp = sdp_of(response.content_type(), response.body());
        let reliable = supports_require(response).then(|| rseq(response)).flatten();
        if let Some(seq) = reliable {
            let last = self.current_fork.last_rseq;
            if last.is_some_and(|l| seq <= l) {
                return Provisional::Repeated;
            }
            self.current_fork.last_rseq = Some(seq);
            self.send_prack(seq);
        }
        if sdp.is_some() {
            self.current_fork.sdp = sdp;
        }
        Provisional::New
    }

    /// The usage's dialog becomes the early dialog with remote tag `tag`: the current one if
    /// it is, one waiting aside, or a new one from `response`.
    fn switch_to_fork(&mut self, tag: &str, response: &SipResponse) {
        if self
            .usage
            .dialog
            .as_ref()
            .is_some_and(|d| d.key().remote_tag == tag)
        {
            return;
        }
        let aside = self
            .forks
            .iter()
            .position(|f| f.dialog.key().remote_tag == tag);
        let (dialog, state) = match aside {
            Some(i) => {
                let f = self.forks.swap_remove(i);
                (f.dialog, f.state)
            }
            None => {
                if self.forks.len() + 1 >= MAX_FORKS {
                    return;
                }
                let Some(Ok(dialog)) = self
                    .invite
                    .as_ref()
                    .map(|s| Dialog::uac(&s.request, response))
                else {
                    return;
                };
                self.usage
                    .push(CallAction::DialogCreated(dialog.key().clone()));
                (dialog, ForkState::default())
            }
        };
        if let Some(previous) = self.usage.dialog.replace(dialog) {
            let previous_state = std::mem::replace(&mut self.current_fork, state);
            self.forks.push(EarlyFork {
                dialog: previous,
                state: previous_state,
            });
        } else {
            self.current_fork = state;
        }
    }

    /// The 2xx with To tag `tag` confirms its dialog: it becomes the usage's (taken from
    /// the forks when needed); every other early dialog is forgotten. Returns the answer its
    /// early dialog gave, if any.
    pub(super) fn settle_forks(&mut self, tag: Option<&str>) -> Option<String> {
        let matches_current = self
            .usage
            .dialog
            .as_ref()
            .is_some_and(|d| Some(d.key().remote_tag.as_str()) == tag);
        if !matches_current {
            if let Some(i) = self
                .forks
                .iter()
                .position(|f| Some(f.dialog.key().remote_tag.as_str()) == tag)
            {
                let f = self.forks.swap_remove(i);
                if let Some(previous) = self.usage.dialog.replace(f.dialog) {
                    self.usage
                        .push(CallAction::DialogRemoved(previous.key().clone()));
                }
                self.current_fork = f.state;
            }
        }
        for f in std::mem::take(&mut self.forks) {
            self.usage
                .push(CallAction::DialogRemoved(f.dialog.key().clone()));
        }
        let confirmed = self
            .usage
            .dialog
            .as_ref()
            .is_some_and(|d| Some(d.key().remote_tag.as_str()) == tag);
        confirmed.then(|| self.current_fork.sdp.clone()).flatten()
    }

    /// Forgets every early dialog waiting aside (the INVITE failed or was cancelled).
    pub(super) fn drop_forks(&mut self) {
        for f in std::mem::take(&mut self.forks) {
            self.usage
                .push(CallAction::DialogRemoved(f.dialog.key().clone()));
        }
        self.current_fork = ForkState::default();
    }

    /// PRACK for the reliable provisional `rseq` of the current early dialog (RFC 3262
    /// section 7.2: `RAck: <RSeq> <INVITE CSeq> INVITE`). Its own transaction retransmits
    /// it; nothing waits for its 200.
    fn send_prack(&mut self, rseq: u32) {
        let Some(invite_cseq) = self.invite.as_ref().map(|s| s.request.cseq().seq) else {
            return;
        };
        let Some(hop) = self.usage.in_dialog_hop() else {
            return;
        };
        let Some(dialog) = self.usage.dialog.as_mut() else {
            return;
        };
        let mut prack = dialog.request(Method::Prack);
        prack
            .headers
            .push(("RAck".to_owned(), format!("{rseq} {invite_cseq} INVITE")));
        prack
            .headers
            .push(("User-Agent".to_owned(), self.usage.user_agent.clone()));
        self.usage.push(CallAction::SendRequest {
            request: prack,
            hop,
            contact_user: None,
            purpose: SendPurpose::Detached,
        });
    }
}

/// Whether a response requires reliability (`Require: 100rel`, RFC 3262 section 4).
fn supports_require(response: &SipResponse) -> bool {
    response
        .headers()
        .get_all("Require")
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("100rel"))
}

/// The `RSeq` of a reliable provisional (1 to 2^31 - 1, RFC 3262 section 7.1).
fn rseq(response: &SipResponse) -> Option<u32> {
    response
        .header("RSeq")?
        .trim()
        .parse()
        .ok()
        .filter(|n| (1..1 << 31).contains(n))
}

//! RFC 3261 section 12 dialog state: identity, CSeq spaces, remote target and route set, and
//! the construction of requests inside the dialog (sections 12.2.1.1 and 13.2.2.4).
//!
//! A dialog is pure data plus rules; it never sends anything. The call that owns it hands the
//! requests it builds to the SIP stack, which adds the Via (the transport decides it) and
//! sends them.

use std::fmt;

use super::msg::{
    Method, MsgError, NameAddr, Param, RequestBuilder, SipRequest, SipResponse, Uri, Via,
};

/// The key an incoming in-dialog request is matched by (RFC 3261 section 12.2.2): Call-ID,
/// our tag (the request's To tag) and the peer's tag (its From tag).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogKey {
    /// Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

impl DialogKey {
    /// The key of the dialog an incoming request claims to belong to; `None` without a To tag
    /// (then it is not an in-dialog request, RFC 3261 section 12.2.2).
    pub fn of_incoming(request: &SipRequest) -> Option<DialogKey> {
        Some(DialogKey {
            call_id: request.call_id().to_owned(),
            local_tag: request.to().tag()?,
            remote_tag: request.from().tag().unwrap_or_default(),
        })
    }
}

/// Why a dialog could not be created or a request could not be accepted in it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DialogError {
    /// The response that should create the dialog has no To tag.
    MissingRemoteTag,
    /// The request or response that should create the dialog has no usable Contact.
    MissingContact,
    /// A request arrived with a CSeq lower than (or equal to) the last one (section 12.2.2:
    /// answer 500).
    CSeqOutOfOrder,
    /// A message could not be built.
    Message(MsgError),
}

impl fmt::Display for DialogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DialogError::MissingRemoteTag => f.write_str("response without To tag"),
            DialogError::MissingContact => f.write_str("no Contact to use as remote target"),
            DialogError::CSeqOutOfOrder => f.write_str("CSeq out of order"),
            DialogError::Message(e) => write!(f, "cannot build message: {e}"),
        }
    }
}

impl std::error::Error for DialogError {}

impl From<MsgError> for DialogError {
    fn from(e: MsgError) -> Self {
        DialogError::Message(e)
    }
}

/// Early (after a 1xx with tag) or confirmed (after a 2xx, or the ACK on the UAS side; the
/// UAS treats it as confirmed once it sent its 2xx, section 12.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a provisional response.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
}

/// A request to send inside (or to create) a dialog, without its Via: the stack adds the Via
/// for the transport it picks, with a fresh branch, as the first header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRequest {
    /// Method.
    pub method: Method,
    /// Request-URI.
    pub uri: Uri,
    /// Header fields after Via, in order.
    pub headers: Vec<(String, String)>,
    /// Content-Type and body, if any.
    pub body: Option<(String, Vec<u8>)>,
}

impl OutgoingRequest {
    /// Builds the request with `via` on top and, when given, a Contact header.
    pub fn build(&self, via: &Via, contact: Option<&NameAddr>) -> Result<SipRequest, MsgError> {
        let mut builder = RequestBuilder::new(self.method.clone(), self.uri.clone()).via(via);
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        if let Some(contact) = contact {
            builder = builder.contact(contact);
        }
        if let Some((content_type, body)) = &self.body {
            builder = builder.body(content_type, body.clone());
        }
        builder.build()
    }

    /// The value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One dialog (RFC 3261 section 12).
#[derive(Debug, Clone)]
pub struct Dialog {
    key: DialogKey,
    state: DialogState,
    /// Our URI with our tag (From of our requests).
    local: NameAddr,
    /// The peer's URI with its tag (To of our requests).
    remote: NameAddr,
    /// Last CSeq number we used; the INVITE's for a UAC.
    local_cseq: u32,
    /// Last CSeq number the peer used, once it sent one.
    remote_cseq: Option<u32>,
    /// The peer's Contact URI (section 12.1: remote target).
    remote_target: Uri,
    /// Route set in the order our requests carry it.
    route_set: Vec<NameAddr>,
    /// True when the dialog was set up over `sips:` (section 12.1.1).
    secure: bool,
}

impl Dialog {
    /// The UAC side, from our INVITE and a 1xx (with To tag) or 2xx response (section
    /// 12.1.2): route set = Record-Route reversed, remote target = the response's Contact.
    pub fn uac(invite: &SipRequest, response: &SipResponse) -> Result<Dialog, DialogError> {
        Dialog::uac_parts(
            invite.call_id(),
            invite.from().clone(),
            invite.cseq().seq,
            is_sips(invite.uri()),
            response,
        )
    }

    /// The UAC side from what our request carried (Call-ID, From with our tag, its CSeq,
    /// whether it went to a `sips:` URI) and a dialog-creating response: for requests the
    /// stack sends without keeping their built form (an initial SUBSCRIBE, RFC 6665 section
    /// 4.1.2.1, creates its dialog like an INVITE does).
    pub fn uac_parts(
        call_id: &str,
        local: NameAddr,
        local_cseq: u32,
        secure: bool,
        response: &SipResponse,
    ) -> Result<Dialog, DialogError> {
        let remote_tag = response.to().tag().ok_or(DialogError::MissingRemoteTag)?;
        let remote_target = response
            .contacts()
            .as_slice()
            .first()
            .map(|c| c.uri.clone())
            .ok_or(DialogError::MissingContact)?;
        let state = if (200..300).contains(&response.status()) {
            DialogState::Confirmed
        } else {
            DialogState::Early
        };
        Ok(Dialog {
            key: DialogKey {
                call_id: call_id.to_owned(),
                local_tag: local.tag().unwrap_or_default(),
                remote_tag,
            },
            state,
            local,
            remote: response.to().clone(),
            local_cseq,
            remote_cseq: None,
            remote_target,
            route_set: response.record_route().iter().rev().cloned().collect(),
            secure,
        })
    }

    /// A subscriber's dialog created by a NOTIFY that overtook the 2xx of its SUBSCRIBE
    /// (RFC 6665 section 4.1.2.4): the NOTIFY is a request from the notifier, so the route
    /// set is its Record-Route in order and the remote target its Contact (RFC 3261 section
    /// 12.1.1); `local` is our From with our tag, `local_cseq` the SUBSCRIBE's CSeq.
    pub fn from_notify(
        local: NameAddr,
        local_cseq: u32,
        secure: bool,
        notify: &SipRequest,
    ) -> Result<Dialog, DialogError> {
        let remote_tag = notify.from().tag().ok_or(DialogError::MissingRemoteTag)?;
        let remote_target = notify
            .contacts()
            .as_slice()
            .first()
            .map(|c| c.uri.clone())
            .ok_or(DialogError::MissingContact)?;
        Ok(Dialog {
            key: DialogKey {
                call_id: notify.call_id().to_owned(),
                local_tag: local.tag().unwrap_or_default(),
                remote_tag,
            },
            state: DialogState::Confirmed,
            local,
            remote: notify.from().clone(),
            local_cseq,
            remote_cseq: Some(notify.cseq().seq),
            remote_target,
            route_set: notify.record_route().to_vec(),
            secure,
        })
    }

    /// Our CSeq space moves past `seq` (a request of ours sent outside the dialog's own
    /// numbering, e.g. the SUBSCRIBE whose NOTIFY created the dialog, retried with digest).
    pub fn raise_local_cseq(&mut self, seq: u32) {
        self.local_cseq = self.local_cseq.max(seq);
    }

    /// The UAS side, from an INVITE without To tag and the tag we answer with (section
    /// 12.1.1): route set = Record-Route in order, remote target = the INVITE's Contact.
    pub fn uas(invite: &SipRequest, local_tag: &str) -> Result<Dialog, DialogError> {
        let remote_target = invite
            .contacts()
            .as_slice()
            .first()
            .map(|c| c.uri.clone())
            .ok_or(DialogError::MissingContact)?;
        let local = invite
            .to()
            .clone()
            .with_param(Param::raw("tag", Some(local_tag)));
        Ok(Dialog {
            key: DialogKey {
                call_id: invite.call_id().to_owned(),
                local_tag: local_tag.to_owned(),
                remote_tag: invite.from().tag().unwrap_or_default(),
            },
            state: DialogState::Confirmed,
            local,
            remote: invite.from().clone(),
            // Section 12.1.1: the local sequence number starts empty; ours starts anywhere.
            local_cseq: 0,
            remote_cseq: Some(invite.cseq().seq),
            remote_target,
            route_set: invite.record_route().to_vec(),
            secure: is_sips(invite.uri()),
        })
    }

    /// The key the stack files this dialog under.
    pub fn key(&self) -> &DialogKey {
        &self.key
    }

    /// Early or confirmed.
    pub fn state(&self) -> DialogState {
        self.state
    }

    /// True for a dialog over `sips:`.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The `Replaces` header value (RFC 3891 section 6.1) that lets the peer's dialog be
    /// taken over by whoever sends it in an INVITE: the tags as the peer names them
    /// (`to-tag` its own, `from-tag` ours, section 3).
    pub fn replaces(&self) -> String {
        format!(
            "{};to-tag={};from-tag={}",
            self.key.call_id, self.key.remote_tag, self.key.local_tag
        )
    }

    /// The peer's current Contact.
    pub fn remote_target(&self) -> &Uri {
        &self.remote_target
    }

    /// The route set, in the order requests carry it.
    pub fn route_set(&self) -> &[NameAddr] {
        &self.route_set
    }

    /// A 2xx arrived for the INVITE of an early dialog with the same tag: the route set and
    /// remote target are taken from it (section 12.1.2 builds them from the 2xx; early
    /// values may differ, section 13.2.2.4).
    pub fn confirm(&mut self, response: &SipResponse) {
        self.state = DialogState::Confirmed;
        self.route_set = response.record_route().iter().rev().cloned().collect();
        self.refresh_target(response.contacts().as_slice().first());
    }

    /// A target refresh (re-INVITE or its 2xx, UPDATE) carried a Contact (section 12.2).
    pub fn refresh_target(&mut self, contact: Option<&NameAddr>) {
        if let Some(c) = contact {
            self.remote_target = c.uri.clone();
        }
    }

    /// Checks and records an incoming request's CSeq (section 12.2.2): lower than the last one
    /// is an error the caller answers 500; ACK and CANCEL reuse the INVITE's number.
    pub fn accept_remote_cseq(&mut self, request: &SipRequest) -> Result<(), DialogError> {
        let seq = request.cseq().seq;
        if matches!(request.method(), Method::Ack | Method::Cancel) {
            return Ok(());
        }
        match self.remote_cseq {
            Some(last) if seq <= last => Err(DialogError::CSeqOutOfOrder),
            _ => {
                self.remote_cseq = Some(seq);
                Ok(())
            }
        }
    }

    /// Takes the next local CSeq number (section 12.2.1.1) for a request built elsewhere.
    pub fn next_cseq(&mut self) -> u32 {
        self.local_cseq = self.local_cseq.wrapping_add(1).max(1);
        self.local_cseq
    }

    /// A new request in the dialog with the next local CSeq (section 12.2.1.1).
    pub fn request(&mut self, method: Method) -> OutgoingRequest {
        self.local_cseq = self.local_cseq.wrapping_add(1).max(1);
        let seq = self.local_cseq;
        self.request_with_cseq(method, seq)
    }

    /// The ACK for a 2xx to the INVITE with CSeq `invite_cseq` (section 13.2.2.4): built like
    /// any in-dialog request but with the INVITE's CSeq number. `credentials` are the INVITE's
    /// Authorization/Proxy-Authorization headers, which the ACK must repeat (section 22.1).
    pub fn ack(&self, invite_cseq: u32, credentials: &[(String, String)]) -> OutgoingRequest {
        let mut ack = self.request_with_cseq(Method::Ack, invite_cseq);
        ack.headers.extend(credentials.iter().cloned());
        ack
    }

    /// Section 12.2.1.1: Request-URI and Route from the remote target and route set, with
    /// loose routing (first route has `lr`) or strict routing (the first route becomes the
    /// Request-URI, the remote target goes last).
    fn request_with_cseq(&self, method: Method, seq: u32) -> OutgoingRequest {
        let mut headers: Vec<(String, String)> = Vec::with_capacity(8);
        let uri = match self.route_set.first() {
            None => self.remote_target.clone(),
            Some(first) if first.uri.param("lr").is_some() => {
                for route in &self.route_set {
                    headers.push(("Route".into(), route.to_string()));
                }
                self.remote_target.clone()
            }
            Some(first) => {
                for route in self.route_set.iter().skip(1) {
                    headers.push(("Route".into(), route.to_string()));
                }
                headers.push((
                    "Route".into(),
                    NameAddr::new(self.remote_target.clone()).to_string(),
                ));
                strip_uri_params(&first.uri)
            }
        };
        headers.push(("Max-Forwards".into(), "70".into()));
        headers.push(("From".into(), self.local.to_string()));
        headers.push(("To".into(), self.remote.to_string()));
        headers.push(("Call-ID".into(), self.key.call_id.clone()));
        headers.push(("CSeq".into(), format!("{seq} {method}")));
        OutgoingRequest {
            method,
            uri,
            headers,
            body: None,
        }
    }

    /// The first hop of our requests: the first Route (loose or strict), else the remote
    /// target (RFC 3261 section 8.1.2 / 12.2.1.1).
    pub fn next_hop(&self) -> &Uri {
        self.route_set
            .first()
            .map(|r| &r.uri)
            .unwrap_or(&self.remote_target)
    }
}

fn is_sips(uri: &Uri) -> bool {
    uri.as_str()
        .get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("sips:"))
}

/// Section 12.2.1.1: a strict-routing Request-URI is the route's URI "with all parameters
/// that are not allowed in a Request-URI stripped"; we keep it whole when it does not parse
/// back (the original is always valid).
fn strip_uri_params(uri: &Uri) -> Uri {
    let text = uri.as_str();
    let without_headers = text.split('?').next().unwrap_or(text);
    // Header-style `?` parts are never allowed in a Request-URI; URI parameters such as
    // `transport` and `maddr` are, so only the headers go.
    Uri::parse(without_headers).unwrap_or_else(|_| uri.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{Host, ResponseBuilder};

    fn invite() -> SipRequest {
        RequestBuilder::new(Method::Invite, Uri::parse("sip:bob@example.test").unwrap())
            .via(&Via::new(
                "UDP",
                Host::Ipv4([10, 0, 0, 1].into()),
                Some(5060),
                "z9hG4bK1",
            ))
            .max_forwards(70)
            .from(&NameAddr::parse("\"Alice\" <sip:alice@example.test>;tag=a1").unwrap())
            .to(&NameAddr::parse("<sip:bob@example.test>").unwrap())
            .call_id("c1@x")
            .cseq(7)
            .contact(&NameAddr::parse("<sip:alice@10.0.0.1:5060>").unwrap())
            .header("Record-Route", "<sip:p1.test;lr>, <sip:p2.test;lr>")
            .build()
            .unwrap()
    }

    fn ok(req: &SipRequest, rr: &str) -> SipResponse {
        ResponseBuilder::from_request(req, 200, "OK", Some("b1"))
            .header("Contact", "<sip:bob@10.0.0.2:5062>")
            .header("Record-Route", rr)
            .build()
            .unwrap()
    }

    #[test]
    fn uac_dialog_reverses_record_route_and_loose_routes() {
        let inv = invite();
        let mut d = Dialog::uac(&inv, &ok(&inv, "<sip:p2.test;lr>, <sip:p1.test;lr>")).unwrap();
        assert_eq!(d.state(), DialogState::Confirmed);
        assert_eq!(d.key().local_tag, "a1");
        assert_eq!(d.key().remote_tag, "b1");
        let bye = d.request(Method::Bye);
        assert_eq!(bye.uri.as_str(), "sip:bob@10.0.0.2:5062");
        let routes: Vec<_> = bye
            .headers
            .iter()
            .filter(|(n, _)| n == "Route")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(routes, ["<sip:p1.test;lr>", "<sip:p2.test;lr>"]);
        assert_eq!(bye.header("CSeq"), Some("8 BYE"));
        let ack = d.ack(7, &[]);
        assert_eq!(ack.header("CSeq"), Some("7 ACK"));
        assert_eq!(d.next_hop().as_str(), "sip:p1.test;lr");
        let via = Via::new(
            "UDP",
            Host::Ipv4([10, 0, 0, 1].into()),
            Some(5060),
            "z9hG4bK2",
        );
        let built = bye.build(&via, None).unwrap();
        assert_eq!(built.to().tag().as_deref(), Some("b1"));
        assert_eq!(built.from().display_name.as_deref(), Some("Alice"));
    }

    #[test]
    fn replaces_names_the_dialog_as_the_peer_knows_it() {
        // RFC 3891 section 3: to-tag is the recipient's own tag, from-tag ours, both ways.
        let inv = invite();
        let uac = Dialog::uac(&inv, &ok(&inv, "<sip:p1.test;lr>")).unwrap();
        assert_eq!(uac.replaces(), "c1@x;to-tag=b1;from-tag=a1");
        let uas = Dialog::uas(&inv, "l1").unwrap();
        assert_eq!(uas.replaces(), "c1@x;to-tag=a1;from-tag=l1");
    }

    #[test]
    fn strict_route_becomes_request_uri() {
        let inv = invite();
        let mut d = Dialog::uac(&inv, &ok(&inv, "<sip:strict.test>")).unwrap();
        let bye = d.request(Method::Bye);
        assert_eq!(bye.uri.as_str(), "sip:strict.test");
        assert_eq!(bye.header("Route"), Some("<sip:bob@10.0.0.2:5062>"));
    }

    #[test]
    fn uas_dialog_keeps_record_route_order_and_checks_cseq() {
        let inv = invite();
        let mut d = Dialog::uas(&inv, "l1").unwrap();
        assert_eq!(d.key().remote_tag, "a1");
        assert_eq!(d.route_set()[0].uri.as_str(), "sip:p1.test;lr");
        let bye = d.request(Method::Bye);
        assert_eq!(bye.uri.as_str(), "sip:alice@10.0.0.1:5060");
        assert_eq!(
            bye.header("To"),
            Some("\"Alice\" <sip:alice@example.test>;tag=a1")
        );
        assert_eq!(bye.header("From"), Some("<sip:bob@example.test>;tag=l1"));
        // The same CSeq again (or lower) is out of order; a higher one is fine.
        assert_eq!(d.accept_remote_cseq(&inv), Err(DialogError::CSeqOutOfOrder));
        assert!(!d.is_secure());
    }

    #[test]
    fn response_without_tag_or_contact_creates_no_dialog() {
        let inv = invite();
        let no_tag = ResponseBuilder::from_request(&inv, 180, "Ringing", None)
            .build()
            .unwrap();
        assert_eq!(
            Dialog::uac(&inv, &no_tag).unwrap_err(),
            DialogError::MissingRemoteTag
        );
        let no_contact = ResponseBuilder::from_request(&inv, 180, "Ringing", Some("t"))
            .build()
            .unwrap();
        assert_eq!(
            Dialog::uac(&inv, &no_contact).unwrap_err(),
            DialogError::MissingContact
        );
    }
}

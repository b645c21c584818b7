//! Builders and the printer. Builders print the message and parse it back, so whatever they
//! hand out is as validated as a received message.

use super::{
    parse, CSeq, Framing, Headers, Method, MsgError, NameAddr, SipMessage, SipRequest, SipResponse,
    Uri, Via,
};

/// Prints start line, headers (Content-Length dropped and recomputed from the body), body.
pub(super) fn print(start_line: &str, headers: &Headers, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(start_line.as_bytes());
    out.extend_from_slice(b"\r\n");
    for field in headers.iter() {
        if field.name.eq_ignore_ascii_case("Content-Length") {
            continue;
        }
        out.extend_from_slice(field.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(field.value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

/// Header values are ours, but parts of them (display names, URIs) may come from a browser: a
/// CR or LF would let them inject header lines, so both become spaces.
fn sanitise(value: &str) -> String {
    value.replace(['\r', '\n'], " ")
}

/// Builds a request. Headers are printed in the order added.
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    method: Method,
    uri: Uri,
    headers: Headers,
    body: Vec<u8>,
}

impl RequestBuilder {
    /// Starts a request line `method uri SIP/2.0`.
    pub fn new(method: Method, uri: Uri) -> RequestBuilder {
        RequestBuilder {
            method,
            uri,
            headers: Headers::default(),
            body: Vec::new(),
        }
    }

    /// Adds a header with a raw value (CR/LF replaced by SP).
    pub fn header(mut self, name: &str, value: &str) -> RequestBuilder {
        self.headers.push(name, &sanitise(value));
        self
    }

    /// Adds a Via (call once per hop, top first).
    pub fn via(self, via: &Via) -> RequestBuilder {
        self.header("Via", &via.to_string())
    }

    /// Adds From.
    pub fn from(self, from: &NameAddr) -> RequestBuilder {
        self.header("From", &from.to_string())
    }

    /// Adds To.
    pub fn to(self, to: &NameAddr) -> RequestBuilder {
        self.header("To", &to.to_string())
    }

    /// Adds Call-ID.
    pub fn call_id(self, call_id: &str) -> RequestBuilder {
        self.header("Call-ID", call_id)
    }

    /// Adds `CSeq: seq METHOD` with this request's method.
    pub fn cseq(self, seq: u32) -> RequestBuilder {
        let cseq = CSeq {
            seq,
            method: self.method.clone(),
        };
        self.header("CSeq", &cseq.to_string())
    }

    /// Adds Max-Forwards (70 is the RFC 3261 section 8.1.1.6 recommendation).
    pub fn max_forwards(self, hops: u8) -> RequestBuilder {
        self.header("Max-Forwards", &hops.to_string())
    }

    /// Adds one Contact (parameters, including quoted `+sip.instance`, printed as stored).
    pub fn contact(self, contact: &NameAddr) -> RequestBuilder {
        self.header("Contact", &contact.to_string())
    }

    /// Sets the body and its Content-Type.
    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> RequestBuilder {
        self.headers.push("Content-Type", &sanitise(content_type));
        self.body = body;
        self
    }

    /// Serialises without validating.
    pub fn to_bytes(&self) -> Vec<u8> {
        let line = format!("{} {} SIP/2.0", self.method, self.uri);
        print(&line, &self.headers, &self.body)
    }

    /// Serialises and validates by parsing back; fails if a mandatory header is missing or
    /// a value does not parse.
    pub fn build(self) -> Result<SipRequest, MsgError> {
        match parse(&self.to_bytes(), Framing::Stream) {
            Ok(SipMessage::Request(r)) => Ok(r),
            Ok(SipMessage::Response(_)) => Err(MsgError::BadRequestLine),
            Err(rejection) => Err(rejection.error),
        }
    }
}

/// Builds a response.
#[derive(Debug, Clone)]
pub struct ResponseBuilder {
    status: u16,
    reason: String,
    headers: Headers,
    body: Vec<u8>,
}

impl ResponseBuilder {
    /// Starts a status line. `reason` has CR/LF replaced.
    pub fn new(status: u16, reason: &str) -> ResponseBuilder {
        ResponseBuilder {
            status,
            reason: sanitise(reason),
            headers: Headers::default(),
            body: Vec::new(),
        }
    }

    /// A response to `request` (RFC 3261 section 8.2.6.2): copies every Via in order, From,
    /// To, Call-ID and CSeq, and adds `to_tag` when To has no tag and the status is not 100.
    pub fn from_request(
        request: &SipRequest,
        status: u16,
        reason: &str,
        to_tag: Option<&str>,
    ) -> ResponseBuilder {
        let mut builder = ResponseBuilder::new(status, reason);
        for via in request.headers().get_all("Via") {
            builder.headers.push("Via", via);
        }
        let mut to = request.to().clone();
        if let (None, Some(tag), false) = (to.tag(), to_tag, status == 100) {
            to.params.push(super::Param::raw("tag", Some(tag)));
        }
        builder
            .header("From", &request.from().to_string())
            .header("To", &to.to_string())
            .header("Call-ID", request.call_id())
            .header("CSeq", &request.cseq().to_string())
    }

    /// Adds a header with a raw value (CR/LF replaced by SP).
    pub fn header(mut self, name: &str, value: &str) -> ResponseBuilder {
        self.headers.push(name, &sanitise(value));
        self
    }

    /// Adds one Contact.
    pub fn contact(self, contact: &NameAddr) -> ResponseBuilder {
        self.header("Contact", &contact.to_string())
    }

    /// Sets the body and its Content-Type.
    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> ResponseBuilder {
        self.headers.push("Content-Type", &sanitise(content_type));
        self.body = body;
        self
    }

    /// Serialises without validating.
    pub fn to_bytes(&self) -> Vec<u8> {
        let line = format!("SIP/2.0 {} {}", self.status, self.reason);
        print(&line, &self.headers, &self.body)
    }

    /// Serialises and validates by parsing back.
    pub fn build(self) -> Result<SipResponse, MsgError> {
        match parse(&self.to_bytes(), Framing::Stream) {
            Ok(SipMessage::Response(r)) => Ok(r),
            Ok(SipMessage::Request(_)) => Err(MsgError::BadStatusLine),
            Err(rejection) => Err(rejection.error),
        }
    }
}

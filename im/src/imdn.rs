//! IMDN documents (RFC 5438 section 7, `message/imdn+xml`): delivery, display and
//! processing notifications, parsed with quick-xml's namespace-aware streaming reader and
//! written by [`Imdn::to_xml`].
//!
//! Only elements of the IMDN namespace are read; elements of other namespaces (the
//! schema's extension points) are skipped. A document with a DTD is refused: nothing here
//! expands entities beyond XML's five and character references.

use std::fmt;

use quick_xml::escape::escape;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// The IMDN XML namespace (RFC 5438 section 7.1).
pub const IMDN_XML_NS: &str = "urn:ietf:params:xml:ns:imdn";
/// The IMDN content type (RFC 5438 section 7.3).
pub const IMDN_CONTENT_TYPE: &str = "message/imdn+xml";

/// Largest document accepted.
pub const MAX_IMDN_SIZE: usize = 16 * 1024;
/// Deepest element nesting accepted.
pub const MAX_DEPTH: usize = 16;
/// Most XML events read from one document.
pub const MAX_EVENTS: usize = 512;

/// Which notification a document carries (RFC 5438 section 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationKind {
    /// `<delivery-notification>`.
    Delivery,
    /// `<display-notification>`.
    Display,
    /// `<processing-notification>`.
    Processing,
}

impl NotificationKind {
    fn element(self) -> &'static str {
        match self {
            NotificationKind::Delivery => "delivery-notification",
            NotificationKind::Display => "display-notification",
            NotificationKind::Processing => "processing-notification",
        }
    }
}

/// The status inside a notification (RFC 5438 sections 7.1.1-7.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImdnStatus {
    /// Delivered to the recipient.
    Delivered,
    /// Displayed (read).
    Displayed,
    /// Delivery failed.
    Failed,
    /// Refused by policy.
    Forbidden,
    /// An error while processing.
    Error,
    /// Processed by an intermediary.
    Processed,
    /// Stored by an intermediary for later delivery.
    Stored,
}

impl ImdnStatus {
    /// The element name, which is also sylkRTC's disposition state text.
    pub fn as_str(self) -> &'static str {
        match self {
            ImdnStatus::Delivered => "delivered",
            ImdnStatus::Displayed => "displayed",
            ImdnStatus::Failed => "failed",
            ImdnStatus::Forbidden => "forbidden",
            ImdnStatus::Error => "error",
            ImdnStatus::Processed => "processed",
            ImdnStatus::Stored => "stored",
        }
    }

    /// The status named `s` (an element name or sylkRTC state).
    pub fn parse(s: &str) -> Option<ImdnStatus> {
        Some(match s {
            "delivered" => ImdnStatus::Delivered,
            "displayed" => ImdnStatus::Displayed,
            "failed" => ImdnStatus::Failed,
            "forbidden" => ImdnStatus::Forbidden,
            "error" => ImdnStatus::Error,
            "processed" => ImdnStatus::Processed,
            "stored" => ImdnStatus::Stored,
            _ => return None,
        })
    }

    /// The notification this status belongs in when we send it.
    pub fn kind(self) -> NotificationKind {
        match self {
            ImdnStatus::Displayed => NotificationKind::Display,
            ImdnStatus::Processed | ImdnStatus::Stored => NotificationKind::Processing,
            _ => NotificationKind::Delivery,
        }
    }

    /// Whether RFC 5438 allows this status in `kind`.
    pub fn allowed_in(self, kind: NotificationKind) -> bool {
        use ImdnStatus::*;
        match kind {
            NotificationKind::Delivery => matches!(self, Delivered | Failed | Forbidden | Error),
            NotificationKind::Display => matches!(self, Displayed | Forbidden | Error),
            NotificationKind::Processing => matches!(self, Processed | Stored | Forbidden | Error),
        }
    }
}

/// Why bytes are not an IMDN document. `Display` says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImdnError {
    /// More than [`MAX_IMDN_SIZE`] bytes.
    TooLarge,
    /// Not UTF-8.
    NotUtf8,
    /// Not well-formed XML (the parser's words).
    Xml(String),
    /// A DTD (refused: no entity expansion).
    Doctype,
    /// Nested deeper than [`MAX_DEPTH`] or more than [`MAX_EVENTS`] events.
    TooComplex,
    /// The root is not `<imdn>` in the IMDN namespace.
    NotImdn,
    /// A mandatory element is missing (`message-id`, `datetime`, a notification).
    Missing(&'static str),
    /// An element that may appear once appears twice.
    Duplicate(&'static str),
    /// A status not allowed in its notification, or none, or two.
    BadStatus,
    /// `datetime` is not RFC 3339.
    BadDateTime,
}

impl fmt::Display for ImdnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImdnError::TooLarge => f.write_str("IMDN document too large"),
            ImdnError::NotUtf8 => f.write_str("IMDN document is not UTF-8"),
            ImdnError::Xml(e) => write!(f, "malformed IMDN XML: {e}"),
            ImdnError::Doctype => f.write_str("IMDN document with a DTD"),
            ImdnError::TooComplex => f.write_str("IMDN document too deeply nested"),
            ImdnError::NotImdn => f.write_str("not an IMDN document"),
            ImdnError::Missing(e) => write!(f, "IMDN {e} missing"),
            ImdnError::Duplicate(e) => write!(f, "duplicate IMDN {e}"),
            ImdnError::BadStatus => f.write_str("invalid IMDN status"),
            ImdnError::BadDateTime => f.write_str("malformed IMDN datetime"),
        }
    }
}

impl std::error::Error for ImdnError {}

/// One IMDN document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imdn {
    /// The `imdn.Message-ID` of the message it is about.
    pub message_id: String,
    /// The `DateTime` of that message (RFC 3339).
    pub datetime: String,
    /// Who received it.
    pub recipient_uri: Option<String>,
    /// Whom it was originally sent to.
    pub original_recipient_uri: Option<String>,
    /// Which notification.
    pub kind: NotificationKind,
    /// What happened.
    pub status: ImdnStatus,
}

/// The leaf elements read as text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Leaf {
    MessageId,
    DateTime,
    Recipient,
    OriginalRecipient,
}

impl Leaf {
    fn of(name: &[u8]) -> Option<Leaf> {
        Some(match name {
            b"message-id" => Leaf::MessageId,
            b"datetime" => Leaf::DateTime,
            b"recipient-uri" => Leaf::Recipient,
            b"original-recipient-uri" => Leaf::OriginalRecipient,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Leaf::MessageId => "message-id",
            Leaf::DateTime => "datetime",
            Leaf::Recipient => "recipient-uri",
            Leaf::OriginalRecipient => "original-recipient-uri",
        }
    }
}

impl Imdn {
    /// Parses a `message/imdn+xml` document.
    pub fn parse(bytes: &[u8]) -> Result<Imdn, ImdnError> {
        if bytes.len() > MAX_IMDN_SIZE {
            return Err(ImdnError::TooLarge);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| ImdnError::NotUtf8)?;
        let mut reader = NsReader::from_str(text);
        reader.config_mut().check_end_names = true;
        // Path of IMDN-namespace element names from the root (others are `None`).
        let mut path: Vec<Option<Vec<u8>>> = Vec::new();
        let mut leaves: [Option<String>; 4] = Default::default();
        let mut kind = None;
        let mut status = None;
        let mut text_of: Option<(Leaf, String)> = None;
        let mut root_seen = false;
        for _ in 0..MAX_EVENTS {
            let (ns, event) = reader
                .read_resolved_event()
                .map_err(|e| ImdnError::Xml(e.to_string()))?;
            let in_imdn =
                matches!(ns, ResolveResult::Bound(n) if n.as_ref() == IMDN_XML_NS.as_bytes());
            match event {
                Event::Start(e) | Event::Empty(e) if path.len() >= MAX_DEPTH => {
                    let _ = e;
                    return Err(ImdnError::TooComplex);
                }
                Event::Start(ref e) | Event::Empty(ref e) => {
                    let empty = matches!(event, Event::Empty(_));
                    let local = e.local_name().as_ref().to_vec();
                    if path.is_empty() {
                        if root_seen || !in_imdn || local != b"imdn" {
                            return Err(ImdnError::NotImdn);
                        }
                        root_seen = true;
                    }
                    let parent = path.last().cloned().flatten();
                    let grand = path.len().checked_sub(2).and_then(|i| path[i].clone());
                    if in_imdn {
                        match (parent.as_deref(), grand.as_deref()) {
                            (Some(b"imdn"), _) => {
                                if let Some(leaf) = Leaf::of(&local) {
                                    if leaves[leaf as usize].is_some() {
                                        return Err(ImdnError::Duplicate(leaf.name()));
                                    }
                                    text_of = Some((leaf, String::new()));
                                    if empty {
                                        leaves[leaf as usize] = Some(String::new());
                                        text_of = None;
                                    }
                                } else if let Some(k) = [
                                    NotificationKind::Delivery,
                                    NotificationKind::Display,
                                    NotificationKind::Processing,
                                ]
                                .into_iter()
                                .find(|k| k.element().as_bytes() == local)
                                {
                                    if kind.is_some() {
                                        return Err(ImdnError::Duplicate("notification"));
                                    }
                                    kind = Some(k);
                                }
                            }
                            (Some(b"status"), Some(n)) if n.ends_with(b"-notification") => {
                                let s = std::str::from_utf8(&local)
                                    .ok()
                                    .and_then(ImdnStatus::parse)
                                    .ok_or(ImdnError::BadStatus)?;
                                if status.replace(s).is_some() {
                                    return Err(ImdnError::BadStatus);
                                }
                            }
                            _ => {}
                        }
                    }
                    if !empty {
                        path.push(in_imdn.then_some(local));
                    }
                }
                Event::End(_) => {
                    if let Some((leaf, value)) = text_of.take() {
                        leaves[leaf as usize] = Some(value.trim().to_owned());
                    }
                    path.pop();
                }
                Event::Text(t) => {
                    if let Some((_, value)) = text_of.as_mut() {
                        let s = t
                            .xml10_content()
                            .map_err(|e| ImdnError::Xml(e.to_string()))?;
                        value.push_str(&s);
                    }
                }
                Event::CData(t) => {
                    if let Some((_, value)) = text_of.as_mut() {
                        let s = t.decode().map_err(|e| ImdnError::Xml(e.to_string()))?;
                        value.push_str(&s);
                    }
                }
                Event::GeneralRef(r) => {
                    if let Some((_, value)) = text_of.as_mut() {
                        let name = r.decode().map_err(|e| ImdnError::Xml(e.to_string()))?;
                        let reference = format!("&{name};");
                        let resolved = quick_xml::escape::unescape(&reference)
                            .map_err(|e| ImdnError::Xml(e.to_string()))?;
                        value.push_str(&resolved);
                    }
                }
                Event::DocType(_) => return Err(ImdnError::Doctype),
                Event::Eof => {
                    if !path.is_empty() {
                        return Err(ImdnError::Xml("unexpected end of document".into()));
                    }
                    if !root_seen {
                        return Err(ImdnError::NotImdn);
                    }
                    let [message_id, datetime, recipient, original] = leaves;
                    let message_id = message_id
                        .filter(|m| !m.is_empty())
                        .ok_or(ImdnError::Missing("message-id"))?;
                    let datetime = datetime.ok_or(ImdnError::Missing("datetime"))?;
                    if !crate::cpim::is_rfc3339(&datetime) {
                        return Err(ImdnError::BadDateTime);
                    }
                    let kind = kind.ok_or(ImdnError::Missing("notification"))?;
                    let status = status.ok_or(ImdnError::BadStatus)?;
                    if !status.allowed_in(kind) {
                        return Err(ImdnError::BadStatus);
                    }
                    return Ok(Imdn {
                        message_id,
                        datetime,
                        recipient_uri: recipient,
                        original_recipient_uri: original,
                        kind,
                        status,
                    });
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            }
        }
        Err(ImdnError::TooComplex)
    }

    /// The document as sent (RFC 5438 section 7.1's layout).
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(320);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n");
        out.push_str(&format!("<imdn xmlns=\"{IMDN_XML_NS}\">\r\n"));
        out.push_str(&format!(
            "<message-id>{}</message-id>\r\n",
            escape(self.message_id.as_str())
        ));
        out.push_str(&format!(
            "<datetime>{}</datetime>\r\n",
            escape(self.datetime.as_str())
        ));
        if let Some(r) = &self.recipient_uri {
            out.push_str(&format!(
                "<recipient-uri>{}</recipient-uri>\r\n",
                escape(r.as_str())
            ));
        }
        if let Some(r) = &self.original_recipient_uri {
            out.push_str(&format!(
                "<original-recipient-uri>{}</original-recipient-uri>\r\n",
                escape(r.as_str())
            ));
        }
        let kind = self.kind.element();
        out.push_str(&format!(
            "<{kind}><status><{}/></status></{kind}>\r\n",
            self.status.as_str()
        ));
        out.push_str("</imdn>\r\n");
        out
    }
}

#[cfg(test)]
mod tests;

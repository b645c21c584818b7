//! PIDF (RFC 3863, `application/pidf+xml`) with the data model's persons (RFC 4479) and
//! RPID activities and notes (RFC 4480).
//!
//! [`Presence::parse`] reduces a document to what the gateway reports: open if any tuple
//! is open, closed if a tuple is closed and none open, unknown without status; the RPID
//! activities of persons and tuples; the first note; the latest timestamp.
//! [`PidfBuilder`] writes the account's own state for PUBLISH with the `dm:` and `rpid:`
//! prefixes everyone uses (simple clients such as baresip match `<rpid:away/>` literally).

use std::fmt;

use crate::xml::{self, escape_attr, escape_text, Element, Limits, XmlError};

/// The PIDF namespace (RFC 3863 section 4.1).
pub const PIDF_NS: &str = "urn:ietf:params:xml:ns:pidf";
/// The data model namespace (RFC 4479 section 4).
pub const DATA_MODEL_NS: &str = "urn:ietf:params:xml:ns:pidf:data-model";
/// The RPID namespace (RFC 4480 section 3).
pub const RPID_NS: &str = "urn:ietf:params:xml:ns:pidf:rpid";
/// The PIDF content type.
pub const PIDF_CONTENT_TYPE: &str = "application/pidf+xml";

/// Largest PIDF document accepted.
pub const MAX_PIDF_SIZE: usize = 64 * 1024;
/// Most activities reported.
pub const MAX_ACTIVITIES: usize = 16;
/// Longest note reported, in characters (longer ones are cut).
pub const MAX_NOTE_CHARS: usize = 1024;

const LIMITS: Limits = Limits {
    max_size: MAX_PIDF_SIZE,
    max_depth: 24,
    max_elements: 2048,
};

/// The RPID activities (RFC 4480 section 3.2) written as elements; others go in `<other>`.
pub const RPID_ACTIVITIES: &[&str] = &[
    "appointment",
    "away",
    "breakfast",
    "busy",
    "dinner",
    "holiday",
    "in-transit",
    "looking-for-work",
    "lunch",
    "meal",
    "meeting",
    "on-the-phone",
    "performance",
    "permanent-absence",
    "playing",
    "presentation",
    "shopping",
    "sleeping",
    "spectator",
    "steering",
    "travel",
    "tv",
    "unknown",
    "vacation",
    "working",
    "worship",
];

/// The aggregated basic status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basic {
    /// A tuple is open: reachable.
    Open,
    /// Tuples are closed.
    Closed,
    /// No tuple says.
    Unknown,
}

impl Basic {
    /// `open`, `closed`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Basic::Open => "open",
            Basic::Closed => "closed",
            Basic::Unknown => "unknown",
        }
    }
}

/// Why bytes are not a PIDF document.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PidfError {
    /// Not well-formed or over the limits.
    Xml(XmlError),
    /// The root is not `<presence>` in the PIDF namespace.
    NotPidf,
    /// `<presence>` without its mandatory `entity`.
    NoEntity,
    /// A `<basic>` other than open or closed.
    BadBasic(String),
}

impl fmt::Display for PidfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PidfError::Xml(e) => write!(f, "PIDF: {e}"),
            PidfError::NotPidf => f.write_str("not a PIDF document"),
            PidfError::NoEntity => f.write_str("PIDF presence without entity"),
            PidfError::BadBasic(b) => write!(f, "PIDF basic status {b:?}"),
        }
    }
}

impl std::error::Error for PidfError {}

impl From<XmlError> for PidfError {
    fn from(e: XmlError) -> Self {
        PidfError::Xml(e)
    }
}

/// One presentity's state, reduced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// The presentity (`pres:` or `sip:` URI).
    pub entity: String,
    /// Open, closed or unknown.
    pub basic: Basic,
    /// RPID activities in document order, without duplicates.
    pub activities: Vec<String>,
    /// The first note (person, then tuple, then document), cut to [`MAX_NOTE_CHARS`].
    pub note: Option<String>,
    /// The latest timestamp given.
    pub timestamp: Option<String>,
}

impl Presence {
    /// Parses a PIDF document.
    pub fn parse(bytes: &[u8]) -> Result<Presence, PidfError> {
        let root = xml::parse(bytes, LIMITS)?;
        Presence::from_element(&root)
    }

    /// Reduces a parsed `<presence>` element (a part of an RLMI notification).
    pub fn from_element(root: &Element) -> Result<Presence, PidfError> {
        if !root.is(PIDF_NS, "presence") {
            return Err(PidfError::NotPidf);
        }
        let entity = root
            .attr("entity")
            .filter(|e| !e.trim().is_empty())
            .ok_or(PidfError::NoEntity)?
            .trim()
            .to_owned();
        let mut p = Presence {
            entity,
            basic: Basic::Unknown,
            activities: Vec::new(),
            note: None,
            timestamp: None,
        };
        let mut tuple_note = None;
        for e in root.elements() {
            if e.is(PIDF_NS, "tuple") {
                if let Some(basic) = e
                    .child(PIDF_NS, "status")
                    .and_then(|s| s.child(PIDF_NS, "basic"))
                {
                    match basic.text().as_str() {
                        "open" => p.basic = Basic::Open,
                        "closed" if p.basic != Basic::Open => p.basic = Basic::Closed,
                        "closed" => {}
                        other => return Err(PidfError::BadBasic(cut(other, 32))),
                    }
                }
                if tuple_note.is_none() {
                    tuple_note = e.child(PIDF_NS, "note").map(Element::text);
                }
                p.add_activities(e);
                p.add_timestamp(e.child(PIDF_NS, "timestamp"));
            } else if e.is(DATA_MODEL_NS, "person") {
                p.add_activities(e);
                if p.note.is_none() {
                    p.note = e.child(DATA_MODEL_NS, "note").map(Element::text);
                }
                p.add_timestamp(e.child(DATA_MODEL_NS, "timestamp"));
            } else if e.is(PIDF_NS, "note") && tuple_note.is_none() {
                tuple_note = Some(e.text());
            }
        }
        p.note = p
            .note
            .or(tuple_note)
            .filter(|n| !n.is_empty())
            .map(|n| cut(&n, MAX_NOTE_CHARS));
        Ok(p)
    }

    fn add_activities(&mut self, parent: &Element) {
        // `<rpid:activities>` sits in a person (RFC 4480) and, in older documents, in a
        // tuple's status.
        let lists = parent.children_named(RPID_NS, "activities").chain(
            parent
                .child(PIDF_NS, "status")
                .into_iter()
                .flat_map(|s| s.children_named(RPID_NS, "activities")),
        );
        for list in lists {
            for a in list.elements().filter(|a| a.ns.as_deref() == Some(RPID_NS)) {
                let name = if a.name == "other" && !a.text().is_empty() {
                    cut(&a.text(), 64)
                } else {
                    a.name.clone()
                };
                if self.activities.len() < MAX_ACTIVITIES && !self.activities.contains(&name) {
                    self.activities.push(name);
                }
            }
        }
    }

    fn add_timestamp(&mut self, t: Option<&Element>) {
        let Some(t) = t
            .map(Element::text)
            .filter(|t| !t.is_empty() && t.len() <= 64)
        else {
            return;
        };
        // RFC 3339 timestamps in one zone compare as text; later wins.
        if self.timestamp.as_deref().is_none_or(|old| t.as_str() > old) {
            self.timestamp = Some(t);
        }
    }
}

fn cut(s: &str, chars: usize) -> String {
    s.chars().take(chars).collect()
}

/// Writes a PIDF document for PUBLISH.
#[derive(Debug, Clone)]
pub struct PidfBuilder<'a> {
    /// The presentity, e.g. `sip:alice@example.test`.
    pub entity: &'a str,
    /// Open (reachable) or closed.
    pub open: bool,
    /// RPID activities (`away`, `busy`, `on-the-phone`, ...).
    pub activities: &'a [&'a str],
    /// A note for people.
    pub note: Option<&'a str>,
    /// RFC 3339 timestamp of the change.
    pub timestamp: Option<&'a str>,
    /// The tuple's id (stable across publications of one device).
    pub tuple_id: &'a str,
    /// The person's id.
    pub person_id: &'a str,
}

impl PidfBuilder<'_> {
    /// The document.
    pub fn build(&self) -> String {
        let mut out = String::with_capacity(512);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n");
        out.push_str(&format!(
            "<presence xmlns=\"{PIDF_NS}\" xmlns:dm=\"{DATA_MODEL_NS}\" \
             xmlns:rpid=\"{RPID_NS}\" entity=\"{}\">\r\n",
            escape_attr(self.entity)
        ));
        out.push_str(&format!(
            "  <tuple id=\"{}\">\r\n    <status><basic>{}</basic></status>\r\n",
            escape_attr(self.tuple_id),
            if self.open { "open" } else { "closed" }
        ));
        out.push_str(&format!(
            "    <contact>{}</contact>\r\n",
            escape_text(self.entity)
        ));
        if let Some(t) = self.timestamp {
            out.push_str(&format!(
                "    <timestamp>{}</timestamp>\r\n",
                escape_text(t)
            ));
        }
        out.push_str("  </tuple>\r\n");
        out.push_str(&format!(
            "  <dm:person id=\"{}\">\r\n",
            escape_attr(self.person_id)
        ));
        if self.activities.is_empty() {
            out.push_str("    <rpid:activities/>\r\n");
        } else {
            out.push_str("    <rpid:activities>");
            for a in self.activities {
                if RPID_ACTIVITIES.contains(a) {
                    out.push_str(&format!("<rpid:{a}/>"));
                } else {
                    out.push_str(&format!("<rpid:other>{}</rpid:other>", escape_text(a)));
                }
            }
            out.push_str("</rpid:activities>\r\n");
        }
        if let Some(n) = self.note {
            out.push_str(&format!("    <dm:note>{}</dm:note>\r\n", escape_text(n)));
        }
        if let Some(t) = self.timestamp {
            out.push_str(&format!(
                "    <dm:timestamp>{}</dm:timestamp>\r\n",
                escape_text(t)
            ));
        }
        out.push_str("  </dm:person>\r\n</presence>\r\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_with_activities_note_and_timestamp() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:r="urn:ietf:params:xml:ns:pidf:rpid" entity="pres:bob@example.test">
  <tuple id="a"><status><basic>closed</basic></status><timestamp>2024-01-01T00:00:00Z</timestamp></tuple>
  <tuple id="b"><status><basic>open</basic></status><note>tuple note</note>
    <timestamp>2024-01-02T00:00:00Z</timestamp></tuple>
  <dm:person id="p"><r:activities><r:away/><r:on-the-phone/><r:away/><r:other>gardening</r:other></r:activities>
    <dm:note>Back &amp; soon</dm:note></dm:person>
</presence>"#;
        let p = Presence::parse(doc).unwrap();
        assert_eq!(p.entity, "pres:bob@example.test");
        assert_eq!(p.basic, Basic::Open);
        assert_eq!(p.activities, ["away", "on-the-phone", "gardening"]);
        assert_eq!(p.note.as_deref(), Some("Back & soon"));
        assert_eq!(p.timestamp.as_deref(), Some("2024-01-02T00:00:00Z"));
    }

    #[test]
    fn closed_unknown_and_errors() {
        let closed = br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:b@x">
            <tuple id="t"><status><basic>closed</basic></status><note>gone</note></tuple></presence>"#;
        let p = Presence::parse(closed).unwrap();
        assert_eq!((p.basic, p.note.as_deref()), (Basic::Closed, Some("gone")));
        let empty = br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:b@x"/>"#;
        assert_eq!(Presence::parse(empty).unwrap().basic, Basic::Unknown);
        assert_eq!(
            Presence::parse(br#"<presence entity="x"/>"#),
            Err(PidfError::NotPidf)
        );
        assert_eq!(
            Presence::parse(br#"<presence xmlns="urn:ietf:params:xml:ns:pidf"/>"#),
            Err(PidfError::NoEntity)
        );
        assert!(matches!(
            Presence::parse(
                br#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="x"><tuple id="t"><status><basic>maybe</basic></status></tuple></presence>"#
            ),
            Err(PidfError::BadBasic(_))
        ));
        assert!(matches!(
            Presence::parse(b"<presence"),
            Err(PidfError::Xml(_))
        ));
    }

    #[test]
    fn built_documents_parse_back_and_use_the_usual_prefixes() {
        let doc = PidfBuilder {
            entity: "sip:alice@example.test",
            open: true,
            activities: &["away", "watching <tv>"],
            note: Some("at \"lunch\" & back"),
            timestamp: Some("2024-05-06T07:08:09Z"),
            tuple_id: "t1",
            person_id: "p1",
        }
        .build();
        assert!(doc.contains("<rpid:away/>"), "{doc}");
        assert!(doc.contains("<basic>open</basic>"));
        let p = Presence::parse(doc.as_bytes()).unwrap();
        assert_eq!(p.basic, Basic::Open);
        assert_eq!(p.activities, ["away", "watching <tv>"]);
        assert_eq!(p.note.as_deref(), Some("at \"lunch\" & back"));
        let closed = PidfBuilder {
            entity: "sip:alice@example.test",
            open: false,
            activities: &[],
            note: None,
            timestamp: None,
            tuple_id: "t1",
            person_id: "p1",
        }
        .build();
        let p = Presence::parse(closed.as_bytes()).unwrap();
        assert_eq!((p.basic, p.activities.len()), (Basic::Closed, 0));
    }
}

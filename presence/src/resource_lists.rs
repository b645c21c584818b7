//! Resource lists (RFC 4826 section 3, `application/resource-lists+xml`): the user's buddy
//! lists as stored on an XCAP server.
//!
//! Lists, entries and display names are typed; everything else of a list (`entry-ref`,
//! `external`, elements of other namespaces) and of an entry (extension elements, where
//! the gateway keeps its own fields) is kept as [`Element`]s, so a document read, changed
//! and written back loses nothing another client stored in it.

use std::fmt;

use crate::xml::{self, push_escaped_attr, push_escaped_text, Element, Limits, XmlError};

/// The resource-lists namespace.
pub const RESOURCE_LISTS_NS: &str = "urn:ietf:params:xml:ns:resource-lists";
/// The resource-lists content type (RFC 4826 section 3.2).
pub const RESOURCE_LISTS_CONTENT_TYPE: &str = "application/resource-lists+xml";
/// Largest document accepted.
pub const MAX_RESOURCE_LISTS_SIZE: usize = 1024 * 1024;

const LIMITS: Limits = Limits {
    max_size: MAX_RESOURCE_LISTS_SIZE,
    max_depth: 32,
    max_elements: 50_000,
};

/// Why bytes are not a resource-lists document.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListsError {
    /// Not well-formed or over the limits.
    Xml(XmlError),
    /// The root is not `<resource-lists>`.
    NotResourceLists,
    /// An `<entry>` without `uri`.
    EntryWithoutUri,
}

impl fmt::Display for ListsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListsError::Xml(e) => write!(f, "resource-lists: {e}"),
            ListsError::NotResourceLists => f.write_str("not a resource-lists document"),
            ListsError::EntryWithoutUri => f.write_str("resource-lists entry without uri"),
        }
    }
}

impl std::error::Error for ListsError {}

/// One entry: a URI with its display name and extension elements.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// The resource (`sip:bob@example.test`).
    pub uri: String,
    /// `<display-name>`.
    pub display_name: Option<String>,
    /// Extension elements, in order.
    pub extra: Vec<Element>,
}

/// One list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct List {
    /// The `name` attribute (unique among siblings; what XCAP node selectors use).
    pub name: Option<String>,
    /// `<display-name>`.
    pub display_name: Option<String>,
    /// Entries in order.
    pub entries: Vec<Entry>,
    /// Nested lists.
    pub lists: Vec<List>,
    /// `entry-ref`, `external` and extension elements, kept.
    pub extra: Vec<Element>,
}

/// A resource-lists document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceLists {
    /// The top-level lists.
    pub lists: Vec<List>,
}

impl ResourceLists {
    /// Parses a document.
    pub fn parse(bytes: &[u8]) -> Result<ResourceLists, ListsError> {
        let root = xml::parse(bytes, LIMITS).map_err(ListsError::Xml)?;
        if !root.is(RESOURCE_LISTS_NS, "resource-lists") {
            return Err(ListsError::NotResourceLists);
        }
        let mut lists = Vec::new();
        for l in root.into_elements() {
            if l.is(RESOURCE_LISTS_NS, "list") {
                lists.push(list(l)?);
            }
        }
        Ok(ResourceLists { lists })
    }

    /// The top-level list called `name`.
    pub fn list(&self, name: &str) -> Option<&List> {
        self.lists.iter().find(|l| l.name.as_deref() == Some(name))
    }

    /// The top-level list called `name`, created (empty, at the end) when missing.
    pub fn list_mut(&mut self, name: &str) -> &mut List {
        let at = match self
            .lists
            .iter()
            .position(|l| l.name.as_deref() == Some(name))
        {
            Some(i) => i,
            None => {
                self.lists.push(List {
                    name: Some(name.to_owned()),
                    ..List::default()
                });
                self.lists.len() - 1
            }
        };
        &mut self.lists[at]
    }

    /// The document (UTF-8).
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(256 + 128 * self.lists.len());
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str(&format!("<resource-lists xmlns=\"{RESOURCE_LISTS_NS}\">\n"));
        for l in &self.lists {
            write_list(&mut out, l, 1);
        }
        out.push_str("</resource-lists>\n");
        out
    }
}

// The tree is consumed: kept elements move into the typed form instead of being copied,
// so a parse allocates each node once (a 1,000-contact document is ~10^4 nodes).
fn list(mut e: Element) -> Result<List, ListsError> {
    let mut l = List {
        name: take_attr(&mut e, "name"),
        ..List::default()
    };
    for c in e.into_elements() {
        if c.is(RESOURCE_LISTS_NS, "display-name") {
            l.display_name = Some(c.text());
        } else if c.is(RESOURCE_LISTS_NS, "entry") {
            l.entries.push(entry(c)?);
        } else if c.is(RESOURCE_LISTS_NS, "list") {
            l.lists.push(list(c)?);
        } else {
            l.extra.push(c);
        }
    }
    Ok(l)
}

fn take_attr(e: &mut Element, name: &str) -> Option<String> {
    let at = e.attrs.iter().position(|(n, _)| n == name)?;
    Some(e.attrs.swap_remove(at).1)
}

fn entry(mut e: Element) -> Result<Entry, ListsError> {
    let uri = take_attr(&mut e, "uri")
        .map(|u| match u.trim() {
            t if t.len() == u.len() => u,
            t => t.to_owned(),
        })
        .filter(|u| !u.is_empty())
        .ok_or(ListsError::EntryWithoutUri)?;
    let mut out = Entry {
        uri,
        ..Entry::default()
    };
    for c in e.into_elements() {
        if c.is(RESOURCE_LISTS_NS, "display-name") {
            out.display_name = Some(c.text());
        } else {
            out.extra.push(c);
        }
    }
    Ok(out)
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn write_list(out: &mut String, l: &List, depth: usize) {
    indent(out, depth);
    out.push_str("<list");
    if let Some(n) = &l.name {
        out.push_str(" name=\"");
        push_escaped_attr(out, n);
        out.push('"');
    }
    out.push_str(">\n");
    if let Some(d) = &l.display_name {
        indent(out, depth + 1);
        out.push_str("<display-name>");
        push_escaped_text(out, d);
        out.push_str("</display-name>\n");
    }
    for e in &l.entries {
        indent(out, depth + 1);
        out.push_str("<entry uri=\"");
        push_escaped_attr(out, &e.uri);
        out.push_str("\">");
        if let Some(d) = &e.display_name {
            out.push_str("<display-name>");
            push_escaped_text(out, d);
            out.push_str("</display-name>");
        }
        for x in &e.extra {
            x.write(out, Some(RESOURCE_LISTS_NS));
        }
        out.push_str("</entry>\n");
    }
    for sub in &l.lists {
        write_list(out, sub, depth + 1);
    }
    for x in &l.extra {
        indent(out, depth + 1);
        x.write(out, Some(RESOURCE_LISTS_NS));
        out.push('\n');
    }
    indent(out, depth);
    out.push_str("</list>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:x="urn:example:ext">
  <list name="friends">
    <display-name>Friends</display-name>
    <entry uri="sip:bob@example.test"><display-name>Bob &amp; Co</display-name><x:fav level="1">yes</x:fav></entry>
    <entry-ref ref="resource-lists/users/sip:a@b/index/~~/resource-lists/list%5b1%5d/entry%5b1%5d"/>
    <list name="close"><entry uri="sip:carol@example.test"/></list>
  </list>
  <list name="other"/>
</resource-lists>"#;

    #[test]
    fn lists_entries_and_extensions_survive_a_round_trip() {
        let rl = ResourceLists::parse(DOC).unwrap();
        let f = rl.list("friends").unwrap();
        assert_eq!(f.display_name.as_deref(), Some("Friends"));
        assert_eq!(f.entries[0].uri, "sip:bob@example.test");
        assert_eq!(f.entries[0].display_name.as_deref(), Some("Bob & Co"));
        assert!(f.entries[0].extra[0].is("urn:example:ext", "fav"));
        assert_eq!(f.extra.len(), 1, "entry-ref kept");
        assert_eq!(f.lists[0].entries[0].uri, "sip:carol@example.test");
        let again = ResourceLists::parse(rl.to_xml().as_bytes()).unwrap();
        assert_eq!(again, rl);
    }

    #[test]
    fn list_mut_creates_and_errors_are_typed() {
        let mut rl = ResourceLists::default();
        rl.list_mut("buddies").entries.push(Entry {
            uri: "sip:x@y".into(),
            ..Entry::default()
        });
        rl.list_mut("buddies").display_name = Some("B".into());
        assert_eq!(rl.lists.len(), 1);
        assert_eq!(ResourceLists::parse(rl.to_xml().as_bytes()).unwrap(), rl);
        assert_eq!(
            ResourceLists::parse(b"<resource-lists/>"),
            Err(ListsError::NotResourceLists)
        );
        assert_eq!(
            ResourceLists::parse(
                br#"<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list><entry/></list></resource-lists>"#
            ),
            Err(ListsError::EntryWithoutUri)
        );
    }
}

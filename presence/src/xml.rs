//! A bounded, namespace-resolved element tree over quick-xml's streaming reader: the one
//! place the crate's documents are read, so every format gets the same limits (size,
//! depth, element count), refuses DTDs (no entity expansion beyond XML's five and
//! character references) and reports the same typed [`XmlError`]s.
//!
//! Documents here are small (a NOTIFY body, an XCAP document), so a tree is simpler than
//! per-format streaming and costs little. [`Element::write`] serialises a tree again with
//! a default-namespace declaration wherever the namespace changes, which keeps elements of
//! other applications intact when a document is read, changed and written back.

use std::fmt;
use std::sync::Arc;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, XmlVersion};

/// What a parse may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest document, bytes.
    pub max_size: usize,
    /// Deepest element nesting.
    pub max_depth: usize,
    /// Most elements.
    pub max_elements: usize,
}

/// Why bytes are not a usable XML document.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum XmlError {
    /// Larger than the limit.
    TooLarge,
    /// Not UTF-8.
    NotUtf8,
    /// Not well-formed (the parser's words).
    Syntax(String),
    /// A DTD (refused: no entity expansion).
    Doctype,
    /// Deeper or with more elements than the limits.
    TooComplex,
    /// No root element, or text or a second element after it.
    NoRoot,
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XmlError::TooLarge => f.write_str("document too large"),
            XmlError::NotUtf8 => f.write_str("document is not UTF-8"),
            XmlError::Syntax(e) => write!(f, "malformed XML: {e}"),
            XmlError::Doctype => f.write_str("document with a DTD"),
            XmlError::TooComplex => f.write_str("document too deeply nested or too long"),
            XmlError::NoRoot => f.write_str("not one root element"),
        }
    }
}

impl std::error::Error for XmlError {}

/// A child of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// An element.
    Element(Element),
    /// Character data (whitespace-only runs between elements are dropped).
    Text(String),
}

/// One element with its resolved namespace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Namespace URI (`None`: no namespace); shared, as a document has few namespaces
    /// and many elements.
    pub ns: Option<Arc<str>>,
    /// Local name.
    pub name: String,
    /// Attributes without a prefix (and `xml:lang`), in document order.
    pub attrs: Vec<(String, String)>,
    /// Children in document order.
    pub children: Vec<Node>,
}

impl Element {
    /// A new element.
    pub fn new(ns: Option<&str>, name: &str) -> Element {
        Element {
            ns: ns.map(Arc::from),
            name: name.to_owned(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Whether this is `name` in namespace `ns`.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.name == name && self.ns.as_deref() == Some(ns)
    }

    /// The value of attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// Child elements, taken out of the element (no copies: documents are converted to
    /// their typed form by moving the kept subtrees).
    pub fn into_elements(self) -> impl Iterator<Item = Element> {
        self.children.into_iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// Child elements `name` in `ns`.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.is(ns, name))
    }

    /// The first child element `name` in `ns`.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(ns, name))
    }

    /// The element's own text, trimmed.
    pub fn text(&self) -> String {
        let mut texts = self.children.iter().filter_map(|n| match n {
            Node::Text(t) => Some(t.as_str()),
            Node::Element(_) => None,
        });
        let first = texts.next().unwrap_or("");
        match texts.next() {
            // The parser merges adjacent text: one run is the common case, copied once.
            None => first.trim().to_owned(),
            Some(second) => {
                let mut out = String::from(first);
                out.push_str(second);
                texts.for_each(|t| out.push_str(t));
                out.trim().to_owned()
            }
        }
    }

    /// Adds an attribute (builder style).
    pub fn with_attr(mut self, name: &str, value: &str) -> Element {
        self.attrs.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds a child element (builder style).
    pub fn with_child(mut self, child: Element) -> Element {
        self.children.push(Node::Element(child));
        self
    }

    /// Adds text (builder style).
    pub fn with_text(mut self, text: &str) -> Element {
        self.children.push(Node::Text(text.to_owned()));
        self
    }

    /// Serialises the element; a default namespace is declared wherever it differs from
    /// `parent_ns` (pass `None` for a root).
    pub fn write(&self, out: &mut String, parent_ns: Option<&str>) {
        out.push('<');
        out.push_str(&self.name);
        if self.ns.as_deref() != parent_ns {
            out.push_str(" xmlns=\"");
            push_escaped_attr(out, self.ns.as_deref().unwrap_or(""));
            out.push('"');
        }
        for (n, v) in &self.attrs {
            out.push(' ');
            out.push_str(n);
            out.push_str("=\"");
            push_escaped_attr(out, v);
            out.push('"');
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for c in &self.children {
            match c {
                Node::Element(e) => e.write(out, self.ns.as_deref()),
                Node::Text(t) => push_escaped_text(out, t),
            }
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

/// Escapes character data.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_escaped_text(&mut out, s);
    out
}

/// Escapes an attribute value (double-quoted).
pub fn escape_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_escaped_attr(&mut out, s);
    out
}

/// Appends character data, escaped, to `out`.
pub fn push_escaped_text(out: &mut String, s: &str) {
    push_escaped(out, s, |b| match b {
        b'&' => Some("&amp;"),
        b'<' => Some("&lt;"),
        b'>' => Some("&gt;"),
        _ => None,
    });
}

/// Appends an attribute value (double-quoted), escaped, to `out`.
pub fn push_escaped_attr(out: &mut String, s: &str) {
    push_escaped(out, s, |b| match b {
        b'&' => Some("&amp;"),
        b'<' => Some("&lt;"),
        b'>' => Some("&gt;"),
        b'"' => Some("&quot;"),
        b'\n' => Some("&#10;"),
        b'\r' => Some("&#13;"),
        b'\t' => Some("&#9;"),
        _ => None,
    });
}

/// Copies `s` to `out` in runs between the bytes `special` replaces: every byte it
/// matches is ASCII, so run boundaries are character boundaries. One pass, no per-character
/// pushes (the write of a 1,000-contact document spent most of its time there).
fn push_escaped(out: &mut String, s: &str, special: impl Fn(u8) -> Option<&'static str>) {
    out.reserve(s.len());
    let mut run = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if let Some(rep) = special(b) {
            out.push_str(&s[run..i]);
            out.push_str(rep);
            run = i + 1;
        }
    }
    out.push_str(&s[run..]);
}

fn syntax(e: impl fmt::Display) -> XmlError {
    XmlError::Syntax(e.to_string())
}

/// Namespaces resolved so far in a parse, by their declaration's raw text: elements
/// share one `Arc` per namespace instead of a copy each. Bounded, so a document declaring
/// thousands of namespaces costs a fresh allocation each, never a long search.
#[derive(Default)]
struct Namespaces(Vec<(Box<[u8]>, Arc<str>)>);

impl Namespaces {
    const MAX: usize = 8;

    fn resolve(&mut self, raw: &[u8]) -> Result<Arc<str>, XmlError> {
        if let Some((_, ns)) = self.0.iter().find(|(r, _)| &r[..] == raw) {
            return Ok(ns.clone());
        }
        // The resolver keeps the declaration's raw text; references in it are resolved
        // here so a URI reads the same after being written (escaped) again.
        let text = std::str::from_utf8(raw).map_err(|_| XmlError::NotUtf8)?;
        let ns: Arc<str> = quick_xml::escape::unescape(text).map_err(syntax)?.into();
        if self.0.len() < Self::MAX {
            self.0.push((raw.into(), ns.clone()));
        }
        Ok(ns)
    }
}

fn start(
    namespaces: &mut Namespaces,
    ns: ResolveResult<'_>,
    e: &BytesStart<'_>,
) -> Result<Element, XmlError> {
    let ns = match ns {
        ResolveResult::Bound(n) => Some(namespaces.resolve(n.as_ref())?),
        ResolveResult::Unbound => None,
        ResolveResult::Unknown(p) => {
            return Err(XmlError::Syntax(format!(
                "undeclared prefix {}",
                String::from_utf8_lossy(&p)
            )))
        }
    };
    let name = std::str::from_utf8(e.local_name().as_ref())
        .map_err(|_| XmlError::NotUtf8)?
        .to_owned();
    if !is_name(&name) {
        return Err(XmlError::Syntax(format!("bad element name {name:?}")));
    }
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(syntax)?;
        let key = a.key.as_ref();
        let keep = if key == b"xml:lang" {
            true
        } else {
            a.key.prefix().is_none() && key != b"xmlns"
        };
        if !keep {
            continue;
        }
        let k = std::str::from_utf8(key).map_err(|_| XmlError::NotUtf8)?;
        if !is_name(k.trim_start_matches("xml:")) {
            return Err(XmlError::Syntax(format!("bad attribute name {k:?}")));
        }
        let v = a
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(syntax)?;
        attrs.push((k.to_owned(), v.into_owned()));
    }
    Ok(Element {
        ns,
        name,
        attrs,
        children: Vec::new(),
    })
}

/// An XML NCName (the reader is lenient about names; what is written again must not be).
fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c == '_' || c.is_alphabetic());
    first_ok && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Parses one document into its root element.
pub fn parse(bytes: &[u8], limits: Limits) -> Result<Element, XmlError> {
    if bytes.len() > limits.max_size {
        return Err(XmlError::TooLarge);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| XmlError::NotUtf8)?;
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    let mut namespaces = Namespaces::default();
    // Every event is at least one byte of input: the loop is bounded by the size limit.
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(syntax)?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if root.is_some() {
                    return Err(XmlError::NoRoot);
                }
                elements += 1;
                if stack.len() >= limits.max_depth || elements > limits.max_elements {
                    return Err(XmlError::TooComplex);
                }
                let el = start(&mut namespaces, ns, e)?;
                if matches!(event, Event::Empty(_)) {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(Node::Element(el)),
                        None => root = Some(el),
                    }
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let Some(el) = stack.pop() else {
                    return Err(XmlError::Syntax("unbalanced end tag".into()));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(el)),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let s = t.xml10_content().map_err(syntax)?;
                push_text(&mut stack, &s)?;
            }
            Event::CData(t) => {
                let s = t.decode().map_err(syntax)?;
                push_text(&mut stack, &s)?;
            }
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(syntax)?;
                let reference = format!("&{name};");
                let resolved = quick_xml::escape::unescape(&reference).map_err(syntax)?;
                push_text(&mut stack, &resolved)?;
            }
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => {
                if !stack.is_empty() {
                    return Err(XmlError::Syntax("unexpected end of document".into()));
                }
                return root.ok_or(XmlError::NoRoot);
            }
        }
    }
}

/// Appends text to the open element (merging with a text node before it); whitespace
/// outside the root is allowed, anything else there is not.
fn push_text(stack: &mut [Element], s: &str) -> Result<(), XmlError> {
    let Some(parent) = stack.last_mut() else {
        if s.trim().is_empty() {
            return Ok(());
        }
        return Err(XmlError::NoRoot);
    };
    match parent.children.last_mut() {
        Some(Node::Text(t)) => t.push_str(s),
        _ if s.trim().is_empty() => {}
        _ => parent.children.push(Node::Text(s.to_owned())),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_size: 4096,
        max_depth: 8,
        max_elements: 64,
    };

    #[test]
    fn namespaces_attributes_and_text_are_resolved() {
        let doc = br#"<?xml version="1.0"?>
<a xmlns="urn:a" xmlns:b="urn:b" x="1" b:y="2" xml:lang="en">
  <b:c z="&amp;&#65;">t &lt;1&gt;<![CDATA[ & raw]]></b:c>
  <d/>
</a>"#;
        let root = parse(doc, LIMITS).unwrap();
        assert!(root.is("urn:a", "a"));
        assert_eq!(
            root.attrs,
            [("x".into(), "1".into()), ("xml:lang".into(), "en".into())]
        );
        let c = root.child("urn:b", "c").unwrap();
        assert_eq!(c.attr("z"), Some("&A"));
        assert_eq!(c.text(), "t <1> & raw");
        assert!(root.child("urn:a", "d").is_some());
        let mut out = String::new();
        root.write(&mut out, None);
        let again = parse(out.as_bytes(), LIMITS).unwrap();
        assert_eq!(again.child("urn:b", "c").unwrap().text(), "t <1> & raw");
        assert!(again.child("urn:a", "d").is_some());
    }

    #[test]
    fn escaping_copies_runs_around_multibyte_text() {
        assert_eq!(escape_text("é<ü>&ß"), "é&lt;ü&gt;&amp;ß");
        assert_eq!(escape_attr("\"€\n\t\r"), "&quot;€&#10;&#9;&#13;");
        assert_eq!(escape_text(""), "");
        let mut out = String::from("x");
        push_escaped_attr(&mut out, "a&b");
        assert_eq!(out, "xa&amp;b");
    }

    #[test]
    fn bad_documents_are_typed_errors() {
        let cases: &[(&[u8], XmlError)] = &[
            (b"", XmlError::NoRoot),
            (b"<a/><b/>", XmlError::NoRoot),
            (b"text", XmlError::NoRoot),
            (
                b"<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>",
                XmlError::Doctype,
            ),
            (b"<a><b></a>", XmlError::Syntax(String::new())),
            (b"<p:a/>", XmlError::Syntax(String::new())),
            (b"\xff<a/>", XmlError::NotUtf8),
        ];
        for (doc, want) in cases {
            let got = parse(doc, LIMITS).unwrap_err();
            assert_eq!(
                std::mem::discriminant(&got),
                std::mem::discriminant(want),
                "{}: {got:?}",
                String::from_utf8_lossy(doc)
            );
        }
        let deep = "<a>".repeat(9) + &"</a>".repeat(9);
        assert_eq!(parse(deep.as_bytes(), LIMITS), Err(XmlError::TooComplex));
        let wide = format!("<a>{}</a>", "<b/>".repeat(64));
        assert_eq!(parse(wide.as_bytes(), LIMITS), Err(XmlError::TooComplex));
        let big = vec![b' '; 4097];
        assert_eq!(parse(&big, LIMITS), Err(XmlError::TooLarge));
    }
}

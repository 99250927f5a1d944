//! Court XML in and out: a small, strict element tree read with quick-xml,
//! and receipts written back. A DOCTYPE or an entity other than the five
//! predefined ones and character references is refused, never expanded
//! (`xmlguard`, the one guard every partner XML reader goes through).

use court_orders::Receipt;
use quick_xml::Reader;
use quick_xml::escape::escape;
use quick_xml::events::Event;

/// Deepest nesting accepted (`CourtOrders/CourtOrder/Respondent/Name` is 4).
const MAX_DEPTH: usize = 6;
/// Most elements accepted in one document (500 orders of about 20 elements).
const MAX_ELEMENTS: usize = 15_000;

/// An element: its name, its text and its children (attributes are not used by this API).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Element {
    pub(crate) name: String,
    pub(crate) text: String,
    pub(crate) children: Vec<Element>,
}

impl Element {
    /// The first child with this name.
    pub(crate) fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum XmlError {
    #[error("body is not UTF-8 text (send UTF-8 XML)")]
    NotUtf8,
    #[error(transparent)]
    Refused(#[from] xmlguard::Refused),
    #[error("malformed XML at line {line}, column {column}: {message}")]
    Syntax { line: u64, column: u64, message: String },
    #[error("document has no root element")]
    Empty,
    #[error("text outside the root element")]
    TextOutsideRoot,
    #[error("more than one root element")]
    SecondRoot,
    #[error("elements nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("more than {MAX_ELEMENTS} elements")]
    TooManyElements,
}

impl XmlError {
    /// Line and column (1-based) of a syntax error.
    pub(crate) fn line_column(&self) -> Option<(u64, u64)> {
        match self {
            Self::Syntax { line, column, .. } => Some((*line, *column)),
            _ => None,
        }
    }
}

/// A syntax error at byte `position` of `text`, placed by line and column
/// (1-based; the column counts characters, so 中 is one column).
fn syntax(text: &str, position: u64, message: String) -> XmlError {
    let mut end = usize::try_from(position).unwrap_or(usize::MAX).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() as u64 + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() as u64 + 1;
    XmlError::Syntax { line, column, message }
}

/// Parses a whole document into its root element.
pub(crate) fn parse_document(bytes: &[u8]) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(bytes).map_err(|_| XmlError::NotUtf8)?;
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let position = reader.buffer_position();
        let event = reader.read_event().map_err(|e| syntax(text, reader.error_position(), e.to_string()))?;
        xmlguard::check(&event)?;
        match event {
            Event::Start(start) | Event::Empty(start) if stack.len() >= MAX_DEPTH => {
                let _ = start;
                return Err(XmlError::TooDeep);
            }
            Event::Start(start) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError::TooManyElements);
                }
                if stack.is_empty() && root.is_some() {
                    return Err(XmlError::SecondRoot);
                }
                let name = AsRef::<str>::as_ref(&start.local_name()).to_owned();
                stack.push(Element { name, ..Element::default() });
            }
            Event::Empty(start) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError::TooManyElements);
                }
                let element =
                    Element { name: AsRef::<str>::as_ref(&start.local_name()).to_owned(), ..Element::default() };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None if root.is_some() => return Err(XmlError::SecondRoot),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                let element = stack.pop().ok_or_else(|| syntax(text, position, "unexpected end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                match stack.last_mut() {
                    Some(current) => current.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => return Err(XmlError::TextOutsideRoot),
                }
            }
            Event::CData(c) => {
                let content: String = c.to_string();
                match stack.last_mut() {
                    Some(current) => current.text.push_str(&content),
                    None => return Err(XmlError::TextOutsideRoot),
                }
            }
            Event::GeneralRef(r) => {
                let resolved = xmlguard::reference(&r)?;
                match stack.last_mut() {
                    Some(current) => current.text.push(resolved),
                    None => return Err(XmlError::TextOutsideRoot),
                }
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(syntax(text, reader.buffer_position(), "unclosed element at end of input".into()));
    }
    root.ok_or(XmlError::Empty)
}

/// One `<Receipt>` element (no XML declaration), as kept with the order and sent.
pub(crate) fn receipt_element(receipt: &Receipt) -> String {
    let mut out = String::with_capacity(200);
    out.push_str("<Receipt><OrderNo>");
    out.push_str(&escape(&receipt.order_no));
    out.push_str("</OrderNo><Status>");
    out.push_str(receipt.status.code());
    out.push_str("</Status>");
    if let Some(position) = receipt.queue_position {
        out.push_str(&format!("<QueuePosition>{position}</QueuePosition>"));
    }
    if let Some(code) = &receipt.reason_code {
        out.push_str(&format!(
            "<Reason code=\"{}\">{}</Reason>",
            escape(code.as_str()),
            escape(receipt.reason.as_deref().unwrap_or_default())
        ));
    }
    out.push_str("<RecordedAt>");
    out.push_str(&domain::time::china_rfc3339(receipt.recorded_at));
    out.push_str("</RecordedAt></Receipt>");
    out
}

/// A whole document from receipt elements: `<Receipt>` alone, or `<Receipts>` for a batch.
pub(crate) fn receipts_document(elements: &[String], batch: bool) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    if batch {
        out.push_str("<Receipts>");
        for e in elements {
            out.push_str(e);
        }
        out.push_str("</Receipts>");
    } else if let Some(e) = elements.first() {
        out.push_str(e);
    }
    out
}

/// The `<SandboxReport>` document: a sandbox partner's requests, newest
/// first, each with its problems (see court-api.xsd).
pub(crate) fn sandbox_report(
    partner_id: &str,
    requests: &[store::sandbox::SandboxRequest],
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<SandboxReport partner=\"{}\" generatedAt=\"{}\">\n",
        escape(partner_id),
        domain::time::china_rfc3339(now)
    ));
    for r in requests {
        out.push_str(&format!(
            "  <Request id=\"{}\" receivedAt=\"{}\" method=\"{}\" path=\"{}\" status=\"{}\" orders=\"{}\">\n",
            r.id,
            domain::time::china_rfc3339(r.received_at),
            escape(r.method.as_str()),
            escape(r.path.as_str()),
            r.http_status,
            r.orders
        ));
        for p in &r.problems {
            out.push_str(&format!("    <Problem code=\"{}\"", escape(p.code.as_str())));
            if let Some(order_no) = &p.order_no {
                out.push_str(&format!(" orderNo=\"{}\"", escape(order_no.as_str())));
            }
            if let (Some(line), Some(column)) = (p.line, p.column) {
                out.push_str(&format!(" line=\"{line}\" column=\"{column}\""));
            }
            out.push_str(&format!("><Message>{}</Message>", escape(p.message.as_str())));
            for (name, value) in [("Field", &p.field), ("Rule", &p.rule), ("StringToSign", &p.string_to_sign)] {
                if let Some(value) = value {
                    out.push_str(&format!("<{name}>{}</{name}>", escape(value.as_str())));
                }
            }
            out.push_str("</Problem>\n");
        }
        out.push_str("  </Request>\n");
    }
    out.push_str("</SandboxReport>\n");
    out
}

/// An `<Error>` document for requests that were not processed.
pub(crate) fn error_document(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message></Error>",
        escape(code),
        escape(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_elements_and_predefined_entities() {
        let root = parse_document(
            "<?xml version=\"1.0\"?><A><B>x &amp; y &#x4E2D;</B><C/><D><![CDATA[<raw>]]></D></A>".as_bytes(),
        )
        .expect("valid");
        assert_eq!(root.name, "A");
        assert_eq!(root.child("B").map(|b| b.text.as_str()), Some("x & y 中"));
        assert!(root.child("C").is_some());
        assert_eq!(root.child("D").map(|b| b.text.as_str()), Some("<raw>"));
    }

    #[test]
    fn doctype_and_custom_entities_are_refused_not_expanded() {
        let bomb =
            "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;\">]><A>&lol2;</A>";
        assert_eq!(parse_document(bomb.as_bytes()), Err(xmlguard::Refused::Doctype.into()));
        assert_eq!(parse_document(b"<A>&xxe;</A>"), Err(xmlguard::Refused::Entity("xxe".into()).into()));
    }

    #[test]
    fn malformed_documents_are_refused_with_a_reason() {
        assert!(matches!(parse_document(b"<A><B></A>"), Err(XmlError::Syntax { .. })));
        assert!(matches!(parse_document(b"<A>"), Err(XmlError::Syntax { .. })));
        let error = parse_document("<A>\n  <B>中文</C>\n</A>".as_bytes()).expect_err("mismatched");
        assert_eq!(error.line_column(), Some((2, 8)), "the end tag </C> starts at column 8: {error}");
        assert_eq!(parse_document(b""), Err(XmlError::Empty));
        assert_eq!(parse_document(b"<A/><B/>"), Err(XmlError::SecondRoot));
        assert_eq!(parse_document(&[0xff, 0xfe]), Err(XmlError::NotUtf8));
        assert_eq!(parse_document(b"<a><b><c><d><e><f><g/></f></e></d></c></b></a>"), Err(XmlError::TooDeep));
    }
}

//! Row-wise reading of the partners' XML lists (`<LoanList><Loan>…`,
//! `<KZQQList><KZQQ>…`). Each row is cut out of the document and parsed on
//! its own, so one broken row (an element never closed) is one bad row for
//! quarantine and the rest of the page goes on. Rows are flat: child
//! elements with text; the row's attributes are kept as `@name`. Every event
//! goes through `xmlguard`: a document type declaration is refused (no entity
//! expansion, ever), and only the predefined entities are resolved.

use std::collections::HashMap;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// Why a list or one of its rows could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlListError {
    /// Markup no partner may send (`xmlguard`).
    #[error(transparent)]
    Refused(#[from] xmlguard::Refused),
    /// Not well-formed XML (quick-xml's reason), with where it was met.
    #[error("{0}")]
    Syntax(String),
    /// The document has no list element.
    #[error("no <{0}> element")]
    NoList(String),
    /// Something else came before the list element.
    #[error("expected <{list}>, found {found}")]
    NotList {
        /// The list element expected.
        list: String,
        /// What came instead (quick-xml's event).
        found: String,
    },
    /// The list's end tag is missing: the page was cut.
    #[error("<{0}> is not closed (the page is incomplete)")]
    ListNotClosed(String),
    /// A row that is not the expected element.
    #[error("expected <{0}>")]
    NotRow(String),
    /// A row's end tag is missing.
    #[error("<{0}> is not closed")]
    RowNotClosed(String),
    /// A field element opened inside another.
    #[error("a field element is not closed")]
    FieldNotClosed,
    /// A field closed by the end tag of another.
    #[error("<{0}> is closed by another element")]
    ClosedByAnother(String),
    /// Text or CDATA between fields.
    #[error("{0} outside a field")]
    OutsideField(&'static str),
    /// An end tag with nothing open.
    #[error("unexpected end tag")]
    UnexpectedEnd,
    /// A declaration, instruction or comment inside a row.
    #[error("unexpected markup inside a row")]
    MarkupInRow,
}

fn syntax(error: impl std::fmt::Display) -> XmlListError {
    XmlListError::Syntax(error.to_string())
}

/// A row's child elements by name, and its attributes as `@name`.
pub type Fields = HashMap<String, String>;

/// One row as cut from the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The row's text, for quarantine.
    pub raw: String,
    /// Its fields, or why it could not be read.
    pub fields: Result<Fields, XmlListError>,
}

/// A list: its own attributes and its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    /// The list element's attributes.
    pub attributes: HashMap<String, String>,
    /// Its rows, in document order.
    pub rows: Vec<Row>,
}

fn local_name(start: &BytesStart<'_>) -> String {
    AsRef::<str>::as_ref(&start.local_name()).to_owned()
}

fn attributes(start: &BytesStart<'_>) -> Result<HashMap<String, String>, XmlListError> {
    let mut map = HashMap::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(syntax)?;
        let key = AsRef::<str>::as_ref(&attribute.key.local_name()).to_owned();
        let value = attribute.normalized_value(quick_xml::XmlVersion::Implicit1_0).map_err(syntax)?.into_owned();
        map.insert(key, value);
    }
    Ok(map)
}

/// Splits `text` into the rows `<row>` of the list `<list>`.
pub fn split(text: &str, list: &str, row: &str) -> Result<List, XmlListError> {
    // The list's start tag.
    let mut reader = Reader::from_str(text);
    let list_attributes = loop {
        let event = reader.read_event().map_err(|e| syntax(format!("before <{list}>: {e}")))?;
        xmlguard::check(&event)?;
        match event {
            Event::Start(start) if local_name(&start) == list => break attributes(&start)?,
            Event::Empty(start) if local_name(&start) == list => {
                return Ok(List { attributes: attributes(&start)?, rows: Vec::new() });
            }
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Text(t) if t.xml10_content().trim().is_empty() => {}
            Event::Eof => return Err(XmlListError::NoList(list.to_owned())),
            other => return Err(XmlListError::NotList { list: list.to_owned(), found: format!("{other:?}") }),
        }
    };
    let body_start = usize::try_from(reader.buffer_position()).unwrap_or(text.len()).min(text.len());
    let close = format!("</{list}>");
    let body_end = text.rfind(&close).ok_or_else(|| XmlListError::ListNotClosed(list.to_owned()))?;
    if body_end < body_start {
        return Err(XmlListError::ListNotClosed(list.to_owned()));
    }
    let body = &text[body_start..body_end];

    let open_plain = format!("<{row}>");
    let open_attr = format!("<{row} ");
    let end_tag = format!("</{row}>");
    let starts: Vec<usize> = body
        .match_indices(&open_plain)
        .chain(body.match_indices(&open_attr))
        .map(|(i, _)| i)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut rows = Vec::with_capacity(starts.len());
    for (n, &start) in starts.iter().enumerate() {
        let limit = starts.get(n + 1).copied().unwrap_or(body.len());
        let segment = &body[start..limit];
        let raw = match segment.find(&end_tag) {
            Some(end) => &segment[..end + end_tag.len()],
            None => segment.trim_end(),
        };
        rows.push(Row { raw: raw.to_owned(), fields: parse_row(raw, row) });
    }
    Ok(List { attributes: list_attributes, rows })
}

/// Parses one flat row.
fn parse_row(raw: &str, row: &str) -> Result<Fields, XmlListError> {
    let mut reader = Reader::from_str(raw);
    let mut fields = Fields::new();
    let mut current: Option<(String, String)> = None;
    let mut opened = false;
    loop {
        let event = reader.read_event().map_err(syntax)?;
        xmlguard::check(&event)?;
        match event {
            Event::Start(start) if !opened => {
                if local_name(&start) != row {
                    return Err(XmlListError::NotRow(row.to_owned()));
                }
                opened = true;
                for (k, v) in attributes(&start)? {
                    fields.insert(format!("@{k}"), v);
                }
            }
            Event::Start(start) => {
                if current.is_some() {
                    return Err(XmlListError::FieldNotClosed);
                }
                current = Some((local_name(&start), String::new()));
            }
            Event::Empty(start) => {
                if current.is_some() {
                    return Err(XmlListError::FieldNotClosed);
                }
                fields.insert(local_name(&start), String::new());
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                match &mut current {
                    Some((_, text)) => text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => return Err(XmlListError::OutsideField("text")),
                }
            }
            Event::CData(c) => match &mut current {
                Some((_, text)) => text.push_str(&c),
                None => return Err(XmlListError::OutsideField("CDATA")),
            },
            Event::GeneralRef(r) => {
                let resolved = xmlguard::reference(&r)?;
                match &mut current {
                    Some((_, text)) => text.push(resolved),
                    None => return Err(XmlListError::OutsideField("text")),
                }
            }
            Event::End(end) => match current.take() {
                Some((name, text)) => {
                    if AsRef::<str>::as_ref(&end.local_name()) != name {
                        return Err(XmlListError::ClosedByAnother(name));
                    }
                    fields.insert(name, text);
                }
                None if AsRef::<str>::as_ref(&end.local_name()) == row => return Ok(fields),
                None => return Err(XmlListError::UnexpectedEnd),
            },
            Event::Eof => return Err(XmlListError::RowNotClosed(row.to_owned())),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {
                return Err(XmlListError::MarkupInRow);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_row_is_one_bad_row() {
        let text = "<?xml version=\"1.0\"?>\n<LoanList page=\"1\" pages=\"2\"><Loan><A>1</A><B>x &amp; y</B></Loan>\
                    <Loan><A>2<B>z</B></Loan><Loan><A>3</A><B/></Loan></LoanList>";
        let list = split(text, "LoanList", "Loan").expect("list");
        assert_eq!(list.attributes["pages"], "2");
        assert_eq!(list.rows.len(), 3);
        let first = list.rows[0].fields.as_ref().expect("first");
        assert_eq!((first["A"].as_str(), first["B"].as_str()), ("1", "x & y"));
        assert!(list.rows[1].fields.is_err());
        assert_eq!(list.rows[1].raw, "<Loan><A>2<B>z</B></Loan>");
        assert_eq!(list.rows[2].fields.as_ref().expect("third")["B"], "");
    }

    #[test]
    fn row_attributes_are_kept_and_doctypes_refused() {
        let list = split("<L><R seq=\"7\"><X>a</X></R></L>", "L", "R").expect("list");
        assert_eq!(list.rows[0].fields.as_ref().expect("row")["@seq"], "7");
        assert!(split("<!DOCTYPE L [<!ENTITY x \"y\">]><L></L>", "L", "R").is_err());
        assert!(split("<L><R><X>a</X></R>", "L", "R").is_err(), "a cut page is not a page");
        assert_eq!(split("<L/>", "L", "R").expect("empty").rows, Vec::new());
    }
}

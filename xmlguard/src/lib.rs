//! The one guard on XML that comes from outside (court pushes, the court
//! platform's and the provident fund's lists). Readers call it on every
//! event quick-xml gives them:
//!
//! - a `DOCTYPE` is refused wherever it appears, so no entity can be declared
//!   and nothing is ever expanded (billion laughs, external entities);
//! - a general reference resolves only to the five predefined entities and
//!   character references; any other name is refused.
//!
//! quick-xml itself never expands entities; this crate is what decides, in
//! one place, which markup a partner may send.
//!
//! # Layout
//!
//! - `lib.rs`: [`check`], [`reference`] and [`Refused`].

use quick_xml::events::{BytesRef, Event};

/// Markup a partner may not send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A document type declaration.
    #[error("DOCTYPE declarations are not allowed")]
    Doctype,
    /// A reference to an entity other than the predefined five.
    #[error("entity &{0}; is not allowed (only &lt; &gt; &amp; &apos; &quot; and character references)")]
    Entity(String),
}

/// Refuses the events no partner document may hold (a `DOCTYPE`).
pub fn check(event: &Event<'_>) -> Result<(), Refused> {
    match event {
        Event::DocType(_) => Err(Refused::Doctype),
        _ => Ok(()),
    }
}

/// The character a general reference stands for: one of the five
/// predefined entities or a character reference (`&#20013;`, `&#x4E2D;`).
pub fn reference(r: &BytesRef<'_>) -> Result<char, Refused> {
    let name: &str = r;
    Ok(match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => match r.resolve_char_ref() {
            Ok(Some(c)) => c,
            _ => return Err(Refused::Entity(name.to_owned())),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use quick_xml::Reader;

    /// Every event of `text` through the guard; the text it resolves to, or the first refusal.
    fn read(text: &str) -> Result<String, Refused> {
        let mut reader = Reader::from_str(text);
        let mut out = String::new();
        loop {
            let event = reader.read_event().expect("well-formed");
            check(&event)?;
            match event {
                Event::Text(t) => out.push_str(&t.xml10_content()),
                Event::GeneralRef(r) => out.push(reference(&r)?),
                Event::Eof => return Ok(out),
                _ => {}
            }
        }
    }

    #[test]
    fn predefined_entities_and_character_references_resolve() {
        assert_eq!(read("<A>&lt;&gt;&amp;&apos;&quot;&#20013;&#x6587;</A>"), Ok("<>&'\"中文".to_owned()));
    }

    #[test]
    fn doctypes_and_other_entities_are_refused_not_expanded() {
        let bomb =
            "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;\">]><A>&lol2;</A>";
        assert_eq!(read(bomb), Err(Refused::Doctype));
        let external = "<!DOCTYPE A [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><A>&xxe;</A>";
        assert_eq!(read(external), Err(Refused::Doctype));
        assert_eq!(read("<A>&xxe;</A>"), Err(Refused::Entity("xxe".into())));
        assert_eq!(read("<A>&#xFFFFFFFF;</A>"), Err(Refused::Entity("#xFFFFFFFF".into())));
    }
}

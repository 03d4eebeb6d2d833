//! A post's body from whichever of Ghost's fields hold it, as the site
//! format takes it: Markdown when the post is one markdown card (written
//! as the writer wrote it, nothing lost), otherwise HTML (`format =
//! "html"`): Ghost's own `html` when the export has it, else rendered
//! here from `lexical` or `mobiledoc`. Ghost 0.x's `markdown` field is
//! the writer's source too, when no later format is present.
//!
//! Invariant: `__GHOST_URL__` (Ghost's placeholder for its own address)
//! never survives: links and images become site-relative (`/content/...`).

use serde_json::Value;

use super::cards::Notes;
use super::export::Entry;
use super::{lexical, mobiledoc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Html,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Markdown => "markdown",
            Format::Html => "html",
        }
    }
}

#[derive(Debug)]
pub struct Body {
    pub text: String,
    pub format: Format,
    /// Where it came from, for the report: `html`, `lexical`, ...
    pub source: &'static str,
    pub notes: Notes,
}

/// Ghost's placeholder for its own URL removed: `__GHOST_URL__/x` is `/x`
/// and a bare `__GHOST_URL__` (a link home) is `/`.
pub fn site_relative(s: &str) -> String {
    s.replace("__GHOST_URL__/", "/")
        .replace("__GHOST_URL__", "/")
}

/// The body of `e`; `Err` names the field whose JSON is broken.
pub fn of(e: &Entry) -> Result<Body, String> {
    let lexical = parse(e.lexical.as_deref(), "lexical")?;
    let mobiledoc = parse(e.mobiledoc.as_deref(), "mobiledoc")?;
    let single = lexical
        .as_ref()
        .and_then(lexical::single_markdown)
        .or_else(|| mobiledoc.as_ref().and_then(mobiledoc::single_markdown))
        // Ghost 0.x kept the writer's Markdown itself; later versions
        // still export the field, stale, beside mobiledoc or lexical.
        .or_else(|| match (&lexical, &mobiledoc) {
            (None, None) => e.markdown.clone(),
            _ => None,
        });
    let mut notes = Notes::default();
    let (text, format, source) = if let Some(md) = single {
        (md, Format::Markdown, "markdown card")
    } else if let Some(html) = &e.html {
        (html.clone(), Format::Html, "html")
    } else if let Some(doc) = &lexical {
        let html = lexical::render(doc, &mut notes).map_err(|m| format!("lexical: {m}"))?;
        (html, Format::Html, "lexical")
    } else if let Some(doc) = &mobiledoc {
        let html = mobiledoc::render(doc, &mut notes).map_err(|m| format!("mobiledoc: {m}"))?;
        (html, Format::Html, "mobiledoc")
    } else {
        (String::new(), Format::Html, "empty")
    };
    let mut text = site_relative(&text);
    if !text.ends_with('\n') && !text.is_empty() {
        text.push('\n');
    }
    Ok(Body {
        text,
        format,
        source,
        notes,
    })
}

/// Ghost stores mobiledoc and lexical as JSON inside a JSON string.
fn parse(raw: Option<&str>, field: &str) -> Result<Option<Value>, String> {
    match raw {
        None => Ok(None),
        Some(s) => serde_json::from_str(s)
            .map(Some)
            .map_err(|e| format!("{field}: not valid JSON ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(html: Option<&str>, mobiledoc: Option<&str>, lexical: Option<&str>) -> Entry {
        Entry {
            html: html.map(str::to_string),
            mobiledoc: mobiledoc.map(str::to_string),
            lexical: lexical.map(str::to_string),
            ..Entry::default()
        }
    }

    #[test]
    fn which_field_wins() {
        let md_card = r#"{"version":"0.3.1","cards":[["markdown",{"markdown":"![a](__GHOST_URL__/content/images/a.png)"}]],"sections":[[10,0]]}"#;
        let lex = r#"{"root":{"children":[{"type":"paragraph","children":[{"type":"text","text":"lex","format":0}]}]}}"#;
        let mob = r#"{"version":"0.3.1","sections":[[1,"p",[[0,[],0,"mob"]]]]}"#;
        let cases = [
            (
                entry(Some("<p>h</p>"), Some(md_card), None),
                "![a](/content/images/a.png)\n",
                Format::Markdown,
            ),
            (
                entry(Some("<a href=\"__GHOST_URL__\">home</a>"), Some(mob), None),
                "<a href=\"/\">home</a>\n",
                Format::Html,
            ),
            (
                entry(None, Some(mob), Some(lex)),
                "<p>lex</p>\n",
                Format::Html,
            ),
            (entry(None, Some(mob), None), "<p>mob</p>\n", Format::Html),
            (entry(None, None, None), "", Format::Html),
            (
                Entry {
                    markdown: Some("*old*".into()),
                    html: Some("<p>x</p>".into()),
                    ..Entry::default()
                },
                "*old*\n",
                Format::Markdown,
            ),
            (
                Entry {
                    markdown: Some("stale".into()),
                    ..entry(Some("<p>new</p>"), Some(mob), None)
                },
                "<p>new</p>\n",
                Format::Html,
            ),
        ];
        for (e, text, format) in cases {
            let b = of(&e).unwrap();
            assert_eq!((b.text.as_str(), b.format), (text, format), "{e:?}");
        }
    }

    #[test]
    fn broken_json_names_the_field() {
        let e = entry(None, Some("{nope"), None);
        assert!(of(&e).unwrap_err().starts_with("mobiledoc: not valid JSON"));
        let e = entry(None, None, Some(r#"{"root":{}}"#));
        assert_eq!(of(&e).unwrap_err(), "lexical: root has no children array");
    }
}

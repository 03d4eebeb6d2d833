//! Mobiledoc (Ghost 1 to 4's body format, version 0.3.x) rendered to HTML.
//!
//! A mobiledoc is `{version, markups, atoms, cards, sections}`: sections
//! are `[1, tag, markers]` (a paragraph, heading or quote), `[2, src]`
//! (an image), `[3, "ul"|"ol", [markers...]]` (a list) and `[10, n]`
//! (card n); a marker is `[0 text | 1 atom, opened markup indexes,
//! number of markups closed after it, text or atom index]`. Invariants:
//! markups opened in a section are all closed by its end, so the HTML
//! nests whatever the counts say; a structurally broken document is an
//! error (the export is broken), an unknown tag, atom or card is noted.

use serde_json::Value;

use super::cards::{self, escape, Notes};

/// The Markdown of a document that is one markdown card and nothing
/// else: such a body is written as Markdown, losing nothing.
pub fn single_markdown(doc: &Value) -> Option<String> {
    let sections = doc.get("sections")?.as_array()?;
    let [only] = sections.as_slice() else {
        return None;
    };
    let index = match only.as_array()?.as_slice() {
        [kind, index] if kind.as_u64() == Some(10) => index.as_u64()?,
        _ => return None,
    };
    let card = doc
        .get("cards")?
        .as_array()?
        .get(usize::try_from(index).ok()?)?;
    match card.as_array()?.as_slice() {
        [name, payload] if matches!(name.as_str(), Some("markdown" | "card-markdown")) => {
            payload.get("markdown")?.as_str().map(str::to_string)
        }
        _ => None,
    }
}

/// The document as HTML; `Err` says what is structurally wrong.
pub fn render(doc: &Value, notes: &mut Notes) -> Result<String, String> {
    let doc = Doc {
        markups: list(doc, "markups")?,
        atoms: list(doc, "atoms")?,
        cards: list(doc, "cards")?,
        sections: list(doc, "sections")?,
    };
    let mut out = String::new();
    for (i, section) in doc.sections.iter().enumerate() {
        doc.section(section, &mut out, notes)
            .map_err(|e| format!("sections[{i}]: {e}"))?;
    }
    Ok(out)
}

fn list<'a>(doc: &'a Value, key: &str) -> Result<&'a [Value], String> {
    match doc.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(format!("{key} is not an array")),
    }
}

struct Doc<'a> {
    markups: &'a [Value],
    atoms: &'a [Value],
    cards: &'a [Value],
    sections: &'a [Value],
}

fn index(v: Option<&Value>, what: &str) -> Result<usize, String> {
    v.and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("{what} is not an index"))
}

impl Doc<'_> {
    fn section(&self, section: &Value, out: &mut String, notes: &mut Notes) -> Result<(), String> {
        let s = section.as_array().ok_or("not an array")?;
        match s.first().and_then(Value::as_u64) {
            Some(1) => {
                let tag = s.get(1).and_then(Value::as_str).unwrap_or("p");
                let (open, close) = match tag.to_ascii_lowercase().as_str() {
                    t @ ("p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "blockquote") => {
                        (format!("<{t}>"), format!("</{t}>"))
                    }
                    "aside" | "pull-quote" => (
                        "<blockquote class=\"kg-blockquote-alt\">".into(),
                        "</blockquote>".into(),
                    ),
                    other => {
                        notes.note(format!("section tag '{other}'"));
                        ("<p>".into(), "</p>".into())
                    }
                };
                let inner = self.markers(s.get(2), notes)?;
                out.push_str(&format!("{open}{inner}{close}\n"));
            }
            Some(2) => {
                let src = s.get(1).and_then(Value::as_str).unwrap_or("");
                out.push_str(&format!("<img src=\"{}\" alt=\"\">\n", escape(src)));
            }
            Some(3) => {
                let tag = match s.get(1).and_then(Value::as_str) {
                    Some("ol") => "ol",
                    _ => "ul",
                };
                let items = s
                    .get(2)
                    .and_then(Value::as_array)
                    .ok_or("list without items")?;
                out.push_str(&format!("<{tag}>"));
                for item in items {
                    out.push_str(&format!("<li>{}</li>", self.markers(Some(item), notes)?));
                }
                out.push_str(&format!("</{tag}>\n"));
            }
            Some(10) => {
                let i = index(s.get(1), "card")?;
                let card = self.cards.get(i).and_then(Value::as_array);
                let card = card.ok_or_else(|| format!("card {i} does not exist"))?;
                let name = card.first().and_then(Value::as_str).unwrap_or("");
                out.push_str(&cards::render(
                    name,
                    card.get(1).unwrap_or(&Value::Null),
                    notes,
                ));
            }
            _ => {
                notes.note(format!(
                    "section type {}",
                    s.first().unwrap_or(&Value::Null)
                ));
            }
        }
        Ok(())
    }

    /// A run of markers, with markups opened and closed as they say.
    fn markers(&self, markers: Option<&Value>, notes: &mut Notes) -> Result<String, String> {
        let markers = match markers {
            None | Some(Value::Null) => return Ok(String::new()),
            Some(m) => m.as_array().ok_or("markers are not an array")?,
        };
        let mut out = String::new();
        let mut open: Vec<String> = Vec::new();
        for m in markers {
            let m = m.as_array().ok_or("a marker is not an array")?;
            for i in m.get(1).and_then(Value::as_array).into_iter().flatten() {
                let i = index(Some(i), "markup")?;
                let markup = self
                    .markups
                    .get(i)
                    .ok_or_else(|| format!("markup {i} does not exist"))?;
                let (start, end) = markup_tags(markup, notes);
                out.push_str(&start);
                open.push(end);
            }
            match m.first().and_then(Value::as_u64) {
                Some(1) => out.push_str(&self.atom(index(m.get(3), "atom")?, notes)?),
                _ => out.push_str(&escape(m.get(3).and_then(Value::as_str).unwrap_or(""))),
            }
            // More closes than open markups is nonsense; it closes them all
            // (and a count of 2^64 must not loop that long).
            let closed = m.get(2).and_then(Value::as_u64).unwrap_or(0);
            let closed = usize::try_from(closed)
                .unwrap_or(usize::MAX)
                .min(open.len());
            for _ in 0..closed {
                out.push_str(&open.pop().unwrap_or_default());
            }
        }
        while let Some(end) = open.pop() {
            out.push_str(&end);
        }
        Ok(out)
    }

    fn atom(&self, i: usize, notes: &mut Notes) -> Result<String, String> {
        let atom = self.atoms.get(i).and_then(Value::as_array);
        let atom = atom.ok_or_else(|| format!("atom {i} does not exist"))?;
        let name = atom.first().and_then(Value::as_str).unwrap_or("");
        let text = atom.get(1).and_then(Value::as_str).unwrap_or("");
        Ok(match name {
            "soft-return" => "<br>".into(),
            other => {
                notes.note(format!("atom '{other}'"));
                escape(text)
            }
        })
    }
}

/// The opening and closing tags of a markup `[tag, [name, value, ...]]`;
/// a tag outside mobiledoc's list is dropped (its text kept) and noted.
fn markup_tags(markup: &Value, notes: &mut Notes) -> (String, String) {
    let tag = markup
        .get(0)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    if !matches!(
        tag.as_str(),
        "a" | "b" | "strong" | "i" | "em" | "s" | "u" | "sub" | "sup" | "code"
    ) {
        notes.note(format!("markup '{tag}'"));
        return (String::new(), String::new());
    }
    let mut start = format!("<{tag}");
    let attrs = markup
        .get(1)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for pair in attrs.chunks(2) {
        let name = pair[0].as_str().unwrap_or("");
        let value = pair.get(1).and_then(Value::as_str).unwrap_or("");
        if !name.is_empty() && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
            start.push_str(&format!(" {name}=\"{}\"", escape(value)));
        }
    }
    start.push('>');
    (start, format!("</{tag}>"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(markups: Value, atoms: Value, cards: Value, sections: Value) -> Value {
        json!({"version": "0.3.1", "markups": markups, "atoms": atoms, "cards": cards, "sections": sections})
    }

    #[test]
    fn sections_markups_atoms_cards() {
        let none = json!([]);
        let cases: Vec<(Value, &str)> = vec![
            (doc(none.clone(), none.clone(), none.clone(), json!([[1, "p", [[0, [], 0, "a < b"]]]])), "<p>a &lt; b</p>\n"),
            (doc(none.clone(), none.clone(), none.clone(), json!([[1, "h2", [[0, [], 0, "T"]]]])), "<h2>T</h2>\n"),
            (doc(none.clone(), none.clone(), none.clone(), json!([[1, "blockquote", [[0, [], 0, "q"]]]])), "<blockquote>q</blockquote>\n"),
            (doc(none.clone(), none.clone(), none.clone(), json!([[1, "aside", [[0, [], 0, "q"]]]])), "<blockquote class=\"kg-blockquote-alt\">q</blockquote>\n"),
            // Nested markups: strong opens, em opens, one closes, then the other.
            (
                doc(json!([["strong"], ["em"], ["a", ["href", "https://x.org/?a=1&b=\"2\""]]]), none.clone(), none.clone(),
                    json!([[1, "p", [[0, [0], 0, "b"], [0, [1], 2, "bi"], [0, [2], 1, "link"], [0, [], 0, " end"]]]])),
                "<p><strong>b<em>bi</em></strong><a href=\"https://x.org/?a=1&amp;b=&quot;2&quot;\">link</a> end</p>\n",
            ),
            // Unclosed markups are closed at the end of the section.
            (doc(json!([["code"]]), none.clone(), none.clone(), json!([[1, "p", [[0, [0], 0, "x"]]]])), "<p><code>x</code></p>\n"),
            (doc(none.clone(), json!([["soft-return", "", {}]]), none.clone(), json!([[1, "p", [[0, [], 0, "a"], [1, [], 0, 0], [0, [], 0, "b"]]]])), "<p>a<br>b</p>\n"),
            (doc(none.clone(), none.clone(), none.clone(), json!([[2, "/content/images/x.png"]])), "<img src=\"/content/images/x.png\" alt=\"\">\n"),
            (doc(none.clone(), none.clone(), none.clone(), json!([[3, "ol", [[[0, [], 0, "one"]], [[0, [], 0, "two"]]]]])), "<ol><li>one</li><li>two</li></ol>\n"),
            (doc(none.clone(), none.clone(), none.clone(), json!([[3, "ul", [[[0, [], 0, "x"]]]]])), "<ul><li>x</li></ul>\n"),
            (doc(none.clone(), none.clone(), json!([["hr", {}], ["code", {"code": "<x>"}]]), json!([[10, 1], [10, 0]])), "<pre><code>&lt;x&gt;</code></pre>\n<hr>\n"),
        ];
        for (d, want) in cases {
            let mut notes = Notes::default();
            assert_eq!(render(&d, &mut notes).unwrap(), want, "{d}");
            assert!(notes.unknown.is_empty(), "{notes:?}");
        }
    }

    #[test]
    fn unknown_things_are_noted_not_fatal() {
        let d = doc(
            json!([["blink"]]),
            json!([["mention", "@jo", {}]]),
            json!([["nft", {"x": 1}]]),
            json!([
                [1, "p", [[0, [0], 1, "t"], [1, [], 0, 0]]],
                [10, 0],
                [7, "?"]
            ]),
        );
        let mut notes = Notes::default();
        let html = render(&d, &mut notes).unwrap();
        assert_eq!(html.lines().next(), Some("<p>t@jo</p>"));
        assert!(
            html.contains("<!-- ghost card 'nft' not imported: {\"x\":1} -->"),
            "{html}"
        );
        assert_eq!(
            notes.unknown,
            [
                "markup 'blink'",
                "atom 'mention'",
                "card 'nft'",
                "section type 7"
            ]
        );
    }

    #[test]
    fn absurd_counts_and_shapes_do_not_hang_or_panic() {
        let d = doc(
            json!([["em"], ["a", ["href"]], "x", []]),
            json!([[], "y"]),
            json!([[], ["image"], "z"]),
            json!([
                [
                    1,
                    "p",
                    [[0, [0], u64::MAX, "a"], [0, [1], 0, 5], [0, [], 3, null]]
                ],
                [1, 7, null],
                [3, "ol", [[[0, [], 0, "i"]], 3]],
                [10, 1],
                [2],
                []
            ]),
        );
        // Either rendered or an error naming the section: never a panic.
        let _ = render(&d, &mut Notes::default());
        let ok = doc(
            json!([["em"]]),
            json!([]),
            json!([]),
            json!([[1, "p", [[0, [0], u64::MAX, "a"]]]]),
        );
        assert_eq!(
            render(&ok, &mut Notes::default()).unwrap(),
            "<p><em>a</em></p>\n"
        );
    }

    #[test]
    fn broken_structure_is_an_error() {
        let cases = [
            (json!({"sections": 3}), "sections is not an array"),
            (
                json!({"sections": [[10, 5]]}),
                "sections[0]: card 5 does not exist",
            ),
            (
                json!({"sections": [[1, "p", [[0, [9], 0, "x"]]]]}),
                "sections[0]: markup 9 does not exist",
            ),
            (
                json!({"sections": [[1, "p", [[1, [], 0, 0]]]]}),
                "sections[0]: atom 0 does not exist",
            ),
            (json!({"sections": ["p"]}), "sections[0]: not an array"),
        ];
        for (d, want) in cases {
            assert_eq!(render(&d, &mut Notes::default()).unwrap_err(), want);
        }
    }

    #[test]
    fn single_markdown_card_only() {
        let md = doc(
            json!([]),
            json!([]),
            json!([["card-markdown", {"cardName": "card-markdown", "markdown": "# Hi\n"}]]),
            json!([[10, 0]]),
        );
        assert_eq!(single_markdown(&md).as_deref(), Some("# Hi\n"));
        let two = doc(
            json!([]),
            json!([]),
            json!([["markdown", {"markdown": "x"}]]),
            json!([[10, 0], [1, "p", []]]),
        );
        assert_eq!(single_markdown(&two), None);
        let html = doc(
            json!([]),
            json!([]),
            json!([["html", {"html": "x"}]]),
            json!([[10, 0]]),
        );
        assert_eq!(single_markdown(&html), None);
    }
}

//! Lexical (Ghost 5's body format) rendered to HTML.
//!
//! A lexical document is `{"root": {"children": [node...]}}`; element
//! nodes (paragraph, heading, quote, aside, list, listitem, link, code)
//! have `children`, text nodes carry `text` and a `format` bit set (1
//! bold, 2 italic, 4 strikethrough, 8 underline, 16 code, 32 subscript,
//! 64 superscript, 128 highlight), and Ghost's cards (image, markdown,
//! html, codeblock, ...) are leaf nodes whose fields are the card's
//! payload. Invariants: the output nests (every tag opened is closed in
//! the same node); a broken root is an error, an unknown node is noted
//! (its children still rendered, or its fields kept in a comment).

use serde_json::Value;

use super::cards::{self, escape, field, Notes};

/// The Markdown of a document that is one markdown card and nothing else.
pub fn single_markdown(doc: &Value) -> Option<String> {
    let children = doc.get("root")?.get("children")?.as_array()?;
    match children.as_slice() {
        [only] if field(only, "type") == "markdown" => {
            only.get("markdown")?.as_str().map(str::to_string)
        }
        _ => None,
    }
}

/// The document as HTML; `Err` says what is structurally wrong.
pub fn render(doc: &Value, notes: &mut Notes) -> Result<String, String> {
    let root = doc.get("root").ok_or("no root")?;
    let children = root.get("children").and_then(Value::as_array);
    let children = children.ok_or("root has no children array")?;
    let mut out = String::new();
    for child in children {
        node(child, &mut out, notes);
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

fn children(n: &Value, out: &mut String, notes: &mut Notes) {
    for child in n
        .get("children")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        node(child, out, notes);
    }
}

fn wrapped(n: &Value, open: &str, close: &str, out: &mut String, notes: &mut Notes) {
    out.push_str(open);
    children(n, out, notes);
    out.push_str(close);
}

fn node(n: &Value, out: &mut String, notes: &mut Notes) {
    match field(n, "type") {
        "text" | "extended-text" | "code-highlight" => text(n, out),
        "linebreak" => out.push_str("<br>"),
        "tab" => out.push('\t'),
        "paragraph" => {
            let mut inner = String::new();
            children(n, &mut inner, notes);
            // Empty paragraphs are the editor's spacing, not content.
            if !inner.is_empty() {
                out.push_str(&format!("<p>{inner}</p>"));
            }
        }
        "heading" | "extended-heading" => {
            let tag = match field(n, "tag") {
                t @ ("h1" | "h2" | "h3" | "h4" | "h5" | "h6") => t,
                _ => "h2",
            };
            wrapped(n, &format!("<{tag}>"), &format!("</{tag}>"), out, notes);
        }
        "quote" | "extended-quote" => wrapped(n, "<blockquote>", "</blockquote>", out, notes),
        "aside" => wrapped(
            n,
            "<blockquote class=\"kg-blockquote-alt\">",
            "</blockquote>",
            out,
            notes,
        ),
        "list" => list(n, out, notes),
        "listitem" => wrapped(n, "<li>", "</li>", out, notes),
        "link" | "autolink" => {
            let mut open = format!("<a href=\"{}\"", escape(field(n, "url")));
            for key in ["rel", "target", "title"] {
                if !field(n, key).is_empty() {
                    open.push_str(&format!(" {key}=\"{}\"", escape(field(n, key))));
                }
            }
            open.push('>');
            wrapped(n, &open, "</a>", out, notes);
        }
        "code" => {
            // Lexical's own code block: its children are the code's text.
            let mut code = String::new();
            plain(n, &mut code);
            let lang = field(n, "language");
            let class = if lang.is_empty() {
                String::new()
            } else {
                format!(" class=\"language-{}\"", escape(lang))
            };
            out.push_str(&format!("<pre><code{class}>{}</code></pre>", escape(&code)));
        }
        "root" => children(n, out, notes),
        card if is_card(card) => out.push_str(&cards::render(card, n, notes)),
        other if n.get("children").is_some_and(Value::is_array) => {
            notes.note(format!("node '{other}'"));
            children(n, out, notes);
        }
        other => out.push_str(&cards::unknown(&format!("card '{other}'"), n, notes)),
    }
}

/// Lexical's text of a node, without markup: for code blocks.
fn plain(n: &Value, out: &mut String) {
    for child in n
        .get("children")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match field(child, "type") {
            "linebreak" => out.push('\n'),
            "tab" => out.push('\t'),
            _ => {
                out.push_str(field(child, "text"));
                plain(child, out);
            }
        }
    }
}

fn is_card(name: &str) -> bool {
    matches!(
        name,
        "image"
            | "markdown"
            | "html"
            | "codeblock"
            | "horizontalrule"
            | "embed"
            | "bookmark"
            | "gallery"
            | "callout"
            | "button"
            | "toggle"
            | "video"
            | "audio"
            | "file"
            | "header"
            | "paywall"
            | "email"
            | "email-cta"
    )
}

fn list(n: &Value, out: &mut String, notes: &mut Notes) {
    let tag = match (field(n, "listType"), field(n, "tag")) {
        ("number", _) | (_, "ol") => "ol",
        _ => "ul",
    };
    let start = match n.get("start").and_then(Value::as_u64) {
        Some(s) if tag == "ol" && s != 1 => format!(" start=\"{s}\""),
        _ => String::new(),
    };
    wrapped(
        n,
        &format!("<{tag}{start}>"),
        &format!("</{tag}>"),
        out,
        notes,
    );
}

/// Text with its format bits as nested tags, outermost first.
fn text(n: &Value, out: &mut String) {
    const TAGS: [(u64, &str); 8] = [
        (1, "strong"),
        (2, "em"),
        (4, "s"),
        (8, "u"),
        (16, "code"),
        (32, "sub"),
        (64, "sup"),
        (128, "mark"),
    ];
    let format = n.get("format").and_then(Value::as_u64).unwrap_or(0);
    let on: Vec<&str> = TAGS
        .iter()
        .filter(|(bit, _)| format & bit != 0)
        .map(|(_, t)| *t)
        .collect();
    for t in &on {
        out.push_str(&format!("<{t}>"));
    }
    out.push_str(&escape(field(n, "text")));
    for t in on.iter().rev() {
        out.push_str(&format!("</{t}>"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(text: &str, format: u64) -> Value {
        json!({"type": "text", "text": text, "format": format, "detail": 0, "mode": "normal", "style": "", "version": 1})
    }

    fn root(children: Value) -> Value {
        json!({"root": {"type": "root", "children": children, "direction": "ltr", "format": "", "indent": 0, "version": 1}})
    }

    #[test]
    fn every_node_type() {
        let cases: Vec<(Value, &str)> = vec![
            (json!([{"type": "paragraph", "children": [t("a < b", 0)]}]), "<p>a &lt; b</p>\n"),
            (json!([{"type": "paragraph", "children": []}]), "\n"),
            (json!([{"type": "paragraph", "children": [t("b", 1), t("i", 2), t("s", 4), t("u", 8), t("c", 16), t("sub", 32), t("sup", 64), t("m", 128)]}]),
                "<p><strong>b</strong><em>i</em><s>s</s><u>u</u><code>c</code><sub>sub</sub><sup>sup</sup><mark>m</mark></p>\n"),
            (json!([{"type": "paragraph", "children": [t("bi", 3)]}]), "<p><strong><em>bi</em></strong></p>\n"),
            (json!([{"type": "paragraph", "children": [t("a", 0), {"type": "linebreak"}, t("b", 0)]}]), "<p>a<br>b</p>\n"),
            (json!([{"type": "heading", "tag": "h3", "children": [t("H", 0)]}]), "<h3>H</h3>\n"),
            (json!([{"type": "extended-heading", "tag": "h1", "children": [{"type": "extended-text", "text": "H", "format": 0}]}]), "<h1>H</h1>\n"),
            (json!([{"type": "quote", "children": [t("q", 0)]}]), "<blockquote>q</blockquote>\n"),
            (json!([{"type": "aside", "children": [t("q", 0)]}]), "<blockquote class=\"kg-blockquote-alt\">q</blockquote>\n"),
            (json!([{"type": "list", "listType": "bullet", "tag": "ul", "children": [{"type": "listitem", "value": 1, "children": [t("x", 0)]}]}]), "<ul><li>x</li></ul>\n"),
            (json!([{"type": "list", "listType": "number", "tag": "ol", "start": 3, "children": [{"type": "listitem", "children": [t("x", 0)]},
                {"type": "listitem", "children": [{"type": "list", "listType": "bullet", "children": [{"type": "listitem", "children": [t("y", 0)]}]}]}]}]),
                "<ol start=\"3\"><li>x</li><li><ul><li>y</li></ul></li></ol>\n"),
            (json!([{"type": "paragraph", "children": [{"type": "link", "url": "https://x.org/?a&b", "rel": "noopener", "children": [t("l", 1)]}]}]),
                "<p><a href=\"https://x.org/?a&amp;b\" rel=\"noopener\"><strong>l</strong></a></p>\n"),
            (json!([{"type": "code", "language": "sh", "children": [{"type": "code-highlight", "text": "echo <a>"}, {"type": "linebreak"}, {"type": "code-highlight", "text": "ls"}]}]),
                "<pre><code class=\"language-sh\">echo &lt;a&gt;\nls</code></pre>\n"),
            (json!([{"type": "codeblock", "code": "fn main() {}", "language": "rust", "caption": ""}]), "<pre><code class=\"language-rust\">fn main() {}</code></pre>\n"),
            (json!([{"type": "horizontalrule"}]), "<hr>\n"),
            (json!([{"type": "html", "html": "<table><tr><td>1</td></tr></table>"}]), "<table><tr><td>1</td></tr></table>\n"),
            (json!([{"type": "markdown", "markdown": "**m**"}, {"type": "paragraph", "children": [t("p", 0)]}]), "<p><strong>m</strong></p>\n<p>p</p>\n"),
            (json!([{"type": "image", "src": "/content/images/a.jpg", "alt": "a", "caption": ""}]), "<figure class=\"kg-card kg-image-card\"><img src=\"/content/images/a.jpg\" alt=\"a\" loading=\"lazy\"></figure>\n"),
        ];
        for (kids, want) in cases {
            let mut notes = Notes::default();
            assert_eq!(
                render(&root(kids.clone()), &mut notes).unwrap(),
                want,
                "{kids}"
            );
            assert!(notes.unknown.is_empty(), "{notes:?}");
        }
    }

    #[test]
    fn unknown_nodes_are_noted_not_fatal() {
        let doc = root(json!([
            {"type": "fancy-box", "children": [{"type": "paragraph", "children": [t("kept", 0)]}]},
            {"type": "product", "productTitle": "Mug"}
        ]));
        let mut notes = Notes::default();
        let html = render(&doc, &mut notes).unwrap();
        assert!(
            html.starts_with("<p>kept</p>\n<!-- ghost card 'product' not imported: "),
            "{html}"
        );
        assert_eq!(notes.unknown, ["node 'fancy-box'", "card 'product'"]);
    }

    #[test]
    fn broken_root_is_an_error() {
        assert_eq!(
            render(&json!({}), &mut Notes::default()).unwrap_err(),
            "no root"
        );
        assert_eq!(
            render(&json!({"root": {"children": 1}}), &mut Notes::default()).unwrap_err(),
            "root has no children array"
        );
    }

    #[test]
    fn single_markdown_card_only() {
        assert_eq!(
            single_markdown(&root(json!([{"type": "markdown", "markdown": "x"}]))).as_deref(),
            Some("x")
        );
        assert_eq!(
            single_markdown(&root(
                json!([{"type": "markdown", "markdown": "x"}, {"type": "horizontalrule"}])
            )),
            None
        );
    }
}

#[cfg(test)]
mod shape_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn odd_shapes_do_not_panic() {
        let docs = [
            json!({"root": {"children": [1, "x", null, [], {"type": 5}, {"children": "no"}]}}),
            json!({"root": {"children": [{"type": "list", "start": -3, "children": [{"type": "listitem"}]}]}}),
            json!({"root": {"children": [{"type": "text", "format": -1, "text": 7}]}}),
            json!({"root": {"children": [{"type": "code", "children": [{"type": "linebreak"}, {"text": "x"}]}]}}),
        ];
        for d in docs {
            let _ = render(&d, &mut Notes::default());
        }
    }
}

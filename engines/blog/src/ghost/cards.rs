//! Ghost's cards (the blocks its editor inserts: image, code, embed,
//! bookmark, gallery, ...) rendered to HTML, for both body formats:
//! mobiledoc and lexical store a card's payload under the same field
//! names, so one renderer serves both.
//!
//! Owns HTML escaping, the card table and `Notes` (what a body held that
//! could not be carried over). Invariants: text from a payload is escaped
//! unless Ghost stores that field as HTML (captions, `html`, callout
//! text); an unknown card never fails the import: it is noted by name and
//! kept as an HTML comment holding its payload, so nothing is silently lost.

use serde_json::Value;

/// What a body held that the import could not turn into HTML, by name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Notes {
    pub unknown: Vec<String>,
}

impl Notes {
    pub fn note(&mut self, what: String) {
        if !self.unknown.contains(&what) {
            self.unknown.push(what);
        }
    }
}

/// Escapes text for an HTML text node or a double-quoted attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A payload's string field, or "" (absent, null and non-strings alike:
/// a card with a missing field still renders what it has).
pub fn field<'a>(payload: &'a Value, key: &str) -> &'a str {
    payload.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Markdown to HTML with the extensions the blog's own renderer enables,
/// for a markdown card that shares a body with other sections.
pub fn markdown_to_html(md: &str) -> String {
    use pulldown_cmark::{html, Options, Parser};
    let opts = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS;
    let mut out = String::new();
    html::push_html(&mut out, Parser::new_ext(md, opts));
    out
}

/// The `<figcaption>` of a card with a caption (stored as HTML), or "".
fn figcaption(payload: &Value) -> String {
    match field(payload, "caption") {
        "" => String::new(),
        c => format!("<figcaption>{c}</figcaption>"),
    }
}

fn figure(class: &str, payload: &Value, inner: &str) -> String {
    let cap = figcaption(payload);
    let has = if cap.is_empty() {
        ""
    } else {
        " kg-card-hascaption"
    };
    format!("<figure class=\"kg-card {class}{has}\">{inner}{cap}</figure>\n")
}

/// An attribute ` name="value"` when the value is not empty.
fn attr(name: &str, value: &str) -> String {
    if value.is_empty() {
        String::new()
    } else {
        format!(" {name}=\"{}\"", escape(value))
    }
}

fn dimension(payload: &Value, key: &str) -> String {
    match payload.get(key) {
        Some(Value::Number(n)) => format!(" {key}=\"{n}\""),
        _ => String::new(),
    }
}

fn img(payload: &Value) -> String {
    format!(
        "<img src=\"{}\" alt=\"{}\"{}{}{} loading=\"lazy\">",
        escape(field(payload, "src")),
        escape(field(payload, "alt")),
        attr("title", field(payload, "title")),
        dimension(payload, "width"),
        dimension(payload, "height"),
    )
}

/// Renders one card. `name` is the card's type; mobiledoc's older names
/// (`card-markdown`, `code`, `hr`) are the same cards as lexical's.
pub fn render(name: &str, payload: &Value, notes: &mut Notes) -> String {
    match name {
        "markdown" | "card-markdown" => markdown_to_html(field(payload, "markdown")),
        "html" => format!("{}\n", field(payload, "html")),
        "hr" | "horizontalrule" => "<hr>\n".into(),
        "image" => image(payload),
        "code" | "codeblock" => code(payload),
        "embed" => embed(payload),
        "bookmark" => bookmark(payload),
        "gallery" => gallery(payload),
        "callout" => format!(
            "<div class=\"kg-card kg-callout-card\"><div class=\"kg-callout-emoji\">{}</div>\
             <div class=\"kg-callout-text\">{}</div></div>\n",
            escape(field(payload, "calloutEmoji")),
            field(payload, "calloutText")
        ),
        "button" => format!(
            "<div class=\"kg-card kg-button-card\"><a href=\"{}\" class=\"kg-btn\">{}</a></div>\n",
            escape(field(payload, "buttonUrl")),
            escape(field(payload, "buttonText"))
        ),
        "toggle" => format!(
            "<details class=\"kg-card kg-toggle-card\"><summary>{}</summary>{}</details>\n",
            field(payload, "heading"),
            field(payload, "content")
        ),
        "video" => figure(
            "kg-video-card",
            payload,
            &format!(
                "<video src=\"{}\" controls{}{}></video>",
                escape(field(payload, "src")),
                dimension(payload, "width"),
                dimension(payload, "height")
            ),
        ),
        "audio" => format!(
            "<div class=\"kg-card kg-audio-card\"><audio src=\"{}\" controls></audio>\
             <div class=\"kg-audio-title\">{}</div></div>\n",
            escape(field(payload, "src")),
            escape(field(payload, "title"))
        ),
        "file" => file(payload),
        "header" => header(payload),
        // Where members-only content starts on Ghost; kept as Ghost
        // writes it in its own HTML.
        "paywall" => "<!--members-only-->\n".into(),
        // Content Ghost puts only in newsletters, never on the web page.
        "email" | "email-cta" => String::new(),
        other => unknown(&format!("card '{other}'"), payload, notes),
    }
}

/// Notes `what` and keeps the payload in an HTML comment (with `--`
/// broken up so the comment cannot end early).
pub fn unknown(what: &str, payload: &Value, notes: &mut Notes) -> String {
    notes.note(what.to_string());
    let raw = payload.to_string().replace("--", "- -");
    format!("<!-- ghost {what} not imported: {raw} -->\n")
}

fn image(payload: &Value) -> String {
    let mut inner = img(payload);
    let href = field(payload, "href");
    if !href.is_empty() {
        inner = format!("<a href=\"{}\">{inner}</a>", escape(href));
    }
    let width = match field(payload, "cardWidth") {
        "wide" => " kg-width-wide",
        "full" => " kg-width-full",
        _ => "",
    };
    figure(&format!("kg-image-card{width}"), payload, &inner)
}

fn code(payload: &Value) -> String {
    let lang = field(payload, "language");
    let class = if lang.is_empty() {
        String::new()
    } else {
        format!(" class=\"language-{}\"", escape(lang))
    };
    let pre = format!(
        "<pre><code{class}>{}</code></pre>",
        escape(field(payload, "code"))
    );
    if field(payload, "caption").is_empty() {
        format!("{pre}\n")
    } else {
        figure("kg-code-card", payload, &pre)
    }
}

fn embed(payload: &Value) -> String {
    let html = field(payload, "html");
    let inner = if html.is_empty() {
        let url = escape(field(payload, "url"));
        format!("<a href=\"{url}\">{url}</a>")
    } else {
        html.to_string()
    };
    figure("kg-embed-card", payload, &inner)
}

fn bookmark(payload: &Value) -> String {
    let meta = payload.get("metadata").unwrap_or(&Value::Null);
    let url = match field(payload, "url") {
        "" => field(meta, "url"),
        u => u,
    };
    let mut content = format!(
        "<div class=\"kg-bookmark-title\">{}</div>",
        escape(field(meta, "title"))
    );
    for (key, class) in [
        ("description", "kg-bookmark-description"),
        ("publisher", "kg-bookmark-publisher"),
    ] {
        if !field(meta, key).is_empty() {
            content.push_str(&format!(
                "<div class=\"{class}\">{}</div>",
                escape(field(meta, key))
            ));
        }
    }
    let inner = format!(
        "<a class=\"kg-bookmark-container\" href=\"{}\"><div class=\"kg-bookmark-content\">{content}</div></a>",
        escape(url)
    );
    figure("kg-bookmark-card", payload, &inner)
}

/// Images in rows as the editor laid them out (`row`, default 0).
fn gallery(payload: &Value) -> String {
    let images = payload.get("images").and_then(Value::as_array);
    let mut rows: Vec<(u64, String)> = Vec::new();
    for image in images.into_iter().flatten() {
        let row = image.get("row").and_then(Value::as_u64).unwrap_or(0);
        let cell = format!("<div class=\"kg-gallery-image\">{}</div>", img(image));
        match rows.iter_mut().find(|(r, _)| *r == row) {
            Some((_, html)) => html.push_str(&cell),
            None => rows.push((row, cell)),
        }
    }
    rows.sort_by_key(|(r, _)| *r);
    let inner: String = rows
        .iter()
        .map(|(_, cells)| format!("<div class=\"kg-gallery-row\">{cells}</div>"))
        .collect();
    figure(
        "kg-gallery-card",
        payload,
        &format!("<div class=\"kg-gallery-container\">{inner}</div>"),
    )
}

fn file(payload: &Value) -> String {
    let name = [field(payload, "fileTitle"), field(payload, "fileName")]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or("download");
    let caption = match field(payload, "fileCaption") {
        "" => String::new(),
        c => format!("<div class=\"kg-file-card-caption\">{}</div>", escape(c)),
    };
    format!(
        "<div class=\"kg-card kg-file-card\"><a href=\"{}\" download>{}</a>{caption}</div>\n",
        escape(field(payload, "src")),
        escape(name)
    )
}

/// Header cards: version 1 says `header`/`subheader`, version 2
/// `heading`/`subheading`; both are stored as HTML.
fn header(payload: &Value) -> String {
    let either = |a: &str, b: &str| match field(payload, a) {
        "" => field(payload, b).to_string(),
        s => s.to_string(),
    };
    let mut inner = format!(
        "<h2 class=\"kg-header-card-header\">{}</h2>",
        either("header", "heading")
    );
    let sub = either("subheader", "subheading");
    if !sub.is_empty() {
        inner.push_str(&format!(
            "<h3 class=\"kg-header-card-subheader\">{sub}</h3>"
        ));
    }
    let (text, url) = (field(payload, "buttonText"), field(payload, "buttonUrl"));
    if !text.is_empty() && !url.is_empty() {
        inner.push_str(&format!(
            "<a href=\"{}\" class=\"kg-header-card-button\">{}</a>",
            escape(url),
            escape(text)
        ));
    }
    format!("<div class=\"kg-card kg-header-card\">{inner}</div>\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_card() {
        let cases: &[(&str, Value, &str)] = &[
            ("markdown", json!({"markdown": "*hi*"}), "<p><em>hi</em></p>\n"),
            ("card-markdown", json!({"markdown": "a | b\n--|--\n1 | 2"}), "<table>"),
            ("html", json!({"html": "<div id=x>raw</div>"}), "<div id=x>raw</div>\n"),
            ("hr", json!({}), "<hr>\n"),
            ("horizontalrule", json!({}), "<hr>\n"),
            (
                "image",
                json!({"src": "/content/images/a.png", "alt": "A \"q\"", "caption": "<b>c</b>", "width": 600, "cardWidth": "wide"}),
                "<figure class=\"kg-card kg-image-card kg-width-wide kg-card-hascaption\"><img src=\"/content/images/a.png\" alt=\"A &quot;q&quot;\" width=\"600\" loading=\"lazy\"><figcaption><b>c</b></figcaption></figure>\n",
            ),
            (
                "image",
                json!({"src": "a.png", "href": "https://x.org/"}),
                "<a href=\"https://x.org/\"><img src=\"a.png\" alt=\"\" loading=\"lazy\"></a>",
            ),
            (
                "code",
                json!({"code": "if a < b {}", "language": "rust"}),
                "<pre><code class=\"language-rust\">if a &lt; b {}</code></pre>\n",
            ),
            (
                "codeblock",
                json!({"code": "x", "caption": "cap"}),
                "<figure class=\"kg-card kg-code-card kg-card-hascaption\"><pre><code>x</code></pre><figcaption>cap</figcaption></figure>\n",
            ),
            (
                "embed",
                json!({"html": "<iframe src=\"https://v.example/1\"></iframe>", "url": "https://v.example/1"}),
                "<figure class=\"kg-card kg-embed-card\"><iframe src=\"https://v.example/1\"></iframe></figure>\n",
            ),
            ("embed", json!({"url": "https://v.example/2"}), "<a href=\"https://v.example/2\">https://v.example/2</a>"),
            (
                "bookmark",
                json!({"url": "https://b.example/", "metadata": {"title": "T & U", "description": "D"}}),
                "<a class=\"kg-bookmark-container\" href=\"https://b.example/\"><div class=\"kg-bookmark-content\"><div class=\"kg-bookmark-title\">T &amp; U</div><div class=\"kg-bookmark-description\">D</div></div></a>",
            ),
            (
                "gallery",
                json!({"images": [{"src": "1.png", "row": 1}, {"src": "0.png", "row": 0}, {"src": "0b.png"}]}),
                "<div class=\"kg-gallery-row\"><div class=\"kg-gallery-image\"><img src=\"0.png\" alt=\"\" loading=\"lazy\"></div><div class=\"kg-gallery-image\"><img src=\"0b.png\" alt=\"\" loading=\"lazy\"></div></div><div class=\"kg-gallery-row\"><div class=\"kg-gallery-image\"><img src=\"1.png\"",
            ),
            (
                "callout",
                json!({"calloutEmoji": "💡", "calloutText": "<b>Tip</b>"}),
                "<div class=\"kg-callout-emoji\">💡</div><div class=\"kg-callout-text\"><b>Tip</b></div>",
            ),
            ("button", json!({"buttonUrl": "/x/", "buttonText": "Go <now>"}), "<a href=\"/x/\" class=\"kg-btn\">Go &lt;now&gt;</a>"),
            ("toggle", json!({"heading": "Q", "content": "<p>A</p>"}), "<details class=\"kg-card kg-toggle-card\"><summary>Q</summary><p>A</p></details>"),
            ("video", json!({"src": "/v.mp4"}), "<video src=\"/v.mp4\" controls></video>"),
            ("audio", json!({"src": "/a.mp3", "title": "Ep 1"}), "<audio src=\"/a.mp3\" controls></audio><div class=\"kg-audio-title\">Ep 1</div>"),
            ("file", json!({"src": "/f.pdf", "fileName": "f.pdf"}), "<a href=\"/f.pdf\" download>f.pdf</a>"),
            ("header", json!({"heading": "Big", "subheading": "small"}), "<h2 class=\"kg-header-card-header\">Big</h2><h3 class=\"kg-header-card-subheader\">small</h3>"),
            ("paywall", json!({}), "<!--members-only-->\n"),
            ("email", json!({"html": "<p>only in the newsletter</p>"}), ""),
        ];
        for (name, payload, want) in cases {
            let mut notes = Notes::default();
            let got = render(name, payload, &mut notes);
            assert!(got.contains(want), "{name}: {got:?} lacks {want:?}");
            if !want.is_empty() {
                assert!(!got.is_empty(), "{name}");
            } else {
                assert!(got.is_empty(), "{name}: {got:?}");
            }
            assert!(notes.unknown.is_empty(), "{name}: {notes:?}");
        }
    }

    #[test]
    fn unknown_card_is_noted_and_kept_in_a_comment() {
        let mut notes = Notes::default();
        let got = render("product", &json!({"title": "a --> b"}), &mut notes);
        assert_eq!(notes.unknown, vec!["card 'product'".to_string()]);
        assert!(
            got.starts_with("<!-- ghost card 'product' not imported: "),
            "{got}"
        );
        assert_eq!(got.matches("-->").count(), 1, "{got}");
        assert!(got.contains("a - -> b"), "{got}");
    }

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}

//! A post's body to HTML: CommonMark with tables, footnotes,
//! strikethrough, task lists and heading anchors; fenced code
//! highlighted on the server. Also the body's summary, its plain text
//! (for search) and its internal links and images (for `check`).
//!
//! Owns `Rendered`. Invariants: one pass of the Markdown parser per
//! body; raw HTML in the body is kept (it is the writer's); heading ids
//! are unique within a body.

use std::collections::HashSet;

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};
use serde::{Deserialize, Serialize};

use super::config::line_of;
use super::front::Format;
use super::highlight;
use super::words::{escape_html, slugify};

/// A rendered body.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Rendered {
    pub html: String,
    /// Text before `<!-- more -->`, else the first paragraph, as HTML.
    pub summary: String,
    /// The words of the body, for search.
    pub text: String,
    /// Site-internal link targets (`/...`) with their line in the body
    /// (1-based, body-relative).
    pub links: Vec<(String, usize)>,
    /// Site-internal image sources with their line.
    pub images: Vec<(String, usize)>,
    /// How many words the text has (for reading time).
    #[serde(default)]
    pub words: usize,
}

const MORE: &str = "<!-- more -->";

pub fn render(body: &str, format: Format) -> Rendered {
    let mut out = match format {
        Format::Markdown => markdown(body),
        Format::Html => html(body),
    };
    out.words = out.text.split_whitespace().count();
    // A body with no paragraph (a list, a gallery) still gets a summary:
    // the start of its text.
    if out.summary.trim().is_empty() && !out.text.is_empty() {
        out.summary = format!("<p>{}</p>\n", escape_html(&shorten(&out.text, 300)));
    }
    out
}

/// `text` cut at a word boundary to at most about `max` bytes, with an
/// ellipsis when cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text[..end].rfind(' ').unwrap_or(end);
    format!("{}…", text[..cut].trim_end())
}

fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES
}

fn markdown(body: &str) -> Rendered {
    let mut out = Rendered::default();
    let mut events: Vec<Event> = Vec::new();
    let mut ids = HashSet::new();
    let mut heading: Option<(pulldown_cmark::HeadingLevel, Option<String>, Vec<Event>)> = None;
    let mut code: Option<(String, String)> = None;
    for (event, range) in Parser::new_ext(body, options()).into_offset_iter() {
        let line = line_of(body, range.start);
        match &event {
            Event::Text(t) | Event::Code(t) => {
                out.text.push_str(t);
            }
            Event::SoftBreak | Event::HardBreak | Event::End(_) => out.text.push(' '),
            Event::Html(h) | Event::InlineHtml(h) => scan_html(h, line, &mut out),
            Event::Start(Tag::Link { dest_url, .. }) => internal(&mut out.links, dest_url, line),
            Event::Start(Tag::Image { dest_url, .. }) => internal(&mut out.images, dest_url, line),
            _ => {}
        }
        if let Some((_, text)) = &mut code {
            match event {
                Event::Text(t) => text.push_str(&t),
                Event::End(TagEnd::CodeBlock) => {
                    let (lang, text) = code.take().unwrap_or_default();
                    events.push(Event::Html(highlight::code_block(&text, &lang).into()));
                }
                _ => {}
            }
            continue;
        }
        if let Some((level, _, inner)) = &mut heading {
            if let Event::End(TagEnd::Heading(_)) = event {
                let level = *level;
                let (_, given, inner) = heading.take().unwrap_or((level, None, Vec::new()));
                let id = unique_id(given, &inner, &mut ids);
                events.push(Event::Html(format!("<{level} id=\"{id}\">").into()));
                events.extend(inner);
                events.push(Event::Html(
                    format!("<a class=\"anchor\" href=\"#{id}\" aria-hidden=\"true\" tabindex=\"-1\">#</a></{level}>\n").into(),
                ));
            } else {
                inner.push(event);
            }
            continue;
        }
        match event {
            Event::Start(Tag::Heading { level, id, .. }) => {
                heading = Some((level, id.map(|s| s.to_string()), Vec::new()));
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                let lang = match kind {
                    CodeBlockKind::Fenced(info) => {
                        info.split([' ', ',', '{']).next().unwrap_or("").to_string()
                    }
                    CodeBlockKind::Indented => String::new(),
                };
                code = Some((lang, String::new()));
            }
            other => events.push(other),
        }
    }
    pulldown_cmark::html::push_html(&mut out.html, events.iter().cloned());
    out.summary = summary_of(&events);
    out.text = squash(&out.text);
    out
}

/// A heading's id: the one given with `{#id}`, else the slug of its
/// text, made unique with `-1`, `-2`...
fn unique_id(given: Option<String>, inner: &[Event], ids: &mut HashSet<String>) -> String {
    let base = given.unwrap_or_else(|| {
        let text: String = inner
            .iter()
            .filter_map(|e| match e {
                Event::Text(t) | Event::Code(t) => Some(t.as_ref()),
                _ => None,
            })
            .collect();
        let s = slugify(&text);
        if s.is_empty() {
            "section".into()
        } else {
            s
        }
    });
    let base = escape_html(&base);
    let mut id = base.clone();
    let mut n = 1;
    while !ids.insert(id.clone()) {
        id = format!("{base}-{n}");
        n += 1;
    }
    id
}

/// The events before `<!-- more -->` (with any tag still open closed),
/// else the first top-level paragraph, as HTML.
fn summary_of(events: &[Event]) -> String {
    let mut open: Vec<TagEnd> = Vec::new();
    let mut first_para: Option<(usize, usize)> = None;
    let mut para_start = 0;
    for (i, e) in events.iter().enumerate() {
        match e {
            Event::Html(h) | Event::InlineHtml(h) if h.trim() == MORE => {
                let mut cut = i;
                if matches!(open.last(), Some(TagEnd::HtmlBlock)) && i > 0 {
                    open.pop();
                    cut -= 1;
                }
                let mut html = String::new();
                let closing = open.iter().rev().cloned().map(Event::End);
                pulldown_cmark::html::push_html(
                    &mut html,
                    events[..cut].iter().cloned().chain(closing),
                );
                return html;
            }
            Event::Start(tag) => {
                if open.is_empty() && matches!(tag, Tag::Paragraph) {
                    para_start = i;
                }
                open.push(tag.to_end());
            }
            Event::End(end) => {
                open.pop();
                if open.is_empty() && *end == TagEnd::Paragraph && first_para.is_none() {
                    first_para = Some((para_start, i + 1));
                }
            }
            _ => {}
        }
    }
    let mut html = String::new();
    if let Some((a, b)) = first_para {
        pulldown_cmark::html::push_html(&mut html, events[a..b].iter().cloned());
    }
    html
}

fn internal(into: &mut Vec<(String, usize)>, url: &str, line: usize) {
    if url.starts_with('/') && !url.starts_with("//") {
        into.push((url.to_string(), line));
    }
}

/// Collects `href="/..."` and `src="/..."` from raw HTML.
fn scan_html(html: &str, first_line: usize, out: &mut Rendered) {
    for (attr, is_img) in [("href=", false), ("src=", true)] {
        let mut from = 0;
        while let Some(i) = html[from..].find(attr) {
            let at = from + i;
            from = at + attr.len();
            // Only whole attribute names: "data-src=" is not "src=".
            if at > 0 && !html.as_bytes()[at - 1].is_ascii_whitespace() {
                continue;
            }
            let rest = &html[from..];
            let (quote, rest) = match rest.chars().next() {
                Some(q @ ('"' | '\'')) => (q, &rest[1..]),
                _ => continue,
            };
            let Some(end) = rest.find(quote) else {
                continue;
            };
            let url = rest[..end].replace("&amp;", "&");
            let line = first_line + html[..at].matches('\n').count();
            internal(
                if is_img {
                    &mut out.images
                } else {
                    &mut out.links
                },
                &url,
                line,
            );
        }
    }
}

/// Collapses runs of whitespace to one space.
fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A body written as HTML (`format = "html"`, as the Ghost import
/// writes it): kept as it is.
fn html(body: &str) -> Rendered {
    let mut out = Rendered {
        html: body.to_string(),
        ..Rendered::default()
    };
    out.summary = match body.find(MORE) {
        Some(i) => body[..i].trim().to_string(),
        None => first_html_paragraph(body).unwrap_or_default().to_string(),
    };
    out.text = squash(&html_text(body));
    scan_html(body, 1, &mut out);
    out
}

fn first_html_paragraph(body: &str) -> Option<&str> {
    let start = body.find("<p>").or_else(|| body.find("<p "))?;
    let end = body[start..].find("</p>")? + start + 4;
    Some(&body[start..end])
}

/// The text of HTML: tags dropped (and the contents of script and
/// style), the common entities decoded.
pub fn html_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        out.push(' ');
        let after = &rest[i..];
        let lower = after.get(..8).unwrap_or(after).to_ascii_lowercase();
        let skip_to = if lower.starts_with("<script") {
            after.find("</script>").map(|j| j + 9)
        } else if lower.starts_with("<style") {
            after.find("</style>").map(|j| j + 8)
        } else if after.starts_with("<!--") {
            after.find("-->").map(|j| j + 3)
        } else {
            after.find('>').map(|j| j + 1)
        };
        rest = &after[skip_to.unwrap_or(after.len())..];
    }
    out.push_str(rest);
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_features() {
        // (markdown, must contain)
        let cases = [
            ("| a | b |\n|---|---|\n| 1 | 2 |\n", "<table>"),
            ("x[^1]\n\n[^1]: note\n", "footnote-definition"),
            ("~~gone~~\n", "<del>gone</del>"),
            ("- [x] done\n- [ ] todo\n", "type=\"checkbox\""),
            (
                "# Hello World\n",
                "<h1 id=\"hello-world\">Hello World<a class=\"anchor\" href=\"#hello-world\"",
            ),
            ("## Same\n## Same\n", "<h2 id=\"same-1\">"),
            ("## Custom {#mine}\n", "<h2 id=\"mine\">Custom"),
            ("## `code` & more\n", "<h2 id=\"code-more\">"),
            (
                "<div class=\"raw\">kept</div>\n",
                "<div class=\"raw\">kept</div>",
            ),
            (
                "```rust\nfn main() {}\n```\n",
                "<pre class=\"hl-code\"><code class=\"language-rust\">",
            ),
            (
                "```nolang\na<b\n```\n",
                "<pre><code class=\"language-nolang\">a&lt;b\n</code></pre>",
            ),
            (
                "    indented <x>\n",
                "<pre><code>indented &lt;x&gt;\n</code></pre>",
            ),
        ];
        for (md, want) in cases {
            let r = render(md, Format::Markdown);
            assert!(r.html.contains(want), "{md:?}: {}", r.html);
        }
    }

    #[test]
    fn summaries() {
        let cases = [
            (
                "First para.\n\nSecond.\n",
                Format::Markdown,
                "<p>First para.</p>\n",
            ),
            (
                "# Title\n\nIntro *here*.\n\nMore.\n",
                Format::Markdown,
                "<p>Intro <em>here</em>.</p>\n",
            ),
            (
                "One.\n\nTwo.\n\n<!-- more -->\n\nThree.\n",
                Format::Markdown,
                "<p>One.</p>\n<p>Two.</p>\n",
            ),
            (
                "- a\n- b <!-- more --> c\n",
                Format::Markdown,
                "<ul>\n<li>a</li>\n<li>b </li>\n</ul>\n",
            ),
            (
                "<h2>x</h2><p>Lead.</p><p>Rest.</p>",
                Format::Html,
                "<p>Lead.</p>",
            ),
            ("<p>A</p><!-- more --><p>B</p>", Format::Html, "<p>A</p>"),
            ("", Format::Markdown, ""),
            (
                "- only\n- a & b\n",
                Format::Markdown,
                "<p>only a &amp; b</p>\n",
            ),
            (
                "<figure><img src=\"/a.png\"><figcaption>A &amp; B</figcaption></figure>",
                Format::Html,
                "<p>A &amp; B</p>\n",
            ),
        ];
        for (body, format, want) in cases {
            assert_eq!(render(body, format).summary, want, "{body:?}");
        }
    }

    #[test]
    fn shortening() {
        let cases = [
            ("short", 10, "short"),
            ("one two three", 9, "one two…"),
            ("ééééé", 5, "éé…"),
            ("abcdef", 3, "abc…"),
        ];
        for (text, max, want) in cases {
            assert_eq!(shorten(text, max), want, "{text:?}");
        }
    }

    #[test]
    fn text_and_links() {
        let md = "Hello *world*.\n\nSee [a](/a/) and [ext](https://x.org/)\nand ![i](/img/p.png).\n\n<a href=\"/raw/\">r</a> <img data-src=\"/no.png\" src=\"/yes.png\">\n";
        let r = render(md, Format::Markdown);
        assert_eq!(r.text, "Hello world . See a and ext and i . r");
        assert_eq!(r.words, 11);
        assert_eq!(r.links, [("/a/".to_string(), 3), ("/raw/".to_string(), 6)]);
        assert_eq!(
            r.images,
            [("/img/p.png".to_string(), 4), ("/yes.png".to_string(), 6)]
        );
        let h = render(
            "<p>A &amp; B</p>\n<script>x()</script><p>\n<a href='/c/'>C</a></p>",
            Format::Html,
        );
        assert_eq!(h.text, "A & B C");
        assert_eq!(h.links, [("/c/".to_string(), 3)]);
    }
}

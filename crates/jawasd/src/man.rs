//! Manual pages and shell completions, for install.sh and the Debian
//! package: `jawasd man` (jawasd(8), from the command-line definition),
//! `jawasd man jawasd.toml` (jawasd.toml(5), from docs/config.md, which is
//! compiled in so the page and the docs never disagree), and `jawasd
//! completions SHELL`.
//!
//! Owns the small Markdown-to-roff conversion: headings, paragraphs, the
//! key tables (one `.TP` entry per row), code blocks, inline code and
//! links. It is made for docs/config.md, not for Markdown at large.

/// docs/config.md as built into this binary.
const CONFIG_MD: &str = include_str!("../../../docs/config.md");

/// jawasd.toml(5).
pub fn config_page(version: &str) -> String {
    let mut out = format!(
        ".TH JAWASD.TOML 5 \"\" \"jawasd {version}\" \"File formats\"\n\
         .SH NAME\njawasd.toml \\- the configuration file of jawasd\n"
    );
    out.push_str(&markdown_to_roff(CONFIG_MD));
    out.push_str(".SH SEE ALSO\n.BR jawasd (8)\n");
    out
}

/// The body of a page from Markdown: `#` is dropped (the page has its own
/// title), `##` becomes `.SH`, `###` `.SS`.
pub fn markdown_to_roff(md: &str) -> String {
    let mut out = String::new();
    let mut in_code = false;
    let mut in_indent = false;
    let mut para = Vec::new();
    let mut header: Vec<String> = Vec::new();
    let flush = |para: &mut Vec<String>, out: &mut String| {
        if !para.is_empty() {
            out.push_str(&format!(".PP\n{}\n", inline(&para.join(" "))));
            para.clear();
        }
    };
    for line in md.lines() {
        if line.starts_with("```") {
            flush(&mut para, &mut out);
            out.push_str(if in_code {
                ".fi\n.RE\n"
            } else {
                ".RS 4\n.nf\n"
            });
            in_code = !in_code;
            continue;
        }
        if in_code {
            let code = escape(line);
            let guard = if code.starts_with(['.', '\'']) {
                "\\&"
            } else {
                ""
            };
            out.push_str(&format!("{guard}{code}\n"));
            continue;
        }
        let t = line.trim();
        // An indented block after a blank line is code too.
        let indented = line.starts_with("    ") && !t.is_empty();
        if indented && (para.is_empty() || in_indent) {
            if !in_indent {
                out.push_str(".RS 4\n.nf\n");
                in_indent = true;
            }
            let code = escape(&line[4..]);
            let guard = if code.starts_with(['.', '\'']) {
                "\\&"
            } else {
                ""
            };
            out.push_str(&format!("{guard}{code}\n"));
            continue;
        }
        if in_indent {
            out.push_str(".fi\n.RE\n");
            in_indent = false;
        }
        if t.is_empty() {
            flush(&mut para, &mut out);
            header.clear();
        } else if let Some(h) = t.strip_prefix("### ") {
            flush(&mut para, &mut out);
            out.push_str(&format!(".SS {}\n", inline(h)));
        } else if let Some(h) = t.strip_prefix("## ") {
            flush(&mut para, &mut out);
            // Section names are plain upper case: no fonts in them.
            let plain: String = h.chars().filter(|c| *c != '`').collect();
            out.push_str(&format!(".SH {}\n", escape(&plain.to_uppercase())));
        } else if t.starts_with("# ") {
            flush(&mut para, &mut out);
        } else if t.starts_with('|') {
            flush(&mut para, &mut out);
            let cells: Vec<String> = t
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect();
            if cells
                .iter()
                .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
            {
                continue;
            }
            if header.is_empty() {
                header = cells;
                continue;
            }
            out.push_str(&table_row(&header, &cells));
        } else {
            let t = t
                .strip_prefix("- ")
                .map_or(t.to_string(), |item| format!("\u{2022} {item}"));
            para.push(t);
        }
    }
    flush(&mut para, &mut out);
    if in_indent || in_code {
        out.push_str(".fi\n.RE\n");
    }
    out
}

/// One table row as a tagged paragraph: the first cell is the tag, the
/// middle ones are named by their column, the last is the text.
fn table_row(header: &[String], cells: &[String]) -> String {
    let mut out = format!(".TP\n{}\n", inline(&cells[0]));
    let n = cells.len();
    if n > 2 {
        let middle: Vec<String> = (1..n - 1)
            .filter(|i| !cells[*i].is_empty())
            .map(|i| {
                let name = header.get(i).map(String::as_str).unwrap_or("");
                format!("{name}: {}", cells[i])
            })
            .collect();
        if !middle.is_empty() {
            out.push_str(&format!("({})\n.br\n", inline(&middle.join("; "))));
        }
    }
    if n > 1 {
        out.push_str(&format!("{}\n", inline(&cells[n - 1])));
    }
    out
}

/// Inline Markdown to roff: `code` in bold, [text](link) as its text,
/// **bold** as bold; everything escaped.
fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(['`', '[', '*']) {
        out.push_str(&escape(&rest[..i]));
        let tail = &rest[i..];
        if let Some(inner) = tail.strip_prefix('`') {
            if let Some(end) = inner.find('`') {
                out.push_str(&format!("\\fB{}\\fR", escape(&inner[..end])));
                rest = &inner[end + 1..];
                continue;
            }
        } else if let Some(inner) = tail.strip_prefix("**") {
            if let Some(end) = inner.find("**") {
                out.push_str(&format!("\\fB{}\\fR", escape(&inner[..end])));
                rest = &inner[end + 2..];
                continue;
            }
        } else if let Some(inner) = tail.strip_prefix('[') {
            if let Some((label, after)) = inner.split_once("](") {
                if let Some(end) = after.find(')') {
                    out.push_str(&escape(label));
                    rest = &after[end + 1..];
                    continue;
                }
            }
        }
        out.push_str(&escape(&tail[..1]));
        rest = &tail[1..];
    }
    out.push_str(&escape(rest));
    let t = out.trim_start();
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        out
    }
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\e").replace('-', "\\-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_roff() {
        let md = "# Title\n\nSome `key` and [a link](x.md).\n\n## Keys\n\n\
                  | key | type | meaning |\n|---|---|---|\n| `a` | string | The a-key. |\n\n\
                  ```toml\n.dot = 1\n```\n- item\n\n    indented code\n    .more\n\nafter\n";
        let roff = markdown_to_roff(md);
        assert_eq!(
            roff,
            ".PP\nSome \\fBkey\\fR and a link.\n.SH KEYS\n.TP\n\\fBa\\fR\n(type: string)\n.br\nThe a\\-key.\n\
             .RS 4\n.nf\n\\&.dot = 1\n.fi\n.RE\n.PP\n\u{2022} item\n\
             .RS 4\n.nf\nindented code\n\\&.more\n.fi\n.RE\n.PP\nafter\n",
        );
    }

    #[test]
    fn the_config_page_has_every_key_of_the_docs() {
        let page = config_page("1");
        for key in [
            "max_connections",
            "drain",
            "proxy_protocol",
            "spawn",
            "only_from",
        ] {
            assert!(page.contains(&format!("\\fB{}\\fR", escape(key))), "{key}");
        }
    }
}

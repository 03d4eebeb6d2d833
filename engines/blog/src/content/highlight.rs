//! Server-side syntax highlighting of fenced code into CSS classes
//! (syntect with its pure-Rust regex engine), and the stylesheet for
//! those classes in light and dark.
//!
//! Owns the process-wide syntax set, loaded on first use only: loading
//! it costs tens of milliseconds, so a build whose changed posts have no
//! code in a known language never pays for it, and a build that does
//! pays once.

use std::sync::OnceLock;

use syntect::highlighting::ThemeSet;
use syntect::html::{css_for_theme_with_class_style, ClassStyle, ClassedHTMLGenerator};
use syntect::parsing::SyntaxSet;
use syntect::util::LinesWithEndings;

use super::words::escape_html;

/// Class names are prefixed so they never clash with a theme's own.
const STYLE: ClassStyle = ClassStyle::SpacedPrefixed { prefix: "hl-" };
const LIGHT: &str = "InspiredGitHub";
const DARK: &str = "base16-ocean.dark";

static SYNTAXES: OnceLock<SyntaxSet> = OnceLock::new();

/// Common names writers put after the fence that syntect knows under
/// another token.
fn alias(lang: &str) -> &str {
    match lang {
        "shell" | "console" | "zsh" => "bash",
        "golang" => "go",
        "py3" | "python3" => "python",
        "rs" => "rust",
        "yml" => "yaml",
        "c++" => "cpp",
        "jsonc" => "json",
        "htm" | "xhtml" => "html",
        other => other,
    }
}

/// The `<pre>` block for a fenced code block whose info string starts
/// with `lang`: highlighted when the language is known, else plain and
/// escaped.
pub fn code_block(code: &str, lang: &str) -> String {
    let lang = lang.trim();
    if !lang.is_empty() {
        if let Some(spans) = highlight(code, lang) {
            return format!(
                "<pre class=\"hl-code\"><code class=\"language-{}\">{spans}</code></pre>\n",
                escape_html(lang)
            );
        }
    }
    let class = if lang.is_empty() {
        String::new()
    } else {
        format!(" class=\"language-{}\"", escape_html(lang))
    };
    format!("<pre><code{class}>{}</code></pre>\n", escape_html(code))
}

fn highlight(code: &str, lang: &str) -> Option<String> {
    let ss = SYNTAXES.get_or_init(SyntaxSet::load_defaults_newlines);
    let syntax = ss.find_syntax_by_token(alias(&lang.to_ascii_lowercase()))?;
    let mut gen = ClassedHTMLGenerator::new_with_class_style(syntax, ss, STYLE);
    for line in LinesWithEndings::from(code) {
        gen.parse_html_for_line_which_includes_newline(line).ok()?;
    }
    Some(gen.finalize())
}

/// The stylesheet for highlighted code: a light theme, and a dark one
/// for readers whose system prefers dark.
pub fn css() -> String {
    let themes = ThemeSet::load_defaults();
    let light = css_for_theme_with_class_style(&themes.themes[LIGHT], STYLE).unwrap_or_default();
    let dark = css_for_theme_with_class_style(&themes.themes[DARK], STYLE).unwrap_or_default();
    format!(
        "/* Syntax highlighting: syntect's {LIGHT} (light) and {DARK} (dark). */\n{light}\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks() {
        // (code, lang, must contain, must not contain)
        let cases = [
            ("fn main() {}\n", "rust", "<span class=\"hl-", "<script"),
            ("fn main() {}\n", "RS", "language-RS", "style="),
            (
                "a < b\n",
                "no-such-language",
                "<pre><code class=\"language-no-such-language\">a &lt; b\n</code></pre>",
                "hl-",
            ),
            ("<b>\n", "", "<pre><code>&lt;b&gt;\n</code></pre>", "hl-"),
            ("x = 1\n", "python", "hl-code", "style="),
        ];
        for (code, lang, want, not) in cases {
            let html = code_block(code, lang);
            assert!(html.contains(want), "{lang}: {html}");
            assert!(!html.contains(not), "{lang}: {html}");
        }
    }

    #[test]
    fn css_has_light_and_dark() {
        let css = css();
        assert!(css.contains(".hl-code"), "{css}");
        assert!(css.contains("@media (prefers-color-scheme: dark)"));
        assert!(css.matches(".hl-code").count() >= 2);
    }
}

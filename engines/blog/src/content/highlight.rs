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
    let one = |name: &str, toward: Rgb| {
        let theme = &themes.themes[name];
        let bg = theme
            .settings
            .background
            .map_or((255, 255, 255), |c| (c.r, c.g, c.b));
        let css = css_for_theme_with_class_style(theme, STYLE).unwrap_or_default();
        readable(&css, bg, toward)
    };
    let light = one(LIGHT, (0, 0, 0));
    let dark = one(DARK, (255, 255, 255));
    format!(
        "/* Syntax highlighting: syntect's {LIGHT} (light) and {DARK} (dark). */\n{light}\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"
    )
}

type Rgb = (u8, u8, u8);

fn luminance((r, g, b): Rgb) -> f64 {
    let f = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.03928 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b)
}

/// WCAG's contrast ratio of two colours.
fn contrast(a: Rgb, b: Rgb) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

fn parse_hex(s: &str) -> Option<Rgb> {
    let h = s.get(..6)?;
    let v = u32::from_str_radix(h, 16).ok()?;
    Some(((v >> 16) as u8, (v >> 8) as u8, v as u8))
}

/// `c` mixed toward `toward` until it reads at WCAG AA (4.5:1) on `bg`.
fn adjust(c: Rgb, bg: Rgb, toward: Rgb) -> Rgb {
    let mix =
        |a: u8, b: u8, t: f64| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
    (0..=20)
        .map(|i| f64::from(i) / 20.0)
        .map(|t| {
            (
                mix(c.0, toward.0, t),
                mix(c.1, toward.1, t),
                mix(c.2, toward.2, t),
            )
        })
        .find(|&m| contrast(m, bg) >= 4.5)
        .unwrap_or(toward)
}

/// The theme's CSS with every text colour that falls short of WCAG AA
/// on its background (the rule's own, else the theme's) darkened (or
/// lightened) until it does not: syntect's themes have grey comments.
fn readable(css: &str, theme_bg: Rgb, toward: Rgb) -> String {
    let mut out = String::with_capacity(css.len());
    for block in css.split_inclusive('}') {
        let own_bg = block
            .find("background-color: #")
            .and_then(|i| parse_hex(&block[i + "background-color: #".len()..]));
        let bg = own_bg.unwrap_or(theme_bg);
        for line in block.split_inclusive('\n') {
            let t = line.trim_start();
            match t.strip_prefix("color: #").and_then(parse_hex) {
                Some(c) if contrast(c, bg) < 4.5 => {
                    let (r, g, b) = adjust(c, bg, toward);
                    out.push_str(&format!(" color: #{r:02x}{g:02x}{b:02x};\n"));
                }
                _ => out.push_str(line),
            }
        }
    }
    out
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
    fn contrast_is_fixed() {
        // (colour, background, toward, still the same colour?)
        let cases = [
            ((0x96, 0x98, 0x96), (255, 255, 255), (0, 0, 0), false),
            ((0x32, 0x32, 0x32), (255, 255, 255), (0, 0, 0), true),
            (
                (0x65, 0x73, 0x7e),
                (0x2b, 0x30, 0x3b),
                (255, 255, 255),
                false,
            ),
        ];
        for (c, bg, toward, same) in cases {
            let got = adjust(c, bg, toward);
            assert!(contrast(got, bg) >= 4.5, "{c:?}");
            assert_eq!(got == c, same, "{c:?}");
        }
        let fixed = readable(
            ".a {\n color: #969896;\n}\n.b {\n color: #2b303b;\n background-color: #bf616a;\n}\n",
            (255, 255, 255),
            (0, 0, 0),
        );
        assert!(
            !fixed.contains("#969896") && fixed.contains(".b {\n color: #"),
            "{fixed}"
        );
    }

    #[test]
    fn css_has_light_and_dark() {
        let css = css();
        // Every text colour reads at AA on its background.
        let (light, dark) = css.split_once("@media").unwrap();
        for (part, bg) in [(light, (255, 255, 255)), (dark, (0x2b, 0x30, 0x3b))] {
            for block in part.split_inclusive('}') {
                if block.contains("background-color") && !block.contains(".hl-code ") {
                    continue;
                }
                for line in block.lines() {
                    if let Some(c) = line.trim().strip_prefix("color: #").and_then(parse_hex) {
                        assert!(contrast(c, bg) >= 4.5, "{block}");
                    }
                }
            }
        }
        assert!(css.contains(".hl-code"), "{css}");
        assert!(css.contains("@media (prefers-color-scheme: dark)"));
        assert!(css.matches(".hl-code").count() >= 2);
    }
}

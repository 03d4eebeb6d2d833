//! Front matter: the `+++` (TOML) or `---` (YAML) block at the top of a
//! post or page, parsed into `Meta` with every problem a finding that
//! names the file and line.
//!
//! Owns `Meta` (what a source says about itself) and the splitting of
//! a source into front matter and body. Invariant: a `Meta` returned
//! without findings has a title, a valid slug, and (for posts) a date.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::config::{line_of, toml_to_json};
use super::date::Date;
use super::words::{did_you_mean, is_valid_slug, key_line};
use crate::site::Finding;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Format {
    Markdown,
    Html,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Meta {
    pub title: String,
    pub date: Option<Date>,
    pub updated: Option<Date>,
    pub tags: Vec<String>,
    pub draft: bool,
    pub slug: String,
    pub summary: Option<String>,
    pub aliases: Vec<String>,
    /// Author slugs; empty means the site author.
    pub authors: Vec<String>,
    pub feature_image: Option<String>,
    pub format: Format,
    /// Every other key, for templates.
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// The 1-based line where the body starts.
    pub body_line: usize,
    /// Lines where `authors` and `aliases` are set, for findings made
    /// later against site.toml and other sources.
    pub authors_line: usize,
    pub aliases_line: usize,
}

const KNOWN: &[&str] = &[
    "title",
    "date",
    "updated",
    "tags",
    "draft",
    "slug",
    "summary",
    "aliases",
    "authors",
    "feature_image",
    "format",
];

/// A source split at its fences.
pub struct Split<'a> {
    pub toml: bool,
    pub front: &'a str,
    pub body: &'a str,
    /// Line of the first front matter line (after the fence).
    pub front_line: usize,
    pub body_line: usize,
}

/// Splits `text` into front matter and body.
pub fn split(text: &str) -> Result<Split<'_>, (usize, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first_end = text.find('\n').unwrap_or(text.len());
    let fence = text[..first_end].trim_end();
    let toml = match fence {
        "+++" => true,
        "---" => false,
        _ => {
            return Err((1, "no front matter: start the file with a line +++ (TOML) or --- (YAML), then title and date, then the same line again".into()));
        }
    };
    let front_start = (first_end + 1).min(text.len());
    let mut pos = front_start;
    let mut line = 2;
    while pos < text.len() {
        let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
        let l = text[pos..end].trim_end();
        if l == fence || (!toml && l == "...") {
            let body_start = (end + 1).min(text.len());
            return Ok(Split {
                toml,
                front: &text[front_start..pos],
                body: &text[body_start..],
                front_line: 2,
                body_line: line + 1,
            });
        }
        pos = end + 1;
        line += 1;
    }
    Err((1, format!("the front matter opened with {fence} on line 1 is never closed (add a line {fence} after it)")))
}

/// Parses a source file's text. `need_date`: posts need one, pages not.
pub fn parse<'t>(
    file: &Path,
    text: &'t str,
    need_date: bool,
) -> Result<(Meta, Split<'t>), Vec<Finding>> {
    let at = |line: usize, message: String| Finding {
        file: file.to_path_buf(),
        line,
        message,
    };
    let sp = split(text).map_err(|(line, m)| vec![at(line, m)])?;
    let map = if sp.toml {
        match toml::from_str::<toml::Table>(sp.front) {
            Ok(t) => t
                .iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
            Err(e) => {
                let line = e.span().map_or(0, |s| line_of(sp.front, s.start) - 1) + sp.front_line;
                return Err(vec![at(
                    line,
                    format!("front matter is not valid TOML: {}", e.message().trim()),
                )]);
            }
        }
    } else {
        match serde_yaml_ng::from_str::<serde_json::Value>(sp.front) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(serde_json::Value::Null) => Default::default(),
            Ok(_) => {
                return Err(vec![at(
                    sp.front_line,
                    "front matter must be `key: value` lines".into(),
                )])
            }
            Err(e) => {
                let line = e.location().map_or(0, |l| l.line() - 1) + sp.front_line;
                return Err(vec![at(
                    line,
                    format!("front matter is not valid YAML: {e}"),
                )]);
            }
        }
    };
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut fr = Fields {
        file,
        front: sp.front,
        first: sp.front_line,
        findings: Vec::new(),
    };
    let meta = fr.meta(map, &stem, need_date, sp.body_line);
    if fr.findings.is_empty() {
        Ok((meta, sp))
    } else {
        Err(fr.findings)
    }
}

struct Fields<'a> {
    file: &'a Path,
    front: &'a str,
    first: usize,
    findings: Vec<Finding>,
}

type Map = serde_json::Map<String, serde_json::Value>;

impl Fields<'_> {
    fn line(&self, key: &str) -> usize {
        key_line(self.front, key, self.first)
    }

    fn finding(&mut self, key: &str, message: String) {
        self.findings.push(Finding {
            file: self.file.to_path_buf(),
            line: self.line(key),
            message,
        });
    }

    fn string(&mut self, map: &Map, key: &str) -> Option<String> {
        match map.get(key)? {
            serde_json::Value::String(s) => Some(s.clone()),
            // YAML reads `title: 1984` as a number; the writer meant text.
            serde_json::Value::Number(n) if key != "date" && key != "updated" => {
                Some(n.to_string())
            }
            serde_json::Value::Null => None,
            _ => {
                self.finding(key, format!("`{key}` must be a string"));
                None
            }
        }
    }

    fn list(&mut self, map: &Map, key: &str) -> Vec<String> {
        match map.get(key) {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(a)) => {
                let all: Option<Vec<String>> =
                    a.iter().map(|v| v.as_str().map(str::to_string)).collect();
                all.unwrap_or_else(|| {
                    self.finding(key, format!("`{key}` must be a list of strings"));
                    Vec::new()
                })
            }
            Some(_) => {
                self.finding(
                    key,
                    format!("`{key}` must be a list of strings, e.g. {key} = [\"a\", \"b\"]"),
                );
                Vec::new()
            }
        }
    }

    fn date(&mut self, map: &Map, key: &str) -> Option<Date> {
        if !matches!(
            map.get(key)?,
            serde_json::Value::String(_) | serde_json::Value::Null
        ) {
            self.finding(
                key,
                format!("`{key}` must be a date such as 2024-05-01 or 2024-05-01T10:00:00Z"),
            );
            return None;
        }
        let s = self.string(map, key)?;
        match Date::parse(&s) {
            Ok(d) => Some(d),
            Err(e) => {
                self.finding(key, format!("`{key}`: {e}"));
                None
            }
        }
    }

    fn meta(&mut self, mut map: Map, stem: &str, need_date: bool, body_line: usize) -> Meta {
        let title = self.string(&map, "title").unwrap_or_default();
        if title.trim().is_empty() {
            self.finding("title", "`title` is missing".into());
        }
        let date = self.date(&map, "date");
        if need_date && date.is_none() && !map.contains_key("date") {
            self.finding("date", "`date` is missing (e.g. date = 2024-05-01)".into());
        }
        let updated = self.date(&map, "updated");
        let draft = match map.get("draft") {
            None => false,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(_) => {
                self.finding("draft", "`draft` must be true or false".into());
                false
            }
        };
        let slug = self
            .string(&map, "slug")
            .unwrap_or_else(|| stem.to_string());
        if !is_valid_slug(&slug) {
            self.finding(
                "slug",
                format!("slug {slug:?} cannot be used in a URL: use letters, digits and -"),
            );
        }
        let format = match self.string(&map, "format").as_deref() {
            None | Some("markdown") => Format::Markdown,
            Some("html") => Format::Html,
            Some(other) => {
                self.finding(
                    "format",
                    format!("`format` must be \"markdown\" or \"html\", not {other:?}"),
                );
                Format::Markdown
            }
        };
        let aliases = self.list(&map, "aliases");
        for a in &aliases {
            if !a.starts_with('/') || a.contains(['?', '#', ' ']) {
                self.finding(
                    "aliases",
                    format!("alias {a:?} must be a URL path starting with /"),
                );
            }
        }
        let meta = Meta {
            title,
            date,
            updated,
            tags: self.list(&map, "tags"),
            draft,
            slug,
            summary: self.string(&map, "summary"),
            aliases,
            authors: self.list(&map, "authors"),
            feature_image: self.string(&map, "feature_image"),
            format,
            extra: Map::new(),
            body_line,
            authors_line: self.line("authors"),
            aliases_line: self.line("aliases"),
        };
        for k in KNOWN {
            map.remove(*k);
        }
        // A key one typo away from a known one is most likely a mistake
        // the writer wants to hear about; others are template extras.
        for k in map.keys() {
            if let Some(known) = did_you_mean(k, KNOWN) {
                if known != "tags" || k != "tag" {
                    self.finding(k, format!("unknown key `{k}`; did you mean `{known}`? (other keys are passed to templates as extra)"));
                }
            }
        }
        Meta { extra: map, ..meta }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<Meta, Vec<String>> {
        parse(Path::new("posts/hello.md"), text, true)
            .map(|(m, _)| m)
            .map_err(|f| f.iter().map(|f| f.to_string()).collect())
    }

    #[test]
    fn toml_and_yaml_agree() {
        let cases = [
            "+++\ntitle = \"Hi <b>\"\ndate = 2024-05-01\ntags = [\"Rust\", \"Web\"]\nmood = \"ok\"\n+++\nBody\n",
            "---\ntitle: Hi <b>\ndate: 2024-05-01\ntags: [Rust, Web]\nmood: ok\n---\nBody\n",
            "---\r\ntitle: \"Hi <b>\"\r\ndate: \"2024-05-01\"\r\ntags:\r\n  - Rust\r\n  - Web\r\nmood: ok\r\n...\r\nBody\n",
        ];
        for text in cases {
            let m = run(text).unwrap_or_else(|e| panic!("{text:?}: {e:?}"));
            assert_eq!(m.title, "Hi <b>");
            assert_eq!(m.date.unwrap().rfc3339(), "2024-05-01T00:00:00Z");
            assert_eq!(m.tags, ["Rust", "Web"]);
            assert_eq!(m.slug, "hello");
            assert_eq!(m.extra["mood"], "ok");
            assert!(m.body_line >= 6, "{text:?}");
        }
        let m = run("---\ntitle: 1984\ndate: 2024-05-01\nslug: 42\n---\n").unwrap();
        assert_eq!((m.title.as_str(), m.slug.as_str()), ("1984", "42"));
        let m = run("+++\ntitle = \"x\"\ndate = 2024-05-01T10:00:00+02:00\nslug = \"other\"\nformat = \"html\"\ndraft = true\n+++\n").unwrap();
        assert_eq!(
            (m.slug.as_str(), m.format, m.draft),
            ("other", Format::Html, true)
        );
        assert_eq!(m.date.unwrap().offset_min, 120);
    }

    #[test]
    fn findings_name_file_and_line() {
        let cases = [
            ("no fence\n", "posts/hello.md:1: no front matter"),
            (
                "+++\ntitle = \"x\"\n",
                "posts/hello.md:1: the front matter opened with +++ on line 1 is never closed",
            ),
            (
                "+++\ndate = 2024-05-01\n+++\n",
                "posts/hello.md:2: `title` is missing",
            ),
            (
                "+++\ntitle = \"x\"\n+++\n",
                "posts/hello.md:2: `date` is missing",
            ),
            (
                "+++\ntitle = \"x\"\ndate = \"May 1st\"\n+++\n",
                "posts/hello.md:3: `date`: bad date",
            ),
            (
                "---\ntitle: x\ndate: 2024-02-30\n---\n",
                "posts/hello.md:3: `date`: bad date \"2024-02-30\": no such day",
            ),
            (
                "+++\ntitle = \"x\"\ndate = 2024-05-01\ntags = \"rust\"\n+++\n",
                "posts/hello.md:4: `tags` must be a list",
            ),
            (
                "+++\ntitle = \"x\"\ndate = 2024-05-01\nslug = \"a b\"\n+++\n",
                "posts/hello.md:4: slug \"a b\" cannot be used",
            ),
            (
                "+++\ntitle = \"x\"\ndate = 2024-05-01\n\ndraft = \"yes\"\n+++\n",
                "posts/hello.md:5: `draft` must be true or false",
            ),
            (
                "+++\ntitle = \"x\"\ndate = 2024-05-01\ntitle = \"y\"\n+++\n",
                "posts/hello.md:4: front matter is not valid TOML",
            ),
            (
                "---\ntitle: x\ndate: [\n---\n",
                "posts/hello.md:4: front matter is not valid YAML",
            ),
            (
                "+++\ntitle = \"x\"\ndate = 2024-05-01\nsumary = \"s\"\n+++\n",
                "posts/hello.md:4: unknown key `sumary`; did you mean `summary`?",
            ),
            (
                "+++\ntitle = \"x\"\ndate = 2024-05-01\naliases = [\"old\"]\n+++\n",
                "posts/hello.md:4: alias \"old\" must be a URL path",
            ),
        ];
        for (text, want) in cases {
            let got = run(text).err().unwrap_or_default();
            assert!(got.iter().any(|m| m.starts_with(want)), "{text:?}: {got:?}");
        }
    }
}

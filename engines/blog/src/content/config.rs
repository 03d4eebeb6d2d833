//! `site.toml`: the site's settings, read with every problem reported
//! as a finding naming the file and line.
//!
//! Owns `Config`. Invariants: `base_url` has no trailing slash;
//! `posts_per_page` >= 1; `permalink` starts with `/` and contains
//! `{slug}`; `hash` covers the whole file, so every output that shows
//! a setting changes key when the file changes.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::hash;
use super::words::{did_you_mean, key_line};
use crate::site::Finding;

const KNOWN: &[&str] = &[
    "title",
    "author",
    "base_url",
    "description",
    "posts_per_page",
    "permalink",
    "language",
    "authors",
    "navigation",
    "extra",
];

/// One `[authors.SLUG]` table.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Author {
    pub slug: String,
    pub name: String,
    pub bio: String,
    pub website: String,
    pub image: String,
}

/// One navigation link: `[[navigation]]` with `label` and `url`.
#[derive(Clone, Debug, Serialize)]
pub struct NavItem {
    pub label: String,
    pub url: String,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub title: String,
    /// The site author's display name.
    pub author: String,
    pub base_url: String,
    pub description: String,
    pub posts_per_page: usize,
    pub permalink: String,
    pub language: String,
    pub authors: BTreeMap<String, Author>,
    pub navigation: Vec<NavItem>,
    pub extra: serde_json::Value,
    /// Hash of the file's bytes.
    pub hash: u128,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            title: String::new(),
            author: String::new(),
            base_url: "http://localhost".into(),
            description: String::new(),
            posts_per_page: 10,
            permalink: "/{slug}/".into(),
            language: "en".into(),
            authors: BTreeMap::new(),
            navigation: Vec::new(),
            extra: serde_json::Value::Object(Default::default()),
            hash: 0,
        }
    }
}

/// Converts TOML to JSON values for templates; dates become strings.
pub fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// The 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

struct Reader<'a> {
    file: &'a Path,
    text: &'a str,
    findings: Vec<Finding>,
}

impl Reader<'_> {
    fn finding(&mut self, key: &str, message: String) {
        self.findings.push(Finding {
            file: self.file.to_path_buf(),
            line: key_line(self.text, key, 1),
            message,
        });
    }

    fn string(&mut self, table: &toml::Table, key: &str) -> Option<String> {
        match table.get(key)? {
            toml::Value::String(s) => Some(s.clone()),
            _ => {
                self.finding(key, format!("`{key}` must be a string"));
                None
            }
        }
    }
}

impl Config {
    /// Reads `dir/site.toml`.
    pub fn load(dir: &Path) -> (Config, Vec<Finding>) {
        let file = dir.join("site.toml");
        match std::fs::read(&file) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let (mut config, findings) = Config::parse(&file, &text);
                config.hash = hash::of(&bytes);
                (config, findings)
            }
            Err(e) => {
                let finding = Finding {
                    file,
                    line: 0,
                    message: format!("cannot read the site settings: {e}"),
                };
                (Config::default(), vec![finding])
            }
        }
    }

    /// Parses the text of `file`.
    pub fn parse(file: &Path, text: &str) -> (Config, Vec<Finding>) {
        let mut config = Config::default();
        let mut r = Reader {
            file,
            text,
            findings: Vec::new(),
        };
        let table: toml::Table = match toml::from_str(text) {
            Ok(t) => t,
            Err(e) => {
                let line = e.span().map_or(0, |s| line_of(text, s.start));
                let message = e.message().trim().to_string();
                r.findings.push(Finding {
                    file: file.to_path_buf(),
                    line,
                    message: format!("not valid TOML: {message}"),
                });
                return (config, r.findings);
            }
        };
        for key in table.keys() {
            if !KNOWN.contains(&key.as_str()) {
                let hint = match did_you_mean(key, KNOWN) {
                    Some(k) => format!("; did you mean `{k}`?"),
                    None => "; put your own settings under [extra]".to_string(),
                };
                r.finding(key, format!("unknown key `{key}`{hint}"));
            }
        }
        match r.string(&table, "title") {
            Some(t) => config.title = t,
            None if !table.contains_key("title") => r.finding("title", "`title` is missing".into()),
            None => {}
        }
        config.author = r.string(&table, "author").unwrap_or_default();
        config.description = r.string(&table, "description").unwrap_or_default();
        if let Some(l) = r.string(&table, "language") {
            config.language = l;
        }
        match r.string(&table, "base_url") {
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
                config.base_url = u.trim_end_matches('/').to_string();
            }
            Some(u) => r.finding(
                "base_url",
                format!("`base_url` must be an absolute http(s) URL such as \"https://example.org\", not {u:?}"),
            ),
            None if !table.contains_key("base_url") => r.finding(
                "base_url",
                "`base_url` is missing (the site's absolute URL, used in feeds and the sitemap)".into(),
            ),
            None => {}
        }
        match table.get("posts_per_page") {
            None => {}
            Some(toml::Value::Integer(n)) if (1..=1000).contains(n) => {
                config.posts_per_page = *n as usize
            }
            Some(_) => r.finding(
                "posts_per_page",
                "`posts_per_page` must be a whole number from 1 to 1000".into(),
            ),
        }
        if let Some(p) = r.string(&table, "permalink") {
            match check_permalink(&p) {
                Ok(()) => config.permalink = p,
                Err(e) => r.finding("permalink", e),
            }
        }
        config.authors = read_authors(&mut r, &table);
        config.navigation = read_navigation(&mut r, &table);
        match table.get("extra") {
            None => {}
            Some(v @ toml::Value::Table(_)) => config.extra = toml_to_json(v),
            Some(_) => r.finding("extra", "`extra` must be a table: [extra]".into()),
        }
        (config, r.findings)
    }

    /// The author slug and display data for the site author, used for
    /// posts that name no `authors`: `[authors.X]` where X is `author`,
    /// else the one whose name is `author`, else one made from `author`.
    pub fn default_author(&self) -> Author {
        let by_slug = self.authors.get(&self.author);
        if let Some(a) = by_slug.or_else(|| self.authors.values().find(|a| a.name == self.author)) {
            return a.clone();
        }
        let name = if self.author.is_empty() {
            self.title.clone()
        } else {
            self.author.clone()
        };
        let slug = super::words::slugify(&name);
        Author {
            slug: if slug.is_empty() {
                "author".into()
            } else {
                slug
            },
            name,
            ..Author::default()
        }
    }
}

fn check_permalink(p: &str) -> Result<(), String> {
    if !p.starts_with('/') || !p.contains("{slug}") {
        return Err(format!(
            "`permalink` must start with / and contain {{slug}}, not {p:?}"
        ));
    }
    let mut rest = p;
    while let Some(i) = rest.find('{') {
        let end = rest[i..]
            .find('}')
            .ok_or_else(|| format!("`permalink` has an unclosed {{ in {p:?}"))?;
        let name = &rest[i + 1..i + end];
        if !matches!(name, "year" | "month" | "day" | "slug") {
            return Err(format!("`permalink` placeholder {{{name}}} is unknown; use {{year}} {{month}} {{day}} {{slug}}"));
        }
        rest = &rest[i + end + 1..];
    }
    // Output files are named after URLs: no way out of the output tree.
    if p.split('/').any(|seg| seg == ".." || seg == ".") {
        return Err(format!(
            "`permalink` may not contain . or .. segments: {p:?}"
        ));
    }
    if p.contains("?") || p.contains('#') || p.contains("//") {
        return Err(format!("`permalink` must be a plain path, not {p:?}"));
    }
    Ok(())
}

fn read_authors(r: &mut Reader, table: &toml::Table) -> BTreeMap<String, Author> {
    let mut out = BTreeMap::new();
    let Some(v) = table.get("authors") else {
        return out;
    };
    let Some(authors) = v.as_table() else {
        r.finding(
            "authors",
            "`authors` must be tables: [authors.SLUG] with name, bio, website, image".into(),
        );
        return out;
    };
    for (slug, a) in authors {
        let Some(a) = a.as_table() else {
            r.finding("authors", format!("[authors.{slug}] must be a table"));
            continue;
        };
        if !super::words::is_valid_slug(slug) {
            r.finding(
                "authors",
                format!("author slug {slug:?} cannot be used in a URL"),
            );
        }
        let field = |k: &str| {
            a.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let name = field("name");
        out.insert(
            slug.clone(),
            Author {
                slug: slug.clone(),
                name: if name.is_empty() { slug.clone() } else { name },
                bio: field("bio"),
                website: field("website"),
                image: field("image"),
            },
        );
    }
    out
}

/// `[[navigation]]` tables with `label` and `url`, or one
/// `[navigation]` table of `Label = "url"` pairs.
fn read_navigation(r: &mut Reader, table: &toml::Table) -> Vec<NavItem> {
    let bad = "`navigation` must be [[navigation]] tables with `label` and `url`";
    match table.get("navigation") {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => {
            let mut out = Vec::new();
            for item in items {
                let label = item.get("label").and_then(|v| v.as_str());
                let url = item.get("url").and_then(|v| v.as_str());
                match (label, url) {
                    (Some(l), Some(u)) => out.push(NavItem {
                        label: l.into(),
                        url: u.into(),
                    }),
                    _ => r.finding("navigation", bad.into()),
                }
            }
            out
        }
        Some(toml::Value::Table(t)) => t
            .iter()
            .filter_map(|(label, url)| {
                url.as_str().map(|u| NavItem {
                    label: label.clone(),
                    url: u.into(),
                })
            })
            .collect(),
        Some(_) => {
            r.finding("navigation", bad.into());
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Config, Vec<String>) {
        let (c, f) = Config::parse(Path::new("site.toml"), text);
        (c, f.iter().map(|f| f.to_string()).collect())
    }

    #[test]
    fn good_file() {
        let (c, f) = parse(
            "title = \"T\"\nauthor = \"Jane\"\nbase_url = \"https://example.org/\"\nposts_per_page = 3\n\
             permalink = \"/{year}/{month}/{day}/{slug}.html\"\n[authors.jane]\nname = \"Jane\"\nbio = \"b\"\n\
             [[navigation]]\nlabel = \"About\"\nurl = \"/about/\"\n[extra]\nlogo = \"/l.png\"\n",
        );
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(c.base_url, "https://example.org");
        assert_eq!(c.posts_per_page, 3);
        assert_eq!(c.default_author().slug, "jane");
        for (author, slug, name) in [
            ("jd", "jd", "Jane"),
            ("Jane", "jd", "Jane"),
            ("Jo Bloggs", "jo-bloggs", "Jo Bloggs"),
        ] {
            let (c, _) = parse(&format!("title = \"T\"\nbase_url = \"https://e.org\"\nauthor = \"{author}\"\n[authors.jd]\nname = \"Jane\"\n"));
            assert_eq!(
                (
                    c.default_author().slug.as_str(),
                    c.default_author().name.as_str()
                ),
                (slug, name),
                "{author}"
            );
        }
        assert_eq!(c.navigation[0].url, "/about/");
        assert_eq!(c.extra["logo"], "/l.png");
    }

    #[test]
    fn findings_name_the_line() {
        let base = "title = \"T\"\nbase_url = \"https://e.org\"\n";
        let cases = [
            ("titel = \"x\"\n", "site.toml:3: unknown key `titel`; did you mean `title`?"),
            ("zebra = 1\n", "site.toml:3: unknown key `zebra`; put your own settings under [extra]"),
            ("posts_per_page = 0\n", "site.toml:3: `posts_per_page` must be a whole number from 1 to 1000"),
            ("permalink = \"/{slug}/{hour}/\"\n", "site.toml:3: `permalink` placeholder {hour} is unknown; use {year} {month} {day} {slug}"),
            ("permalink = \"/posts/\"\n", "site.toml:3: `permalink` must start with / and contain {slug}, not \"/posts/\""),
            ("language = 3\n", "site.toml:3: `language` must be a string"),
            ("permalink = \"/../{slug}/\"\n", "site.toml:3: `permalink` may not contain . or .. segments"),
            ("permalink = \"/{slug}?x\"\n", "site.toml:3: `permalink` must be a plain path"),
            ("title2 = [\n", "site.toml:3: not valid TOML: unclosed array"),
        ];
        for (extra, want) in cases {
            let (_, f) = parse(&format!("{base}{extra}"));
            assert!(f.iter().any(|m| m.starts_with(want)), "{extra:?}: {f:?}");
        }
        let (_, f) = parse("description = \"d\"\n");
        assert_eq!(f.len(), 2, "{f:?}");
        let (_, f) = parse("title = \"T\"\nbase_url = \"example.org\"\n");
        assert!(
            f[0].starts_with("site.toml:2: `base_url` must be an absolute"),
            "{f:?}"
        );
    }
}

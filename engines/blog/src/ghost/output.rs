//! The site directory the import writes, as a list of files with their
//! contents (nothing touches the disk here): `site.toml`, `posts/SLUG.md`
//! and `pages/SLUG.md` with TOML front matter, in the agreed site format
//! (docs/blog.md).
//!
//! Owns the mapping from Ghost's fields to front matter and site.toml
//! keys, and `Tally`, what was written and what was not (the report).
//! Invariants: TOML is written by the `toml` serializer, so every string
//! is escaped whatever it holds; members-only posts are never published
//! by the import (they become drafts), so nothing private turns public
//! without the writer choosing it.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::body::{self, site_relative};
use super::export::{Entry, Export};

/// What the writer passes besides the export.
pub struct Options {
    pub base_url: Option<String>,
    pub posts_per_page: Option<u64>,
}

/// Counts and names for the report.
#[derive(Default, Debug)]
pub struct Tally {
    pub posts: usize,
    pub pages: usize,
    pub drafts: usize,
    pub scheduled: Vec<String>,
    pub tags: usize,
    pub authors: usize,
    pub formats: BTreeMap<&'static str, usize>,
    /// Slugs of members-only posts, with their visibility.
    pub members_only: Vec<(String, String)>,
    /// Slugs of posts with their own code injection.
    pub code_injection: Vec<String>,
    /// `slug: what` for parts of bodies not converted.
    pub unconverted: Vec<String>,
    /// Tags whose URL changes: (name, Ghost's slug, the blog's slug).
    pub tag_urls: Vec<(String, String, String)>,
    pub base_url_guessed: bool,
    pub posts_per_page_unknown: bool,
}

pub struct Site {
    /// (path relative to the site directory, contents)
    pub files: Vec<(String, String)>,
    pub tally: Tally,
}

/// Every file of the site, or the post whose body is broken.
pub fn build(export: &Export, opts: &Options) -> Result<Site, String> {
    let mut tally = Tally::default();
    let mut files = vec![(
        "site.toml".to_string(),
        site_toml(export, opts, &mut tally)?,
    )];
    let amp = export.settings.get("amp").is_some_and(|v| v == "true");
    let mut urls: BTreeMap<&str, &str> = BTreeMap::new();
    for e in &export.entries {
        // Posts and pages share Ghost's URL space (/{slug}/), so a slug
        // used twice would leave one of them unreachable (or overwritten).
        if let Some(first) = urls.insert(&e.slug, &e.at) {
            return Err(format!(
                "{}: slug '{}' is also the slug of {first}",
                e.at, e.slug
            ));
        }
        let text = entry(e, amp, &mut tally)
            .map_err(|m| format!("{} ('{}', {}): {m}", e.at, e.slug, e.title))?;
        let dir = if e.page { "pages" } else { "posts" };
        files.push((format!("{dir}/{}.md", e.slug), text));
    }
    for t in &export.tags {
        let ours = url_slug(&t.name);
        if ours != t.slug {
            tally.tag_urls.push((t.name.clone(), t.slug.clone(), ours));
        }
    }
    tally.tags = export.tags.len();
    tally.authors = export.users.len();
    Ok(Site { files, tally })
}

/// A tag's URL slug as the blog makes it: lower-cased, every run of
/// characters other than letters and digits one hyphen.
pub fn url_slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Serialize)]
struct FrontMatter<'a> {
    title: &'a str,
    slug: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    date: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated: Option<&'a str>,
    #[serde(skip_serializing_if = "is_false")]
    draft: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authors: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    feature_image: Option<String>,
    format: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    aliases: Vec<String>,
    #[serde(skip_serializing_if = "is_false")]
    featured: bool,
    #[serde(flatten)]
    extra: BTreeMap<&'a str, String>,
}

fn entry(e: &Entry, amp: bool, tally: &mut Tally) -> Result<String, String> {
    let body = body::of(e)?;
    let date = e.published.as_ref().or(e.created.as_ref());
    if date.is_none() && !e.page {
        return Err("no published_at or created_at: a post needs a date".into());
    }
    let updated = e
        .updated
        .as_ref()
        .filter(|u| date.is_none_or(|d| u.secs > d.secs));
    let public = e.visibility == "public";
    let draft = match e.status.as_str() {
        "published" | "scheduled" => !public,
        _ => true,
    };
    // Code injection is kept byte for byte; every other field may hold
    // Ghost's URL placeholder (canonical_url does).
    let mut extra: BTreeMap<&str, String> = e
        .extra
        .iter()
        .map(|(k, v)| match k.starts_with("codeinjection") {
            true => (*k, v.clone()),
            false => (*k, site_relative(v)),
        })
        .collect();
    if !public {
        extra.insert("visibility", e.visibility.clone());
        tally
            .members_only
            .push((e.slug.clone(), e.visibility.clone()));
    }
    if !matches!(e.status.as_str(), "published" | "scheduled" | "draft") {
        extra.insert("ghost_status", e.status.clone());
    }
    if extra.contains_key("codeinjection_head") || extra.contains_key("codeinjection_foot") {
        tally.code_injection.push(e.slug.clone());
    }
    for note in &body.notes.unknown {
        tally.unconverted.push(format!("{}: {note}", e.slug));
    }
    if e.page {
        tally.pages += 1;
    } else {
        tally.posts += 1;
    }
    if draft {
        tally.drafts += 1;
    } else if e.status == "scheduled" {
        tally.scheduled.push(e.slug.clone());
    }
    *tally.formats.entry(body.source).or_default() += 1;
    let fm = FrontMatter {
        title: &e.title,
        slug: &e.slug,
        date: date.map(|d| d.rfc3339.as_str()),
        updated: updated.map(|d| d.rfc3339.as_str()),
        draft,
        summary: e.summary.as_deref(),
        tags: e.tags.iter().map(|t| t.name.as_str()).collect(),
        authors: e.authors.iter().map(String::as_str).collect(),
        feature_image: e.feature_image.as_deref().map(site_relative),
        format: body.format.name(),
        // Ghost served an AMP copy of each post at /SLUG/amp/ when AMP
        // was on; links to it keep working as a redirect to the post.
        aliases: if amp && !e.page {
            vec![format!("/{}/amp/", e.slug)]
        } else {
            Vec::new()
        },
        featured: e.featured,
        extra,
    };
    let toml = toml::to_string(&fm).map_err(|err| format!("front matter: {err}"))?;
    let mut text = format!("+++\n{toml}+++\n");
    if !body.text.is_empty() {
        text.push('\n');
        text.push_str(&body.text);
    }
    Ok(text)
}

#[derive(Serialize)]
struct SiteToml<'a> {
    title: String,
    author: String,
    base_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    language: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    posts_per_page: Option<u64>,
    permalink: &'static str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    authors: BTreeMap<&'a str, Author>,
    /// Ghost's primary navigation, as `[[navigation]]` (label, url).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    navigation: Vec<toml::Value>,
    #[serde(skip_serializing_if = "toml::Table::is_empty")]
    extra: toml::Table,
}

#[derive(Serialize)]
struct Author {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    bio: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    website: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<String>,
}

/// Settings kept under `[extra]` for templates (Ghost stores navigation
/// as JSON inside the setting's string; it is kept as TOML tables).
const EXTRA_SETTINGS: &[&str] = &[
    "secondary_navigation",
    "cover_image",
    "logo",
    "icon",
    "accent_color",
    "timezone",
    "twitter",
    "facebook",
    "meta_title",
    "meta_description",
    "og_image",
    "twitter_image",
    "codeinjection_head",
    "codeinjection_foot",
];

fn site_toml(export: &Export, opts: &Options, tally: &mut Tally) -> Result<String, String> {
    let s = |k: &str| {
        export
            .settings
            .get(k)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    };
    let base_url = match opts.base_url.clone().or(s("url").map(str::to_string)) {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            tally.base_url_guessed = true;
            "https://example.org".into()
        }
    };
    let posts_per_page = opts
        .posts_per_page
        .or(s("posts_per_page").and_then(|v| v.parse().ok()));
    tally.posts_per_page_unknown = posts_per_page.is_none();
    let owner = export
        .users
        .iter()
        .find(|u| u.owner)
        .or(export.users.first());
    let title = s("title").unwrap_or("My blog").to_string();
    let mut extra = toml::Table::new();
    for key in EXTRA_SETTINGS {
        let Some(v) = s(key) else { continue };
        let value = match serde_json::from_str::<Value>(v) {
            Ok(json @ (Value::Array(_) | Value::Object(_))) => to_toml(&json),
            _ => Some(toml::Value::String(site_relative_image(key, v))),
        };
        if let Some(value) = value {
            extra.insert(key.to_string(), value);
        }
    }
    let navigation = s("navigation")
        .and_then(|v| serde_json::from_str::<Value>(v).ok())
        .as_ref()
        .and_then(to_toml)
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|item| item.get("label").is_some() && item.get("url").is_some())
        .collect();
    let authors = export
        .users
        .iter()
        .map(|u| {
            let a = Author {
                name: u.name.clone(),
                bio: u.bio.clone(),
                website: u.website.clone(),
                image: u.image.as_deref().map(site_relative),
            };
            (u.slug.as_str(), a)
        })
        .collect();
    let site = SiteToml {
        author: owner
            .map(|u| u.name.clone())
            .unwrap_or_else(|| title.clone()),
        title,
        base_url,
        description: s("description"),
        language: s("lang").unwrap_or("en").to_string(),
        posts_per_page,
        permalink: "/{slug}/",
        authors,
        navigation,
        extra,
    };
    toml::to_string(&site).map_err(|e| format!("site.toml: {e}"))
}

fn site_relative_image(key: &str, v: &str) -> String {
    if key.starts_with("codeinjection") {
        v.to_string()
    } else {
        site_relative(v)
    }
}

/// JSON to TOML; TOML has no null, so nulls are left out (and an array
/// of nothing but nulls with them).
fn to_toml(v: &Value) -> Option<toml::Value> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        Value::String(s) => toml::Value::String(site_relative(s)),
        Value::Array(a) => toml::Value::Array(a.iter().filter_map(to_toml).collect()),
        Value::Object(o) => toml::Value::Table(
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), to_toml(v)?)))
                .collect(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_slugs() {
        let cases = [
            ("Rust", "rust"),
            ("News & Weather", "news-weather"),
            ("  C++ tips ", "c-tips"),
            ("Getting Started", "getting-started"),
            ("Ünïcode Tag", "ünïcode-tag"),
        ];
        for (name, want) in cases {
            assert_eq!(url_slug(name), want, "{name}");
        }
    }

    #[test]
    fn json_to_toml_drops_nulls() {
        let v: Value = serde_json::json!([{"label": "Home", "url": "__GHOST_URL__/"}, null, {"label": "x", "url": null}]);
        let t = to_toml(&v).unwrap();
        assert_eq!(
            t.to_string(),
            r#"[{ label = "Home", url = "/" }, { label = "x" }]"#
        );
    }
}

#[cfg(test)]
mod entry_tests {
    use super::*;
    use crate::ghost::date;

    fn front(status: &str, visibility: &str) -> (toml::Table, Tally) {
        let e = Entry {
            title: "T".into(),
            slug: "t".into(),
            status: status.into(),
            visibility: visibility.into(),
            published: date::parse(&serde_json::json!("2024-01-01")).unwrap(),
            ..Entry::default()
        };
        let mut tally = Tally::default();
        let text = entry(&e, false, &mut tally).unwrap();
        let toml = text
            .strip_prefix("+++\n")
            .unwrap()
            .split("+++\n")
            .next()
            .unwrap();
        (toml.parse().unwrap(), tally)
    }

    #[test]
    fn status_and_visibility_to_draft() {
        // (status, visibility, draft, extra key written)
        let cases = [
            ("published", "public", false, None),
            ("scheduled", "public", false, None),
            ("draft", "public", true, None),
            ("sent", "public", true, Some(("ghost_status", "sent"))),
            (
                "published",
                "members",
                true,
                Some(("visibility", "members")),
            ),
            ("published", "paid", true, Some(("visibility", "paid"))),
            ("scheduled", "tiers", true, Some(("visibility", "tiers"))),
        ];
        for (status, visibility, draft, extra) in cases {
            let (fm, tally) = front(status, visibility);
            let got = fm
                .get("draft")
                .and_then(toml::Value::as_bool)
                .unwrap_or(false);
            assert_eq!(got, draft, "{status} {visibility}");
            if let Some((k, v)) = extra {
                assert_eq!(
                    fm.get(k).and_then(toml::Value::as_str),
                    Some(v),
                    "{status} {visibility}"
                );
            }
            assert_eq!(tally.members_only.is_empty(), visibility == "public");
            assert_eq!(tally.drafts, usize::from(draft));
        }
    }
}

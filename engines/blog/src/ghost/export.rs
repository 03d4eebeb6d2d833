//! The parts of a Ghost export the import uses, read from the JSON with
//! every relation resolved: posts and pages with their tags and authors
//! in order, the users, the settings, and how many rows every other table
//! has (for the report of what could not be carried over).
//!
//! The format is Ghost's database as JSON (docs.ghost.org/migration/custom):
//! `{"db": [{"meta": {...}, "data": {"posts": [...], ...}}]}`, or the same
//! without the `db` wrapper. Invariants: a value of the wrong type or a
//! post without a title or slug is an error naming its JSON path; a
//! relation naming a row that does not exist is a warning, not an error
//! (real databases have such rows), and the relation is dropped.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::date::{self, Stamp};
use super::json::{At, Broken};

/// A post or a page.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// The JSON path of its row, for messages: `db[0].data.posts[3]`.
    pub at: String,
    pub title: String,
    pub slug: String,
    pub page: bool,
    pub status: String,
    pub visibility: String,
    pub published: Option<Stamp>,
    pub created: Option<Stamp>,
    pub updated: Option<Stamp>,
    pub summary: Option<String>,
    pub feature_image: Option<String>,
    pub featured: bool,
    pub html: Option<String>,
    pub mobiledoc: Option<String>,
    pub lexical: Option<String>,
    /// Ghost 0.x's Markdown source (before mobiledoc).
    pub markdown: Option<String>,
    /// Fields kept as they are, as front matter extras (meta_title,
    /// codeinjection_head, ...), in a fixed order.
    pub extra: Vec<(&'static str, String)>,
    /// Public tag names, in Ghost's order.
    pub tags: Vec<Tag>,
    /// Author slugs, in Ghost's order (the first is the primary author).
    pub authors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub name: String,
    pub slug: String,
}

#[derive(Debug, Clone, Default)]
pub struct User {
    pub slug: String,
    pub name: String,
    pub bio: Option<String>,
    pub website: Option<String>,
    pub image: Option<String>,
    pub owner: bool,
}

#[derive(Debug, Default)]
pub struct Export {
    pub version: Option<String>,
    pub entries: Vec<Entry>,
    pub users: Vec<User>,
    /// Public tags used by at least one post.
    pub tags: Vec<Tag>,
    /// Internal (`#name`) tags, skipped.
    pub internal_tags: usize,
    pub settings: BTreeMap<String, String>,
    /// Rows per table of `data`, for the report.
    pub tables: BTreeMap<String, usize>,
    pub warnings: Vec<String>,
}

/// Front matter extras: (field, value), in `EXTRA_FIELDS` order.
type Extras = Vec<(&'static str, String)>;

/// Post fields kept as front matter extras, when not empty.
const EXTRA_FIELDS: &[&str] = &[
    "meta_title",
    "meta_description",
    "canonical_url",
    "codeinjection_head",
    "codeinjection_foot",
    "og_title",
    "og_description",
    "twitter_title",
    "twitter_description",
    "feature_image_alt",
    "feature_image_caption",
];

pub fn read(json: &Value) -> Result<Export, Broken> {
    let top = At::root(json, "");
    top.expect_object()?;
    let db = match top.get("db").is_absent() {
        true => top,
        false => top
            .get("db")
            .items()?
            .into_iter()
            .next()
            .ok_or_else(|| top.get("db").broken("empty: no export in it"))?,
    };
    db.expect_object()?;
    let data = db.get("data");
    if data.is_absent() {
        return Err(data.broken("missing: this is not a Ghost export"));
    }
    data.expect_object()?;
    let mut out = Export {
        version: db.get("meta").get("version").opt_str()?,
        ..Export::default()
    };
    if let Some(tables) = data.value.as_object() {
        for (name, rows) in tables {
            if let Value::Array(rows) = rows {
                out.tables.insert(name.clone(), rows.len());
            }
        }
    }
    for row in data.get("settings").items()? {
        if let Some(key) = row.get("key").opt_str()? {
            let value = match row.get("value").value {
                Value::Null => continue,
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.settings.insert(key, value);
        }
    }
    let (users, user_slugs) = users(&data)?;
    out.users = users;
    let tags = tags(&data, &mut out)?;
    let posts_meta = posts_meta(&data)?;
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut fallbacks: Vec<Option<String>> = Vec::new();
    for row in data.get("posts").items()? {
        let id = row.get("id").req_str()?;
        let mut entry = entry(&row)?;
        if let Some(meta) = posts_meta.get(&id) {
            for (k, v) in meta {
                if !entry.extra.iter().any(|(have, _)| have == k) {
                    entry.extra.push((k, v.clone()));
                }
            }
        }
        // Ghost 1: one author on the post row, used when posts_authors
        // names none for the post.
        let fallback = row.get("author_id").opt_str()?;
        fallbacks.push(fallback.and_then(|a| user_slugs.get(&a).cloned()));
        by_id.insert(id, out.entries.len());
        out.entries.push(entry);
    }
    relate(
        &data,
        "posts_tags",
        "tag_id",
        &by_id,
        &mut out,
        |e, id, w| {
            match tags.get(id) {
                Some(Some(tag)) => e.tags.push(tag.clone()),
                Some(None) => {} // internal tag
                None => w.push(format!("no tag with id '{id}'")),
            }
        },
    )?;
    relate(
        &data,
        "posts_authors",
        "author_id",
        &by_id,
        &mut out,
        |e, id, w| match user_slugs.get(id) {
            Some(slug) if !e.authors.contains(slug) => e.authors.push(slug.clone()),
            Some(_) => {}
            None => w.push(format!("no user with id '{id}'")),
        },
    )?;
    for (e, fallback) in out.entries.iter_mut().zip(fallbacks) {
        if e.authors.is_empty() {
            e.authors.extend(fallback);
        }
    }
    let mut used: Vec<Tag> = Vec::new();
    for t in out.entries.iter().flat_map(|e| e.tags.iter()) {
        if !used.contains(t) {
            used.push(t.clone());
        }
    }
    out.tags = used;
    Ok(out)
}

fn users(data: &At) -> Result<(Vec<User>, HashMap<String, String>), Broken> {
    let owner_roles: Vec<String> = data
        .get("roles")
        .items()?
        .iter()
        .filter(|r| r.get("name").opt_str().ok().flatten().as_deref() == Some("Owner"))
        .filter_map(|r| r.get("id").opt_str().ok().flatten())
        .collect();
    let mut owners: Vec<String> = Vec::new();
    for ru in data.get("roles_users").items()? {
        if let Some(role) = ru.get("role_id").opt_str()? {
            if owner_roles.contains(&role) {
                owners.extend(ru.get("user_id").opt_str()?);
            }
        }
    }
    let mut users = Vec::new();
    let mut slugs = HashMap::new();
    for row in data.get("users").items()? {
        let id = row.get("id").req_str()?;
        let slug = row.get("slug").req_str()?;
        check_slug(&slug).map_err(|e| row.get("slug").broken(&e))?;
        slugs.insert(id.clone(), slug.clone());
        users.push(User {
            name: row.get("name").text()?.unwrap_or_else(|| slug.clone()),
            slug,
            bio: row.get("bio").text()?,
            website: row.get("website").text()?,
            image: row
                .get("profile_image")
                .text()?
                .or(row.get("image").text()?),
            owner: owners.contains(&id),
        });
    }
    Ok((users, slugs))
}

/// Tag id → the tag, or `None` for an internal tag (skipped).
fn tags(data: &At, out: &mut Export) -> Result<HashMap<String, Option<Tag>>, Broken> {
    let mut tags = HashMap::new();
    for row in data.get("tags").items()? {
        let id = row.get("id").req_str()?;
        let name = row.get("name").req_str()?;
        let internal = name.starts_with('#')
            || row.get("visibility").opt_str()?.as_deref() == Some("internal");
        if internal {
            out.internal_tags += 1;
            tags.insert(id, None);
            continue;
        }
        let slug = row
            .get("slug")
            .text()?
            .unwrap_or_else(|| name.to_lowercase());
        tags.insert(id, Some(Tag { name, slug }));
    }
    Ok(tags)
}

/// Ghost 4+ keeps some of a post's fields in `posts_meta`, keyed by post_id.
fn posts_meta(data: &At) -> Result<HashMap<String, Extras>, Broken> {
    let mut out: HashMap<String, Extras> = HashMap::new();
    for row in data.get("posts_meta").items()? {
        let Some(post) = row.get("post_id").opt_str()? else {
            continue;
        };
        for key in EXTRA_FIELDS {
            if let Some(v) = row.get(key).text()? {
                out.entry(post.clone()).or_default().push((key, v));
            }
        }
    }
    Ok(out)
}

/// Applies each row of a join table (`posts_tags`, `posts_authors`) to
/// its post, in `sort_order` (then file order).
fn relate(
    data: &At,
    table: &str,
    other: &str,
    by_id: &HashMap<String, usize>,
    out: &mut Export,
    mut apply: impl FnMut(&mut Entry, &str, &mut Vec<String>),
) -> Result<(), Broken> {
    let mut rows = Vec::new();
    for (i, row) in data.get(table).items()?.into_iter().enumerate() {
        let post = row.get("post_id").req_str()?;
        let id = row.get(other).req_str()?;
        let order = row.get("sort_order").value.as_f64().unwrap_or(0.0);
        rows.push((order, i, post, id, row.path));
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for (_, _, post, id, path) in rows {
        let Some(&i) = by_id.get(&post) else {
            out.warnings
                .push(format!("{path}: no post with id '{post}'; skipped"));
            continue;
        };
        let mut w = Vec::new();
        apply(&mut out.entries[i], &id, &mut w);
        for m in w {
            out.warnings.push(format!("{path}: {m}; skipped"));
        }
    }
    Ok(())
}

fn stamp(at: &At) -> Result<Option<Stamp>, Broken> {
    date::parse(at.value).map_err(|e| at.broken(&e))
}

fn entry(row: &At) -> Result<Entry, Broken> {
    let slug = row.get("slug").req_str()?;
    check_slug(&slug).map_err(|e| row.get("slug").broken(&e))?;
    let page = match row.get("type").opt_str()? {
        Some(t) => t == "page",
        None => row.get("page").flag()?, // Ghost 1
    };
    let mut extra = Vec::new();
    for key in EXTRA_FIELDS {
        if let Some(v) = row.get(key).text()? {
            extra.push((*key, v));
        }
    }
    Ok(Entry {
        at: row.path.clone(),
        title: row.get("title").req_str()?,
        slug,
        page,
        status: row
            .get("status")
            .opt_str()?
            .unwrap_or_else(|| "published".into()),
        visibility: row
            .get("visibility")
            .opt_str()?
            .unwrap_or_else(|| "public".into()),
        published: stamp(&row.get("published_at"))?,
        created: stamp(&row.get("created_at"))?,
        updated: stamp(&row.get("updated_at"))?,
        summary: row.get("custom_excerpt").text()?,
        feature_image: row
            .get("feature_image")
            .text()?
            .or(row.get("image").text()?),
        featured: row.get("featured").flag()?,
        html: row.get("html").text()?,
        mobiledoc: row.get("mobiledoc").text()?,
        lexical: row.get("lexical").text()?,
        markdown: row.get("markdown").text()?,
        extra,
        ..Entry::default()
    })
}

/// A slug becomes a file name (`posts/SLUG.md`) and a URL path segment:
/// letters, digits, `-`, `_`, `.` and `~` (what the blog accepts in front
/// matter; Ghost's own slugs are always of that kind), never `.` or `..`.
pub fn check_slug(slug: &str) -> Result<(), String> {
    let ok = !slug.is_empty()
        && slug != "."
        && slug != ".."
        && slug
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "slug '{slug}' cannot be a file name and URL segment (letters, digits, - _ . ~ only)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn export(data: Value) -> Export {
        read(&json!({"db": [{"meta": {"version": "5.0.0"}, "data": data}]})).unwrap()
    }

    fn post(id: &str) -> Value {
        json!({"id": id, "title": id, "slug": id, "published_at": "2024-01-01"})
    }

    #[test]
    fn relations_in_sort_order_with_internal_tags_and_dangling_rows() {
        let e = export(json!({
            "posts": [post("p1"), post("p2")],
            "tags": [
                {"id": "a", "name": "A", "slug": "a"},
                {"id": "b", "name": "B", "slug": "b"},
                {"id": "h", "name": "#hidden", "slug": "hash-hidden", "visibility": "internal"}
            ],
            "posts_tags": [
                {"post_id": "p1", "tag_id": "a", "sort_order": 2},
                {"post_id": "p1", "tag_id": "h", "sort_order": 0},
                {"post_id": "p1", "tag_id": "b", "sort_order": 1},
                {"post_id": "p1", "tag_id": "gone", "sort_order": 3},
                {"post_id": "nope", "tag_id": "a"}
            ],
            "users": [{"id": "u1", "slug": "jo", "name": "Jo"}, {"id": "u2", "slug": "sam"}],
            "posts_authors": [
                {"post_id": "p1", "author_id": "u2", "sort_order": 1},
                {"post_id": "p1", "author_id": "u1", "sort_order": 0},
                {"post_id": "p1", "author_id": "u1", "sort_order": 2}
            ]
        }));
        let names: Vec<&str> = e.entries[0].tags.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["B", "A"]);
        assert_eq!(e.entries[0].authors, ["jo", "sam"]);
        assert!(e.entries[1].tags.is_empty() && e.entries[1].authors.is_empty());
        assert_eq!(e.internal_tags, 1);
        assert_eq!(e.tags.len(), 2);
        assert_eq!(
            e.users[1].name, "sam",
            "a user without a name is named by slug"
        );
        assert_eq!(
            e.warnings,
            [
                // In sort_order: the row without one counts as 0.
                "db[0].data.posts_tags[4]: no post with id 'nope'; skipped",
                "db[0].data.posts_tags[3]: no tag with id 'gone'; skipped"
            ]
        );
    }

    #[test]
    fn ghost1_rows_and_no_wrapper() {
        let e = read(&json!({"meta": {}, "data": {
            "posts": [{"id": 1, "title": "T", "slug": "t", "page": 1, "author_id": 7, "created_at": 0}],
            "users": [{"id": 7, "slug": "old", "name": "Old"}]
        }}))
        .unwrap();
        assert!(e.entries[0].page);
        assert_eq!(e.entries[0].authors, ["old"]);
        assert_eq!(
            e.entries[0].created.as_ref().unwrap().rfc3339,
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn slugs() {
        for ok in ["hello-world", "v1.2", "a_b", "ünïcode", "x~y"] {
            assert!(check_slug(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "a?b", "../x", "a\\b"] {
            assert!(check_slug(bad).is_err(), "{bad:?}");
        }
    }
}

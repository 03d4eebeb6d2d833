//! The bytes of each planned file: template contexts for lists, posts,
//! pages, the tag index, feeds, the sitemap, and the plain files
//! (robots.txt, the search index, the stylesheets).
//!
//! Owns the template variables (documented in docs/blog-writing.md) and
//! the fetching of rendered bodies: from the memo when it holds them,
//! else rendered from the source and memo'd. Invariant: values from
//! front matter reach templates as plain strings (autoescaped); only
//! rendered bodies and summaries are marked safe, and in feeds even
//! those are plain strings, so they are escaped into XML text.

use std::io;
use std::sync::Arc;

use minijinja::{context, Value};

use super::date::Date;
use super::front;
use super::highlight;
use super::markdown::{self, html_text, shorten, Rendered};
use super::memo;
use super::plan::{author_prefix, list_url, page_count, page_slice, tag_prefix, Job, FEED_POSTS};
use super::search;
use super::words::{encode_path, escape_html, slugify};
use crate::site::{theme, Entry, Group, Site};

pub fn render(site: &Site, job: &Job) -> io::Result<Vec<u8>> {
    let html = |name: &str, ctx: Value| site.templates.render(name, ctx).map(String::into_bytes);
    match *job {
        Job::Index(page) => {
            let all: Vec<usize> = (0..site.posts.len()).collect();
            html("index.html", list(site, &all, "/", page, context! {})?)
        }
        Job::Tag(t, page) => html("index.html", tag_list(site, t, page)?),
        Job::Author(a, page) => html("index.html", author_list(site, a, page)?),
        Job::Post(i) => html(
            template_of(&site.posts[i], "post.html"),
            post_page(site, i)?,
        ),
        Job::Page(i) => {
            let e = &site.pages[i];
            let body = body(site, e)?;
            let ctx = context! { page => entry_value(site, e, Some(&body), Mode::Full), ..base(site, &e.url) };
            html(template_of(e, "page.html"), ctx)
        }
        Job::TagIndex => {
            let tags: Vec<Value> = site.tags.iter().map(tag_value).collect();
            html("tags.html", context! { tags, ..base(site, "/tag/") })
        }
        // Served at any URL that has no page: it has no canonical one.
        Job::NotFound => html(
            "404.html",
            context! { canonical => (), ..base(site, "/404.html") },
        ),
        Job::Rss | Job::Atom => {
            let all: Vec<usize> = (0..site.posts.len().min(FEED_POSTS)).collect();
            let own = if *job == Job::Rss {
                "/rss/"
            } else {
                "/atom.xml"
            };
            feed(site, *job == Job::Rss, &all, &site.config.title, "/", own)
        }
        Job::TagRss(t) => {
            let g = &site.tags[t];
            let title = format!("{} · {}", g.name, site.config.title);
            let prefix = tag_prefix(g);
            feed(
                site,
                true,
                &g.posts,
                &title,
                &prefix,
                &format!("{prefix}rss/"),
            )
        }
        Job::AuthorRss(a) => {
            let g = &site.authors[a];
            let title = format!("{} · {}", g.name, site.config.title);
            let prefix = author_prefix(g);
            feed(
                site,
                true,
                &g.posts,
                &title,
                &prefix,
                &format!("{prefix}rss/"),
            )
        }
        Job::Sitemap => sitemap(site),
        Job::Robots => Ok(format!(
            "User-agent: *\nAllow: /\nDisallow: /search\n\nSitemap: {}/sitemap.xml\n",
            site.config.base_url
        )
        .into_bytes()),
        Job::SearchIndex => search_index(site),
        Job::Style => Ok(theme::STYLE.as_bytes().to_vec()),
        Job::Highlight => Ok(highlight::css().into_bytes()),
    }
}

/// The template a source asks for with `template = "NAME"` in its front
/// matter (one of the site's templates/), else `default`.
pub fn template_of<'a>(e: &'a Entry, default: &'a str) -> &'a str {
    e.meta
        .extra
        .get("template")
        .and_then(|v| v.as_str())
        .unwrap_or(default)
}

fn tag_value(g: &Group) -> Value {
    context! { name => g.name.clone(), slug => g.slug.clone(), url => tag_prefix(g), count => g.posts.len() }
}

fn tag_list(site: &Site, t: usize, page: usize) -> io::Result<Value> {
    let g = &site.tags[t];
    let extra = context! {
        heading => g.name.clone(),
        kind => "tag",
        kind_label => "Tag",
        tag => tag_value(g),
        feed_url => format!("{}rss/", tag_prefix(g)),
    };
    list(site, &g.posts, &tag_prefix(g), page, extra)
}

fn author_list(site: &Site, a: usize, page: usize) -> io::Result<Value> {
    let g = &site.authors[a];
    let extra = context! {
        heading => g.name.clone(),
        kind => "author",
        kind_label => "Author",
        author => author_value(site, &g.slug),
        feed_url => format!("{}rss/", author_prefix(g)),
    };
    list(site, &g.posts, &author_prefix(g), page, extra)
}

fn post_page(site: &Site, i: usize) -> io::Result<Value> {
    let e = &site.posts[i];
    let body = body(site, e)?;
    let near = |n: Option<usize>| {
        n.and_then(|n| site.posts.get(n))
            .map(|p| context! { title => p.meta.title.clone(), url => p.url.clone() })
    };
    Ok(context! {
        post => entry_value(site, e, Some(&body), Mode::Full),
        newer => near(i.checked_sub(1)),
        older => near(i.checked_add(1)),
        ..base(site, &e.url),
    })
}

fn search_index(site: &Site) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    for e in &site.posts {
        let b = body(site, e)?;
        let date = e.meta.date.map_or(0, |d| d.unix);
        search::write_line(&mut out, &e.url, &e.meta.title, date, &e.meta.tags, &b.text);
    }
    Ok(out)
}

/// The `site` variable every template gets.
pub fn site_value(config: &super::config::Config) -> Value {
    context! {
        title => config.title.clone(),
        description => config.description.clone(),
        base_url => config.base_url.clone(),
        language => config.language.clone(),
        author => config.author.clone(),
        navigation => Value::from_serialize(&config.navigation),
        authors => Value::from_serialize(&config.authors),
        extra => Value::from_serialize(&config.extra),
    }
}

/// Variables every page gets: `site`, `url` (this page's path) and
/// `canonical` (its absolute URL).
pub fn base_context(config: &super::config::Config, url: &str) -> Value {
    context! {
        site => site_value(config),
        url => url.to_string(),
        canonical => format!("{}{}", config.base_url, url),
    }
}

fn base(site: &Site, url: &str) -> Value {
    base_context(&site.config, url)
}

fn list(
    site: &Site,
    posts: &[usize],
    prefix: &str,
    page: usize,
    extra: Value,
) -> io::Result<Value> {
    let per = site.config.posts_per_page;
    let pages = page_count(posts.len(), per);
    let mut shown = Vec::new();
    for &i in page_slice(posts, per, page) {
        let e = &site.posts[i];
        let s = summary(site, e)?;
        shown.push(entry_value(site, e, Some(&s), Mode::List));
    }
    let url = list_url(prefix, page);
    let pagination = context! {
        page,
        pages,
        prev => (page > 1).then(|| list_url(prefix, page - 1)),
        next => (page < pages).then(|| list_url(prefix, page + 1)),
    };
    let common = context! { ..extra, ..base(site, &url) };
    Ok(context! { posts => shown, pagination, ..common })
}

fn author_value(site: &Site, slug: &str) -> Value {
    let a = site.author(slug);
    context! {
        slug => a.slug.clone(),
        name => a.name,
        bio => a.bio,
        website => a.website,
        image => a.image,
        url => format!("/author/{}/", encode_path(&a.slug)),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// In a list: summary, safe.
    List,
    /// Its own page: content and summary, safe.
    Full,
    /// In a feed: content and summary as text (escaped into the XML),
    /// links made absolute.
    Feed,
}

fn summary_html(e: &Entry, body: &Rendered) -> String {
    match &e.meta.summary {
        Some(s) => format!("<p>{}</p>", escape_html(s)),
        None => body.summary.clone(),
    }
}

/// A post or page as templates see it.
fn entry_value(site: &Site, e: &Entry, body: Option<&Rendered>, mode: Mode) -> Value {
    let m = &e.meta;
    let fmt = |d: Option<Date>, f: fn(Date) -> String| d.map(f);
    let tags: Vec<Value> = m
        .tags
        .iter()
        .filter(|t| !slugify(t).is_empty())
        .map(|t| {
            let slug = slugify(t);
            context! { name => t.clone(), url => format!("/tag/{}/", encode_path(&slug)), slug }
        })
        .collect();
    let authors: Vec<Value> = e.authors.iter().map(|a| author_value(site, a)).collect();
    let (summary, content) = match body {
        Some(b) => (summary_html(e, b), b.html.clone()),
        None => (String::new(), String::new()),
    };
    let summary_text = m.summary.clone().unwrap_or_else(|| {
        html_text(&summary)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    });
    let (summary, content) = match mode {
        Mode::List => (Value::from_safe_string(summary), Value::from(())),
        Mode::Full => (
            Value::from_safe_string(summary),
            Value::from_safe_string(content),
        ),
        Mode::Feed => (
            Value::from(absolute_links(&summary, &site.config.base_url)),
            Value::from(absolute_links(&content, &site.config.base_url)),
        ),
    };
    context! {
        title => m.title.clone(),
        slug => m.slug.clone(),
        url => e.url.clone(),
        permalink => format!("{}{}", site.config.base_url, e.url),
        date => fmt(m.date, Date::rfc3339),
        date_human => fmt(m.date, Date::human),
        date_rfc2822 => fmt(m.date, Date::rfc2822),
        updated => fmt(m.updated, Date::rfc3339),
        updated_human => fmt(m.updated, Date::human),
        tags,
        authors,
        summary,
        description => shorten(&summary_text, 200),
        summary_text,
        content,
        feature_image => m.feature_image.clone(),
        // At 230 words a minute; none for an empty body.
        reading_minutes => body.filter(|b| b.words > 0).map(|b| b.words.div_ceil(230)),
        draft => m.draft,
        extra => Value::from_serialize(&m.extra),
    }
}

/// Makes root-relative `href="/` and `src="/` absolute, for feed
/// readers that do not resolve them against the item's link.
fn absolute_links(html: &str, base: &str) -> String {
    html.replace("href=\"/", &format!("href=\"{base}/"))
        .replace(&format!("href=\"{base}//"), "href=\"//")
        .replace("src=\"/", &format!("src=\"{base}/"))
        .replace(&format!("src=\"{base}//"), "src=\"//")
}

/// A feed of the newest `FEED_POSTS` of `posts`: titled `title`, for
/// the page at URL path `link`, itself at `own`.
fn feed(
    site: &Site,
    rss: bool,
    posts: &[usize],
    title: &str,
    link: &str,
    own: &str,
) -> io::Result<Vec<u8>> {
    let shown = &posts[..posts.len().min(FEED_POSTS)];
    let mut items = Vec::new();
    for &i in shown {
        let e = &site.posts[i];
        let b = body(site, e)?;
        items.push(entry_value(site, e, Some(&b), Mode::Feed));
    }
    let newest = shown
        .iter()
        .filter_map(|&i| site.posts[i].meta.updated.or(site.posts[i].meta.date))
        .max();
    let base_url = &site.config.base_url;
    let ctx = context! {
        posts => items,
        feed => context! { title, link => format!("{base_url}{link}"), self_url => format!("{base_url}{own}") },
        updated => newest.map_or_else(|| "1970-01-01T00:00:00Z".to_string(), Date::rfc3339),
        updated_rfc2822 => newest.map(Date::rfc2822),
        ..base(site, own),
    };
    site.templates
        .render(if rss { "rss.xml" } else { "atom.xml" }, ctx)
        .map(String::into_bytes)
}

fn sitemap(site: &Site) -> io::Result<Vec<u8>> {
    let base_url = &site.config.base_url;
    let lastmod = |e: &Entry| e.meta.updated.or(e.meta.date).map(Date::rfc3339);
    let newest = site.posts.first().and_then(lastmod);
    let mut urls = vec![context! { loc => format!("{base_url}/"), lastmod => newest.clone() }];
    for e in site.posts.iter().chain(&site.pages) {
        urls.push(context! { loc => format!("{base_url}{}", e.url), lastmod => lastmod(e) });
    }
    if !site.tags.is_empty() {
        urls.push(context! { loc => format!("{base_url}/tag/"), lastmod => newest });
    }
    for g in &site.tags {
        let last = g.posts.first().and_then(|&i| lastmod(&site.posts[i]));
        urls.push(context! { loc => format!("{base_url}{}", tag_prefix(g)), lastmod => last });
    }
    site.templates
        .render(
            "sitemap.xml",
            context! { urls, ..base(site, "/sitemap.xml") },
        )
        .map(String::into_bytes)
}

/// A source's rendered body: from the memo when it holds this content,
/// else rendered now (and memo'd, unless the file changed meanwhile).
pub fn body(site: &Site, e: &Entry) -> io::Result<Rendered> {
    if let Some(dir) = &site.memo_dir {
        if let Some(b) = memo::read_body(dir, e.identity, e.content) {
            return Ok(b);
        }
    }
    let bytes = std::fs::read(&e.file)?;
    let text = String::from_utf8_lossy(&bytes);
    let rendered = match front::split(&text) {
        Ok(sp) => markdown::render(sp.body, e.meta.format),
        Err(_) => Rendered::default(),
    };
    if let Some(dir) = &site.memo_dir {
        let unchanged = super::hash::of(&bytes) == e.content
            && memo::identity(&e.file).ok() == Some(e.identity);
        if unchanged {
            memo::write(
                dir,
                e.identity,
                &memo::Head::new(e.content, e.meta.clone()),
                &rendered,
            );
        }
    }
    Ok(rendered)
}

/// A body for a list: only its summary is used. Without a memo, kept in
/// memory (summaries only) so a build renders each body once for lists.
fn summary(site: &Site, e: &Entry) -> io::Result<Arc<Rendered>> {
    if let Some(dir) = &site.memo_dir {
        if let Some(r) = memo::read_summary(dir, e.identity, e.content) {
            return Ok(Arc::new(r));
        }
        return body(site, e).map(Arc::new);
    }
    let mut cache = site.summaries.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = cache.get(&e.identity) {
        return Ok(r.clone());
    }
    let full = body(site, e)?;
    let r = Arc::new(Rendered {
        summary: full.summary,
        words: full.words,
        ..Rendered::default()
    });
    cache.insert(e.identity, r.clone());
    Ok(r)
}

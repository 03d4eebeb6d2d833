//! The report printed after an import: what was written, what could not be
//! carried over (each with what to do about it), and what is left to do.
//!
//! Owns the wording and the list of Ghost tables that have no counterpart.
//! Invariant: one finding per line, `  name: ...`, so a writer (or a test)
//! can find each by its name; a table missing from the export or empty is
//! not mentioned.

use std::path::Path;

use super::export::Export;
use super::output::Tally;

/// Ghost tables with no counterpart: (name in the report, tables counted,
/// what to do).
const TABLES: &[(&str, &[&str], &str)] = &[
    (
        "members",
        &["members"],
        "jawas-blog has no members; export them from Ghost admin (Members, Export) as CSV to keep the list",
    ),
    (
        "newsletters",
        &["newsletters"],
        "jawas-blog sends no email; readers can follow /rss/ or /atom.xml, or move the list to a mail service",
    ),
    (
        "subscriptions",
        &["members_stripe_customers_subscriptions", "subscriptions", "members_products", "offers"],
        "paid subscriptions stay in Stripe; cancel or move them there",
    ),
    (
        "comments",
        &["comments"],
        "jawas-blog has no comments; Ghost's native comments are not in a form it can show",
    ),
    (
        "snippets",
        &["snippets"],
        "snippets are editor templates; paste any you need into posts by hand",
    ),
    (
        "recommendations",
        &["recommendations"],
        "jawas-blog has no recommendations page; list them on a page in pages/",
    ),
    (
        "webhooks",
        &["webhooks"],
        "a file-based blog has no events to send; use your deploy or a cron job instead",
    ),
    (
        "integrations",
        &["integrations", "api_keys"],
        "Admin/Content API keys do not apply; tools that posted through the API must write files instead",
    ),
];

/// The whole report.
pub fn text(export: &Export, t: &Tally, site: &Path, dry_run: bool) -> String {
    let mut lines = written(export, t, site, dry_run);
    lines.push("Not carried over:".into());
    lines.extend(not_carried(export, t).into_iter().map(|l| format!("  {l}")));
    lines.push("To do:".into());
    lines.extend(to_do(export, t, site).into_iter().map(|l| format!("  {l}")));
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn written(export: &Export, t: &Tally, site: &Path, dry_run: bool) -> Vec<String> {
    let verb = if dry_run { "would write" } else { "wrote" };
    let version = export.version.as_deref().unwrap_or("unknown");
    let mut out = vec![
        format!(
            "Ghost export (version {version}) {verb} to {}:",
            site.display()
        ),
        format!("  posts: {}", t.posts),
        format!("  pages: {}", t.pages),
        format!("  drafts: {}", t.drafts),
    ];
    if !t.scheduled.is_empty() {
        out.push(format!(
            "  scheduled: {} (published when their date comes: {})",
            t.scheduled.len(),
            t.scheduled.join(", ")
        ));
    }
    out.push(format!(
        "  tags: {} (internal #tags skipped: {})",
        t.tags, export.internal_tags
    ));
    out.push(format!("  authors: {}", t.authors));
    let formats: Vec<String> = t
        .formats
        .iter()
        .map(|(k, v)| format!("{v} from {k}"))
        .collect();
    out.push(match formats.is_empty() {
        true => "  bodies: none".into(),
        false => format!("  bodies: {}", formats.join(", ")),
    });
    out
}

fn not_carried(export: &Export, t: &Tally) -> Vec<String> {
    let mut out = Vec::new();
    for (what, names, todo) in TABLES {
        let n: usize = names.iter().filter_map(|n| export.tables.get(*n)).sum();
        if n > 0 {
            out.push(format!("{what}: {n} not imported: {todo}"));
        }
    }
    let setting = |k: &str| export.settings.get(k).is_some_and(|v| !v.trim().is_empty());
    let site_ci = ["codeinjection_head", "codeinjection_foot"]
        .iter()
        .filter(|k| setting(k))
        .count();
    if site_ci > 0 || !t.code_injection.is_empty() {
        let posts = match t.code_injection.is_empty() {
            true => String::new(),
            false => format!(
                " and in {} post(s) ({})",
                t.code_injection.len(),
                t.code_injection.join(", ")
            ),
        };
        out.push(format!(
            "code injection: in the site settings ({site_ci}){posts}: kept as \
             codeinjection_head/codeinjection_foot (site.toml [extra], post front matter) but \
             the built-in theme does not output it; add it to a template override in \
             templates/ if you still need it"
        ));
    }
    if export
        .settings
        .get("is_private")
        .is_some_and(|v| v == "true")
    {
        out.push(
            "private site: Ghost asked visitors for a password (Settings, Make this site \
             private); jawas-blog serves every published post to anyone, so do not serve the \
             site until that is what you want"
                .into(),
        );
    }
    out.extend(posts(t));
    out.push(
        "custom routes: routes.yaml and redirects (Ghost's Labs settings) are not in the \
         export; add old URLs as aliases in the posts' front matter"
            .into(),
    );
    out
}

/// Findings about single posts and tags.
fn posts(t: &Tally) -> Vec<String> {
    let mut out = Vec::new();
    if !t.members_only.is_empty() {
        let names: Vec<String> = t
            .members_only
            .iter()
            .map(|(s, v)| format!("{s} ({v})"))
            .collect();
        out.push(format!(
            "post visibility: {} members-only post(s) imported as drafts: {}; jawas-blog has \
             no members, so set draft = false only for those you want public",
            names.len(),
            names.join(", ")
        ));
    }
    for u in &t.unconverted {
        out.push(format!(
            "body part not converted: {u} (kept as an HTML comment in the post)"
        ));
    }
    for (name, ghost, ours) in &t.tag_urls {
        out.push(format!(
            "tag URL changes: '{name}' was /tag/{ghost}/ on Ghost and is /tag/{ours}/ now; \
             rename the tag or redirect the old URL"
        ));
    }
    out
}

fn to_do(export: &Export, t: &Tally, site: &Path) -> Vec<String> {
    let mut out = vec![format!(
        "images: copy Ghost's content/images folder to {}/static/content/images (posts refer \
         to /content/images/...)",
        site.display()
    )];
    if t.base_url_guessed {
        out.push(
            "base_url: the export does not hold the site's address; set base_url in site.toml \
             (or rerun with --base-url)"
                .into(),
        );
    }
    if t.posts_per_page_unknown {
        out.push(
            "posts_per_page: Ghost's theme set it (package.json config.posts_per_page); set the \
             same in site.toml so /page/N/ lists the same posts"
                .into(),
        );
    }
    out.extend(export.warnings.iter().map(|w| format!("warning: {w}")));
    out
}

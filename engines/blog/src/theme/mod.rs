//! The built-in theme (templates and stylesheet, embedded in the
//! binary) and the template environment a site renders with, where a
//! file in the site's `templates/` overrides the built-in of that name.
//!
//! Owns `Templates`. Invariants: autoescape is on for `.html` and
//! `.xml` templates, so values from front matter are escaped unless a
//! value is explicitly marked safe (rendered bodies and summaries);
//! `hash` covers every template in use, so a change to any of them
//! changes every key.

use std::path::Path;

use minijinja::{Environment, Value};

use crate::site::content::hash::Fnv;
use crate::site::Finding;

/// Built-in templates, by name; each can be overridden.
pub const BUILTIN: &[(&str, &str)] = &[
    ("base.html", include_str!("base.html")),
    ("macros.html", include_str!("macros.html")),
    ("index.html", include_str!("index.html")),
    ("post.html", include_str!("post.html")),
    ("page.html", include_str!("page.html")),
    ("tags.html", include_str!("tags.html")),
    ("404.html", include_str!("404.html")),
    ("search.html", include_str!("search.html")),
    ("rss.xml", include_str!("rss.xml")),
    ("atom.xml", include_str!("atom.xml")),
    ("sitemap.xml", include_str!("sitemap.xml")),
];

/// The theme's stylesheet, served at `/theme/style.css`.
pub const STYLE: &str = include_str!("style.css");

pub struct Templates {
    env: Environment<'static>,
    pub hash: u128,
}

impl Templates {
    /// The built-in templates with the site's `templates/` laid over
    /// them. A template that does not parse is a finding with its line.
    pub fn load(site_dir: &Path) -> (Templates, Vec<Finding>) {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_formatter(formatter);
        let mut sources: Vec<(String, String, Option<std::path::PathBuf>)> = BUILTIN
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string(), None))
            .collect();
        let mut findings = Vec::new();
        let dir = site_dir.join("templates");
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut files: Vec<_> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            for path in files {
                let Some(name) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(str::to_string)
                else {
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        sources.retain(|(n, _, _)| *n != name);
                        sources.push((name, text, Some(path)));
                    }
                    Err(e) => findings.push(Finding {
                        file: path,
                        line: 0,
                        message: format!("cannot read the template: {e}"),
                    }),
                }
            }
        }
        let mut hash = Fnv::new();
        hash.str(env!("CARGO_PKG_VERSION"));
        for (name, text, path) in sources {
            hash.str(&name).str(&text);
            if let Err(e) = env.add_template_owned(name.clone(), text) {
                findings.push(Finding {
                    file: path.unwrap_or_else(|| Path::new("<built-in>").join(&name)),
                    line: e.line().unwrap_or(0),
                    message: format!("template error: {}", e.detail().unwrap_or("syntax error")),
                });
            }
        }
        (
            Templates {
                env,
                hash: hash.finish(),
            },
            findings,
        )
    }

    /// Whether a template of that name exists.
    pub fn has(&self, name: &str) -> bool {
        self.env.get_template(name).is_ok()
    }

    /// Renders template `name` with `ctx`. An error names the template
    /// and line, for the writer who overrode it.
    pub fn render(&self, name: &str, ctx: Value) -> std::io::Result<String> {
        let tmpl = self.env.get_template(name).map_err(template_error)?;
        tmpl.render(ctx).map_err(template_error)
    }
}

/// Escapes strings as HTML and XML need (`& < > " '`), and no more:
/// minijinja's default also escapes `/`, which bloats every URL.
fn formatter(
    out: &mut minijinja::Output,
    state: &minijinja::State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    match value.as_str() {
        Some(s) if !value.is_safe() && state.auto_escape() != minijinja::AutoEscape::None => out
            .write_str(&crate::site::content::words::escape_html(s))
            .map_err(|_| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "cannot write")),
        _ => minijinja::escape_formatter(out, state, value),
    }
}

fn template_error(e: minijinja::Error) -> std::io::Error {
    let place = match (e.name(), e.line()) {
        (Some(n), Some(l)) => format!("templates/{n}:{l}: "),
        (Some(n), None) => format!("templates/{n}: "),
        _ => String::new(),
    };
    std::io::Error::other(format!("{place}{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn builtins_parse_and_overrides_win() {
        let dir = std::env::temp_dir().join(format!("jawas-blog-theme-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        let (t, f) = Templates::load(&dir);
        assert!(f.is_empty(), "{f:?}");
        let builtin_hash = t.hash;
        std::fs::write(dir.join("templates/404.html"), "gone {{ site.title }}").unwrap();
        let (t, f) = Templates::load(&dir);
        assert!(f.is_empty(), "{f:?}");
        assert_ne!(t.hash, builtin_hash);
        let out = t
            .render("404.html", context! { site => context! { title => "<T>" } })
            .unwrap();
        assert_eq!(out, "gone &lt;T&gt;");
        std::fs::write(dir.join("templates/post.html"), "line one\n{% if %}\n").unwrap();
        let (_, f) = Templates::load(&dir);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].line, 2);
        assert!(f[0].file.ends_with("templates/post.html"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

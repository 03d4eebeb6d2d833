//! `jawas-blog import-ghost EXPORT.json --site DIR`: a Ghost blog moved
//! to a jawas-blog site directory, keeping every URL Ghost served.
//!
//! Reads the JSON file Ghost's admin "Export content" writes (Ghost 4 and
//! 5; Ghost 1 to 3 exports too), writes `site.toml`, `posts/SLUG.md` and
//! `pages/SLUG.md`, and prints a report of what was written and what
//! could not be carried over (members, newsletters, code injection, ...),
//! each with what to do about it. The parts: `json` (paths in messages),
//! `date`, `export` (the model), `mobiledoc`, `lexical` and `cards` (bodies
//! to HTML), `body` (which field a body comes from), `output` (the files),
//! `report` (what the writer reads afterwards).
//!
//! Invariants: nothing is written unless the whole export was read and
//! every file rendered; an existing file is never overwritten without
//! `--force`; each file is written to a temporary name and renamed, so a
//! reader never sees half a post. Exit codes: 0 done, 1 the export is
//! broken (the message names the JSON path or the post), 100 usage (or
//! files in the way), 111 a write failed.

mod body;
mod cards;
mod date;
mod export;
mod json;
mod lexical;
mod mobiledoc;
mod output;
mod report;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use jawas_engine::{exit, help_text, parse_args, report, Error, Mode, Opt, Spec};

const NAME: &str = "jawas-blog import-ghost";

const OPTIONS: &[Opt] = &[
    Opt::value(
        "site",
        "DIR",
        "Write the site into DIR (created when missing).",
    ),
    Opt::flag(
        "force",
        "Overwrite site.toml and post files that already exist (without it, \
         nothing is written when any is in the way).",
    ),
    Opt::value(
        "base-url",
        "URL",
        "The blog's address for site.toml, e.g. https://example.org (Ghost's \
         export does not hold it).",
    ),
    Opt::value(
        "posts-per-page",
        "N",
        "Posts per index page: Ghost's theme set it (package.json \
         config.posts_per_page); the same N keeps /page/N/ URLs pointing at \
         the same posts.",
    ),
];

const SPEC: Spec = Spec {
    name: NAME,
    version: env!("CARGO_PKG_VERSION"),
    usage: &["EXPORT.json --site DIR"],
    about: "Imports a Ghost blog from the JSON file Ghost's admin writes (Settings,\n\
            Import/Export, Export content): posts and pages with their tags, authors,\n\
            dates, feature images and drafts, and the site's settings into site.toml.\n\
            Prints what was written and what could not be carried over.",
    options: OPTIONS,
};

/// The runtime's help for the option table, with the common options and
/// exit codes of a subcommand rather than of an engine serving a connection.
fn help() -> String {
    let text = help_text(&SPEC);
    let table = text
        .split("Options every Jawas engine has:")
        .next()
        .unwrap_or(&text);
    format!(
        "{table}\
         Also:\n  \
         --check             Read the export and print the report; write nothing.\n  \
         -h, --help          Print this help and exit.\n  \
         -V, --version       Print the version and exit.\n\n\
         Exit codes: 0 done, 1 the export is broken (the message names where), 100\n\
         usage error or files in the way, 111 a file could not be written.\n"
    )
}

/// The subcommand; `args` are the words after `import-ghost`.
pub fn main(args: &[OsString]) -> i32 {
    let (mode, args) = match parse_args(&SPEC, args.iter().cloned()) {
        Ok(parsed) => parsed,
        Err(e) => return report(NAME, &e),
    };
    match mode {
        Mode::Help => {
            print!("{}", help());
            return exit::OK;
        }
        Mode::Version => {
            println!("{NAME} {}", SPEC.version);
            return exit::OK;
        }
        Mode::Serve | Mode::Check => {}
    }
    match run(&args, mode == Mode::Check) {
        Ok(()) => exit::OK,
        Err(e) => report(NAME, &e),
    }
}

fn run(args: &jawas_engine::Args, dry_run: bool) -> Result<(), Error> {
    let export_path = match args.positionals() {
        [one] => PathBuf::from(one),
        [] => {
            return Err(Error::usage(
                "missing EXPORT.json (the file Ghost's admin exported)",
            ))
        }
        [_, extra, ..] => return Err(Error::usage(format!("unexpected argument '{extra}'"))),
    };
    let site = args
        .value("site")
        .map(PathBuf::from)
        .ok_or_else(|| Error::usage("missing --site DIR (where to write the site)"))?;
    let base_url = args.value("base-url").map(str::to_string);
    if let Some(u) = &base_url {
        if !(u.starts_with("https://") || u.starts_with("http://")) || u.len() < 10 {
            return Err(Error::usage(format!(
                "--base-url '{u}' is not an absolute http(s) URL such as https://example.org"
            )));
        }
    }
    let posts_per_page = match args.value("posts-per-page") {
        None => None,
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                return Err(Error::usage(format!(
                    "--posts-per-page '{v}' is not a positive number"
                )))
            }
        },
    };
    let text = std::fs::read(&export_path)
        .map_err(|e| Error::config(format!("cannot read {}: {e}", export_path.display())))?;
    let json: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| Error::peer(format!("{}: not JSON: {e}", export_path.display())))?;
    let export =
        export::read(&json).map_err(|b| Error::peer(format!("{}: {b}", export_path.display())))?;
    let opts = output::Options {
        base_url,
        posts_per_page,
    };
    let built = output::build(&export, &opts)
        .map_err(|m| Error::peer(format!("{}: {m}", export_path.display())))?;
    if !dry_run {
        write_all(&site, &built.files, args.flag("force"))?;
    }
    print!("{}", report::text(&export, &built.tally, &site, dry_run));
    Ok(())
}

/// Writes every file, after checking none is in the way (unless `force`).
fn write_all(site: &Path, files: &[(String, String)], force: bool) -> Result<(), Error> {
    if !force {
        let taken: Vec<String> = files
            .iter()
            .map(|(rel, _)| site.join(rel))
            .filter(|p| p.symlink_metadata().is_ok())
            .map(|p| p.display().to_string())
            .collect();
        if !taken.is_empty() {
            let shown = taken.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
            let more = match taken.len() {
                n if n > 5 => format!(" and {} more", n - 5),
                _ => String::new(),
            };
            return Err(Error::usage(format!(
                "{} file(s) already exist: {shown}{more}; nothing written (use --force to overwrite)",
                taken.len()
            )));
        }
    }
    for (rel, text) in files {
        let path = site.join(rel);
        let fail = |what: &str, e: std::io::Error| {
            Error::system(format!("{what} {}: {e}", path.display()))
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail("cannot create the directory of", e))?;
        }
        let mut tmp = path.clone().into_os_string();
        tmp.push(".import-tmp");
        std::fs::write(&tmp, text).map_err(|e| fail("cannot write", e))?;
        std::fs::rename(&tmp, &path).map_err(|e| fail("cannot rename into", e))?;
    }
    Ok(())
}

//! Command-line options: one table per engine (`Opt`) drives both the
//! parser (lexopt underneath) and the `--help` text, so the two cannot
//! disagree.
//!
//! Owns the options every engine has (`--check`, `--help`, `--version`),
//! the did-you-mean for unknown long options, and `Args`, the checked
//! result an engine's `init` reads. Invariants: every option in `Args` is
//! in the table, a flag never has a value and a valued option always has
//! one; parsing stops at the first usage error (after an unknown option,
//! whether the next word is its value or an argument cannot be known).

use std::ffi::OsString;
use std::time::Duration;

use crate::Error;

/// One option: `--long`, maybe `-s`, maybe a value, and its help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opt {
    /// The name without dashes: `root` for `--root`.
    pub long: &'static str,
    /// A one-letter alias, if any.
    pub short: Option<char>,
    /// The value's name in the help (`DIR`), or `None` for a flag.
    pub value: Option<&'static str>,
    /// What it does, for `--help`: plain sentences, wrapped by the runtime.
    pub help: &'static str,
}

impl Opt {
    /// An option without a value: `--listing`.
    pub const fn flag(long: &'static str, help: &'static str) -> Opt {
        Opt {
            long,
            short: None,
            value: None,
            help,
        }
    }

    /// An option with a value: `--root DIR` (or `--root=DIR`).
    pub const fn value(long: &'static str, value: &'static str, help: &'static str) -> Opt {
        Opt {
            long,
            short: None,
            value: Some(value),
            help,
        }
    }

    /// The same option with a one-letter alias.
    pub const fn short(self, c: char) -> Opt {
        Opt {
            short: Some(c),
            ..self
        }
    }
}

/// The options every engine has; the runtime handles them before `init`.
pub const COMMON: &[Opt] = &[
    Opt::flag(
        "check",
        "Check the arguments and what they name (directories, files, \
         addresses), then exit without serving: 0 if all is well, 100 with one \
         'NAME: error: ...' line per problem on stderr. Reads and writes no \
         connection.",
    ),
    Opt::flag("help", "Print this help and exit.").short('h'),
    Opt::flag("version", "Print the engine's name and version and exit.").short('V'),
];

/// What the command line asks for besides the options themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Initialise, then serve the connection on fds 0 and 1.
    Serve,
    /// `--check`: initialise and check, report, exit.
    Check,
    /// `--help`.
    Help,
    /// `--version`.
    Version,
}

/// Everything `--help` and the parser need to know about an engine.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub version: &'static str,
    /// Synopsis lines after the name and `[OPTION]...`, e.g. `--root DIR`.
    pub usage: &'static [&'static str],
    /// Paragraphs describing the engine and its arguments, pre-wrapped.
    pub about: &'static str,
    /// The engine's own options (not `COMMON`).
    pub options: &'static [Opt],
}

impl Spec {
    /// Names used twice across the table and `COMMON` (a bug in the
    /// engine's table; `start` asserts there are none in debug builds).
    pub fn conflicts(&self) -> Vec<String> {
        let all: Vec<&Opt> = COMMON.iter().chain(self.options).collect();
        let mut out = Vec::new();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                if a.long == b.long {
                    out.push(format!("--{}", a.long));
                }
                if a.short.is_some() && a.short == b.short {
                    out.push(format!("-{}", a.short.unwrap_or('?')));
                }
            }
        }
        out
    }
}

/// The parsed command line, in order, checked against the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    table: &'static [Opt],
    given: Vec<(&'static str, Option<String>)>,
    positionals: Vec<String>,
}

impl Args {
    /// Whether the flag `--long` was given.
    pub fn flag(&self, long: &str) -> bool {
        self.known(long);
        self.given.iter().any(|(n, _)| *n == long)
    }

    /// The value of the last `--long VALUE` (later ones override earlier).
    pub fn value(&self, long: &str) -> Option<&str> {
        self.values(long).last()
    }

    /// Every value of a repeatable option, in order.
    pub fn values<'a>(&'a self, long: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.known(long);
        // Resolve to the table's own &'static name, so the iterator does
        // not borrow the caller's string.
        let name = self.table.iter().find(|o| o.long == long).map(|o| o.long);
        self.given
            .iter()
            .filter(move |(n, _)| Some(*n) == name)
            .filter_map(|(_, v)| v.as_deref())
    }

    /// The last value of `--long` converted by `f`; a failure becomes a
    /// usage error naming the option and value: `--timeout 'x': MESSAGE`.
    pub fn parse<T>(
        &self,
        long: &str,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, Error> {
        self.value(long)
            .map(|v| f(v).map_err(|m| Error::usage(format!("--{long} '{v}': {m}"))))
            .transpose()
    }

    /// Every value of a repeatable option converted by `f`, or every
    /// failure (one line each, as for `parse`), so `--check` names them all.
    pub fn parse_all<T>(
        &self,
        long: &str,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Vec<T>, Error> {
        let mut ok = Vec::new();
        let mut failed: Option<Error> = None;
        for v in self.values(long) {
            match f(v) {
                Ok(t) => ok.push(t),
                Err(m) => {
                    let e = Error::usage(format!("--{long} '{v}': {m}"));
                    failed = Some(match failed {
                        None => e,
                        Some(prev) => prev.and(e),
                    });
                }
            }
        }
        failed.map_or(Ok(ok), Err)
    }

    /// Which of several opposing flags came last (`--listing` against
    /// `--no-listing`), or `None` if none was given.
    pub fn last_of(&self, longs: &[&str]) -> Option<&'static str> {
        longs.iter().for_each(|l| self.known(l));
        self.given
            .iter()
            .rev()
            .find(|(n, _)| longs.contains(n))
            .map(|(n, _)| *n)
    }

    /// The arguments that are not options, in order.
    pub fn positionals(&self) -> &[String] {
        &self.positionals
    }

    /// Every option given, in order, with its value.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, Option<&str>)> + '_ {
        self.given.iter().map(|(n, v)| (*n, v.as_deref()))
    }

    /// Asking for an option the table does not have is a bug in the
    /// engine (it would silently read as "not given"), caught in tests.
    fn known(&self, long: &str) {
        debug_assert!(
            self.table.iter().any(|o| o.long == long),
            "option --{long} is not in the engine's table"
        );
    }
}

/// Parses `args` (without the program name) against the engine's table
/// and `COMMON`. `--help` and `--version` win as soon as they are seen.
pub fn parse_args(
    spec: &Spec,
    args: impl IntoIterator<Item = OsString>,
) -> Result<(Mode, Args), Error> {
    let mut p = lexopt::Parser::from_args(args);
    let mut mode = Mode::Serve;
    let mut out = Args {
        table: spec.options,
        ..Args::default()
    };
    loop {
        let arg = p.next().map_err(lexopt_error)?;
        let opt = match arg {
            None => break,
            Some(lexopt::Arg::Value(v)) => {
                out.positionals.push(utf8(v, "argument")?);
                continue;
            }
            Some(lexopt::Arg::Long(l)) => {
                find(spec, |o| o.long == l).ok_or_else(|| unknown_long(spec, l))?
            }
            Some(lexopt::Arg::Short(c)) => find(spec, |o| o.short == Some(c))
                .ok_or_else(|| Error::usage(format!("unknown option -{c}")))?,
        };
        match opt.long {
            "help" => return Ok((Mode::Help, out)),
            "version" => return Ok((Mode::Version, out)),
            "check" => mode = Mode::Check,
            _ => {
                let value = match opt.value {
                    None => None,
                    Some(_) => Some(option_value(spec, opt, &mut p)?),
                };
                out.given.push((opt.long, value));
            }
        }
    }
    Ok((mode, out))
}

/// `COMMON` first: `--help`, `--version` and `--check` always mean the
/// same, whatever an engine's table says (`Spec::conflicts` catches that).
fn find(spec: &Spec, pred: impl Fn(&Opt) -> bool) -> Option<&'static Opt> {
    COMMON.iter().chain(spec.options).find(|o| pred(o))
}

/// The value of a valued option. A value that is itself one of our long
/// options (`--root --listing`) is far more likely a forgotten value than
/// a directory of that name, so it is an error.
fn option_value(spec: &Spec, opt: &Opt, p: &mut lexopt::Parser) -> Result<String, Error> {
    let name = opt.value.unwrap_or("VALUE");
    let v = match p.value() {
        Ok(v) => utf8(v, &format!("--{}", opt.long))?,
        Err(_) => {
            return Err(Error::usage(format!(
                "--{} needs a value ({name})",
                opt.long
            )))
        }
    };
    let looks_like_option = v
        .strip_prefix("--")
        .map(|rest| rest.split('=').next().unwrap_or(rest))
        .is_some_and(|l| find(spec, |o| o.long == l).is_some());
    if looks_like_option {
        return Err(Error::usage(format!(
            "--{} needs a value ({name}) but got the option {v}",
            opt.long
        )));
    }
    Ok(v)
}

fn utf8(v: OsString, what: &str) -> Result<String, Error> {
    v.into_string()
        .map_err(|v| Error::usage(format!("{what} {v:?} is not valid UTF-8")))
}

fn lexopt_error(e: lexopt::Error) -> Error {
    match e {
        lexopt::Error::UnexpectedValue { option, value } => Error::usage(format!(
            "{option} takes no value (got '{}')",
            value.to_string_lossy()
        )),
        other => Error::usage(other.to_string()),
    }
}

fn unknown_long(spec: &Spec, given: &str) -> Error {
    let names = spec.options.iter().chain(COMMON).map(|o| o.long);
    match suggest(given, names) {
        Some(s) => Error::usage(format!("unknown option --{given} (did you mean --{s}?)")),
        None => Error::usage(format!("unknown option --{given}")),
    }
}

/// The known name closest to `given`, if close enough to be a likely typo:
/// within an edit distance that grows with the length (a swap of two
/// letters counts as one edit), or the only name `given` is a prefix of.
pub fn suggest<'a>(given: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let names: Vec<&str> = names.into_iter().collect();
    let limit = match given.chars().count() {
        0..=3 => 1,
        4..=8 => 2,
        _ => 3,
    };
    let best = names
        .iter()
        .map(|n| (distance(given, n), *n))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n);
    best.or_else(|| {
        let mut prefixed = names
            .iter()
            .filter(|n| given.len() >= 3 && n.starts_with(given));
        match (prefixed.next(), prefixed.next()) {
            (Some(n), None) => Some(*n),
            _ => None,
        }
    })
}

/// Edit distance with adjacent transpositions (optimal string alignment).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The `--help` text: usage lines, the description, then every option of
/// the table and of `COMMON` with its help wrapped beside it.
pub fn help_text(spec: &Spec) -> String {
    let mut s = String::new();
    for (i, u) in spec.usage.iter().enumerate() {
        let lead = if i == 0 { "usage:" } else { "      " };
        s.push_str(&format!("{lead} {} [OPTION]... {u}\n", spec.name).replace(" \n", "\n"));
    }
    if spec.usage.is_empty() {
        s.push_str(&format!("usage: {} [OPTION]...\n", spec.name));
    }
    s.push('\n');
    s.push_str(spec.about.trim_end());
    s.push_str("\n\n");
    let width = spec
        .options
        .iter()
        .chain(COMMON)
        .map(|o| left_column(o).len())
        .max()
        .unwrap_or(0);
    if !spec.options.is_empty() {
        s.push_str("Options:\n");
        for o in spec.options {
            push_option(&mut s, o, width);
        }
        s.push('\n');
    }
    s.push_str("Options every Jawas engine has:\n");
    for o in COMMON {
        push_option(&mut s, o, width);
    }
    s.push('\n');
    s.push_str(&wrap(
        "",
        "Exit codes: 0 done, 1 the peer broke the protocol or went away, \
         100 usage or configuration error, 111 temporary system failure.",
        0,
    ));
    s.push_str(&format!("{} {}\n", spec.name, spec.version));
    s
}

fn left_column(o: &Opt) -> String {
    let short = o.short.map(|c| format!("-{c}, ")).unwrap_or_default();
    match o.value {
        Some(v) => format!("{short}--{} {v}", o.long),
        None => format!("{short}--{}", o.long),
    }
}

/// Help lines are wrapped to this many columns.
const COLUMNS: usize = 79;

fn push_option(s: &mut String, o: &Opt, width: usize) {
    let lead = format!("  {:width$}  ", left_column(o));
    s.push_str(&wrap(&lead, o.help, 2 + width + 2));
}

/// `text` wrapped to `COLUMNS`, after `lead` on the first line and
/// `indent` spaces on the others. A word longer than a line is not split.
fn wrap(lead: &str, text: &str, indent: usize) -> String {
    let mut out = String::new();
    let mut line = lead.to_string();
    let mut fresh = true;
    for word in text.split_whitespace() {
        if !fresh && line.len() + 1 + word.len() > COLUMNS {
            out.push_str(line.trim_end());
            out.push('\n');
            line = " ".repeat(indent);
            fresh = true;
        }
        if !fresh {
            line.push(' ');
        }
        line.push_str(word);
        fresh = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

/// A positive number of seconds, fractions allowed: `--timeout 2.5`.
pub fn parse_secs(v: &str) -> Result<Duration, String> {
    v.parse::<f64>()
        .ok()
        .filter(|n| *n > 0.0 && *n <= 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| "not a positive number of seconds".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[Opt] = &[
        Opt::value("root", "DIR", "Serve files from DIR."),
        Opt::value("cache-control", "PATTERN=VALUE", "Send Cache-Control: VALUE for paths matching PATTERN. May be given more than once; the first match wins, which is how most people expect an ordered list of rules to behave when they overlap."),
        Opt::flag("listing", "List directories."),
        Opt::flag("no-listing", "Do not list directories."),
        Opt::value("timeout", "SECS", "Give up after SECS.").short('t'),
        Opt::flag("verbose", "Say more.").short('v'),
    ];

    const SPEC: Spec = Spec {
        name: "jawas-test",
        version: "9.9.9",
        usage: &["--root DIR [FILE]..."],
        about: "A test engine.\n",
        options: TABLE,
    };

    fn run(args: &[&str]) -> Result<(Mode, Args), String> {
        parse_args(&SPEC, args.iter().map(OsString::from)).map_err(|e| {
            assert_eq!(e.code(), crate::exit::USAGE);
            e.lines().join("\n")
        })
    }

    #[test]
    fn modes() {
        let table: &[(&[&str], Mode)] = &[
            (&[], Mode::Serve),
            (&["--root", "/"], Mode::Serve),
            (&["--check", "--root", "/"], Mode::Check),
            (&["--root", "/", "--check"], Mode::Check),
            (&["--help"], Mode::Help),
            (&["-h"], Mode::Help),
            (&["--check", "--help"], Mode::Help),
            // Help wins before a later error is seen.
            (&["--help", "--bogus"], Mode::Help),
            (&["--version"], Mode::Version),
            (&["-V"], Mode::Version),
            (&["-vV"], Mode::Version),
        ];
        for (args, want) in table {
            assert_eq!(run(args).map(|(m, _)| m), Ok(*want), "{args:?}");
        }
    }

    #[test]
    fn values_flags_and_positionals() {
        let (_, a) = run(&[
            "--root=/srv",
            "-t",
            "2",
            "--cache-control",
            "*.css=max-age=60",
            "--listing",
            "file1",
            "--cache-control=*=no-cache",
            "-vt5",
            "--no-listing",
            "--",
            "--not-an-option",
        ])
        .unwrap();
        assert_eq!(a.value("root"), Some("/srv"));
        assert_eq!(a.value("timeout"), Some("5"), "the last one wins");
        assert_eq!(
            a.values("cache-control").collect::<Vec<_>>(),
            ["*.css=max-age=60", "*=no-cache"]
        );
        assert!(a.flag("verbose") && a.flag("listing"));
        assert_eq!(a.last_of(&["listing", "no-listing"]), Some("no-listing"));
        assert_eq!(a.positionals(), ["file1", "--not-an-option"]);
        assert_eq!(
            a.parse("timeout", parse_secs).unwrap(),
            Some(Duration::from_secs(5))
        );
        assert_eq!(a.iter().count(), 8);
        let (_, empty) = run(&[]).unwrap();
        assert_eq!(empty.value("root"), None);
        assert!(!empty.flag("listing"));
        assert_eq!(empty.last_of(&["listing", "no-listing"]), None);
        assert_eq!(empty.parse("timeout", parse_secs), Ok(None));
    }

    #[test]
    fn usage_errors_name_what_was_wrong() {
        let table: &[(&[&str], &str)] = &[
            (
                &["--cache-controll", "x=y"],
                "unknown option --cache-controll (did you mean --cache-control?)",
            ),
            (
                &["--rot", "/"],
                "unknown option --rot (did you mean --root?)",
            ),
            (
                &["--lsiting"],
                "unknown option --lsiting (did you mean --listing?)",
            ),
            (
                &["--cache", "x"],
                "unknown option --cache (did you mean --cache-control?)",
            ),
            (
                &["--chekc"],
                "unknown option --chekc (did you mean --check?)",
            ),
            (&["--frobnicate"], "unknown option --frobnicate"),
            (&["-x"], "unknown option -x"),
            (&["--root"], "--root needs a value (DIR)"),
            (&["-t"], "--timeout needs a value (SECS)"),
            (
                &["--root", "--listing"],
                "--root needs a value (DIR) but got the option --listing",
            ),
            (
                &["--root", "--timeout=3"],
                "--root needs a value (DIR) but got the option --timeout=3",
            ),
            (&["--listing=yes"], "--listing takes no value (got 'yes')"),
            (&["--check=1"], "--check takes no value (got '1')"),
        ];
        for (args, want) in table {
            assert_eq!(run(args).map(|_| ()), Err(want.to_string()), "{args:?}");
        }
    }

    #[test]
    fn bad_values_name_the_option() {
        let (_, a) = run(&["--timeout", "soon"]).unwrap();
        let e = a.parse("timeout", parse_secs).unwrap_err();
        assert_eq!(
            e.lines(),
            ["--timeout 'soon': not a positive number of seconds"]
        );
        assert_eq!(e.code(), crate::exit::USAGE);
    }

    #[test]
    fn parse_all_reports_every_bad_value() {
        let pair = |v: &str| {
            v.split_once('=')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| "expected PATTERN=VALUE".to_string())
        };
        let (_, a) = run(&["--cache-control", "a=1", "--cache-control", "b=2"]).unwrap();
        assert_eq!(
            a.parse_all("cache-control", pair).unwrap(),
            [("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        let (_, a) = run(&[
            "--cache-control",
            "x",
            "--cache-control",
            "a=1",
            "--cache-control=y",
        ])
        .unwrap();
        assert_eq!(
            a.parse_all("cache-control", pair).unwrap_err().lines(),
            [
                "--cache-control 'x': expected PATTERN=VALUE",
                "--cache-control 'y': expected PATTERN=VALUE"
            ]
        );
        let (_, none) = run(&[]).unwrap();
        assert_eq!(none.parse_all("cache-control", pair), Ok(vec![]));
    }

    #[test]
    fn non_utf8_is_an_error_not_a_panic() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![b'/', 0xff]);
        let e = parse_args(&SPEC, [OsString::from("--root"), bad.clone()]).unwrap_err();
        assert!(e.lines()[0].starts_with("--root "), "{e}");
        assert!(e.lines()[0].ends_with("is not valid UTF-8"), "{e}");
        assert!(parse_args(&SPEC, [bad]).is_err());
    }

    #[test]
    fn suggestions() {
        let names = [
            "root",
            "index",
            "listing",
            "cache-control",
            "not-found",
            "check",
            "help",
        ];
        let table = [
            ("roto", Some("root")),
            ("indx", Some("index")),
            ("not_found", Some("not-found")),
            ("notfound", Some("not-found")),
            ("cache-contrl", Some("cache-control")),
            ("hlep", Some("help")),
            ("lis", Some("listing")),
            ("li", None),
            ("zzzz", None),
            ("", None),
            ("verbose", None),
        ];
        for (given, want) in table {
            assert_eq!(suggest(given, names), want, "{given}");
        }
        for (a, b, d) in [
            ("", "", 0),
            ("abc", "abc", 0),
            ("ab", "ba", 1),
            ("kitten", "sitting", 3),
        ] {
            assert_eq!(distance(a, b), d, "{a} {b}");
        }
    }

    #[test]
    fn help_lists_and_describes_every_option() {
        let h = help_text(&SPEC);
        assert!(
            h.starts_with("usage: jawas-test [OPTION]... --root DIR [FILE]...\n"),
            "{h}"
        );
        assert!(h.contains("\nA test engine.\n"), "{h}");
        for o in TABLE.iter().chain(COMMON) {
            let left = left_column(o);
            let line = h.lines().find(|l| l.trim_start().starts_with(&left));
            let line = line.unwrap_or_else(|| panic!("no line for {left}:\n{h}"));
            let first_word = o.help.split_whitespace().next().unwrap();
            assert!(line.contains(first_word), "{line}");
        }
        assert!(h.contains("  -t, --timeout SECS "), "{h}");
        assert!(h.contains("  -h, --help "), "{h}");
        assert!(h.lines().all(|l| l.len() <= COLUMNS), "{h}");
        // The long help wraps with a hanging indent under the help column.
        let wrapped = h
            .lines()
            .skip_while(|l| !l.contains("--cache-control"))
            .nth(1)
            .unwrap();
        let col = h
            .lines()
            .find(|l| l.starts_with("  --root DIR"))
            .unwrap()
            .find("Serve")
            .unwrap();
        assert_eq!(wrapped.len() - wrapped.trim_start().len(), col, "{h}");
        assert!(h.ends_with("jawas-test 9.9.9\n"), "{h}");
    }

    #[test]
    fn conflicting_tables_are_found() {
        assert!(SPEC.conflicts().is_empty());
        const BAD: &[Opt] = &[
            Opt::flag("check", "mine"),
            Opt::flag("hush", "quiet").short('h'),
            Opt::flag("a", "").short('a'),
            Opt::flag("b", "").short('a'),
        ];
        let spec = Spec {
            options: BAD,
            ..SPEC
        };
        assert_eq!(spec.conflicts(), ["--check", "-h", "-a"]);
    }

    #[test]
    fn seconds() {
        let table = [
            ("1", Some(Duration::from_secs(1))),
            ("2.5", Some(Duration::from_millis(2500))),
            ("0", None),
            ("-1", None),
            ("nan", None),
            ("inf", None),
            ("1e300", None),
            ("", None),
            ("soon", None),
        ];
        for (v, want) in table {
            assert_eq!(parse_secs(v).ok(), want, "{v}");
        }
    }
}

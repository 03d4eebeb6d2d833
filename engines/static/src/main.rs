//! jawas-static: serves files from one directory over HTTP/1.1, one
//! connection per process (stdin/stdout), keep-alive and pipelining within it.
//!
//! Start-up, options (one table that also writes `--help`), `--version`,
//! `--check` and exit codes come from the engine runtime, jawas-engine:
//! `init` validates every option and opens the root once; `serve` runs the
//! HTTP loop of jawas-http on the connection.
//!
//! Failure paths, each one HTTP answer: a path that cannot be parsed (400),
//! a path that is hidden, missing or leaves the root (404), a method other
//! than GET/HEAD/OPTIONS (405 with Allow), failed preconditions (412), an
//! unsatisfiable range (416), a file that cannot be read (403 or 500).
//! Usage and configuration errors exit 100 before anything is read, with
//! one `jawas-static: error: ...` line each.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use jawas_engine::{join, Args, Connection, Engine, Error, Opt};
use jawas_http::{format_http_date, options, Body, Conn, Limits, Request, Response, Segment};

use jawas_http::path::{html_escape, percent_encode, segments, PathError};
use jawas_http::rules::{
    accepts_encoding, evaluate, mime_for, parse_range, Condition, Ranges, Validators,
};

struct Options {
    root: PathBuf,
    index: Vec<String>,
    listing: bool,
    mime: Vec<(String, String)>,
    cache_control: Vec<(String, String)>,
    not_found: Option<PathBuf>,
    follow_symlinks: bool,
    show_dotfiles: bool,
    limits: Limits,
    access_log: bool,
}

const OPTIONS: &[Opt] = &[
    Opt::value("root", "DIR", "Serve the files under DIR (required)."),
    Opt::value(
        "index",
        "NAMES",
        "Comma-separated index file names, tried in order for a directory \
         (default index.html).",
    ),
    Opt::flag(
        "listing",
        "List a directory without an index file as an HTML page.",
    ),
    Opt::flag(
        "no-listing",
        "Answer 404 for a directory without an index file (the default).",
    ),
    Opt::value(
        "mime",
        "EXT=TYPE",
        "Send Content-Type TYPE for files ending in .EXT, adding to or \
         overriding the built-in types. Repeatable.",
    ),
    Opt::value(
        "cache-control",
        "PATTERN=VALUE",
        "Send Cache-Control: VALUE for files whose URL path or name matches \
         PATTERN (* and ? wildcards), e.g. '*.css=max-age=3600'. Repeatable; \
         the first match wins.",
    ),
    Opt::value(
        "not-found",
        "FILE",
        "Body of 404 answers: FILE, relative to the root or absolute \
         (default: a built-in page).",
    ),
    Opt::flag(
        "follow-symlinks",
        "Follow symbolic links that leave the root.",
    ),
    Opt::flag("show-dotfiles", "Serve names starting with '.'."),
    options::IDLE_TIMEOUT,
    options::REQUEST_TIMEOUT,
    options::SEND_TIMEOUT,
    options::NO_ACCESS_LOG,
];

/// The engine: its options and the root, opened once by `init`.
struct Static {
    server: Server,
}

impl Engine for Static {
    const NAME: &'static str = "jawas-static";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const USAGE: &'static [&'static str] = &["--root DIR"];
    const ABOUT: &'static str = "\
Serves the files under DIR over HTTP/1.1 on the connection on fds 0 and 1
(keep-alive and pipelining within it): GET, HEAD and OPTIONS, conditional
requests, ranges, precompressed FILE.br and FILE.gz siblings, index files and
optional listings. Paths never leave DIR (openat2 RESOLVE_BENEATH) unless
--follow-symlinks; names starting with '.' are hidden. One access log line
per request on stderr (syslog when stderr is the connection).";
    const OPTIONS: &'static [Opt] = OPTIONS;

    fn init(args: &Args) -> Result<Self, Error> {
        let (opts, root_fd) = options(args)?;
        Ok(Static {
            server: Server {
                opts,
                root_fd,
                no_siblings: std::cell::RefCell::new(None),
            },
        })
    }

    /// The 404 page is looked for at every 404 (a missing one falls back to
    /// the built-in page), so only `--check` insists that it be readable.
    fn check(&self) -> Result<(), Error> {
        let Some(page) = &self.server.opts.not_found else {
            return Ok(());
        };
        let path = self.server.opts.root.join(page);
        // Non-blocking, so a FIFO there is refused at once, not waited on.
        let readable = open_nonblocking(&path).and_then(|f| f.metadata());
        match readable {
            Ok(m) if m.is_file() => Ok(()),
            Ok(_) => Err(Error::config(format!(
                "--not-found '{}': {} is not a regular file",
                page.display(),
                path.display()
            ))),
            Err(e) => Err(Error::config(format!(
                "--not-found '{}': {}: {}",
                page.display(),
                path.display(),
                os_text(&e)
            ))),
        }
    }

    fn serve(&mut self, conn: Connection) -> Result<(), Error> {
        let server = &self.server;
        let mut conn = Conn::from_connection(conn, server.opts.limits.clone());
        if !server.opts.access_log {
            conn.log = jawas_http::AccessLog::Off;
        }
        jawas_engine::status(jawas_http::serve(&mut conn, |conn, req| {
            // A request body is never read: the layer drains it after the
            // answer (or closes), so it cannot be taken for the next request.
            let resp = server.respond(&req);
            conn.send(Some(&req), resp)
        }))
    }
}

fn main() {
    jawas_engine::run::<Static>()
}

/// Every option checked (all problems reported at once), and the root
/// opened.
fn options(args: &Args) -> Result<(Options, OwnedFd), Error> {
    let extra = match args.positionals().first() {
        Some(a) => Err(Error::usage(format!("unexpected argument '{a}'"))),
        None => Ok(()),
    };
    let limits = options::limits(args);
    let pairs = join(
        args.parse_all("mime", parse_mime),
        args.parse_all("cache-control", parse_cache_control),
    );
    let ((root, root_fd), ((limits, pairs), ())) = join(
        open_root(args.value("root")),
        join(join(limits, pairs), extra),
    )?;
    let (mime, cache_control) = pairs;
    let index = args.value("index").map_or_else(
        || vec!["index.html".to_string()],
        |v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        },
    );
    let opts = Options {
        root,
        index,
        listing: args.last_of(&["listing", "no-listing"]) == Some("listing"),
        mime,
        cache_control,
        not_found: args.value("not-found").map(PathBuf::from),
        follow_symlinks: args.flag("follow-symlinks"),
        show_dotfiles: args.flag("show-dotfiles"),
        limits,
        access_log: options::access_log(args),
    };
    Ok((opts, root_fd))
}

/// `--root DIR`: required, a directory; its canonical path (for the
/// symlink checks) and the directory opened, beneath which every file is.
fn open_root(root: Option<&str>) -> Result<(PathBuf, OwnedFd), Error> {
    let root = root.ok_or_else(|| Error::usage("--root DIR is required"))?;
    let fail = |e: std::io::Error| {
        let msg = format!("--root '{root}': {}", os_text(&e));
        match e.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM) => Error::system(msg),
            _ => Error::config(msg),
        }
    };
    let canonical = std::fs::canonicalize(root).map_err(fail)?;
    if !std::fs::metadata(&canonical).map_err(fail)?.is_dir() {
        return Err(Error::config(format!("--root '{root}': not a directory")));
    }
    // O_DIRECTORY: should a FIFO be swapped in meanwhile, fail rather
    // than block in open.
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(&canonical)
        .map_err(fail)?;
    Ok((canonical, OwnedFd::from(dir)))
}

/// `--mime EXT=TYPE`: a leading dot on EXT is allowed and dropped.
fn parse_mime(v: &str) -> Result<(String, String), String> {
    let (ext, ty) = v.split_once('=').ok_or("expected EXT=TYPE")?;
    let ext = ext.trim_start_matches('.');
    if ext.is_empty() || ext.contains(['/', ' ']) {
        return Err("expected EXT=TYPE with a file extension such as css".into());
    }
    header_value(ty).map_err(|why| format!("TYPE {why}"))?;
    Ok((ext.to_string(), ty.to_string()))
}

/// `--cache-control PATTERN=VALUE`, split at the first `=` (the value may
/// hold more: `max-age=60`).
fn parse_cache_control(v: &str) -> Result<(String, String), String> {
    let (pattern, value) = v.split_once('=').ok_or("expected PATTERN=VALUE")?;
    if pattern.is_empty() {
        return Err("expected PATTERN=VALUE with a PATTERN such as *.css".into());
    }
    header_value(value).map_err(|why| format!("VALUE {why}"))?;
    Ok((pattern.to_string(), value.to_string()))
}

/// Whether `v` can be sent as a header value: not empty, no control
/// characters (a CR or LF would split the response).
fn header_value(v: &str) -> Result<(), &'static str> {
    if v.trim().is_empty() {
        Err("is empty")
    } else if v.chars().any(|c| c.is_control() && c != '\t') {
        Err("has a control character")
    } else {
        Ok(())
    }
}

/// An I/O error's text without the "(os error N)" Rust appends.
fn os_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

struct Server {
    opts: Options,
    /// The root, opened once; every file is opened beneath it.
    root_fd: OwnedFd,
    /// Paths known to have no `.br`/`.gz` sibling, and since when (the
    /// set is dropped after a second, so new siblings are seen).
    no_siblings:
        std::cell::RefCell<Option<(std::time::Instant, std::collections::HashSet<String>)>>,
}

impl Server {
    fn respond(&self, req: &Request) -> Response {
        match req.method.as_str() {
            "GET" | "HEAD" => {}
            "OPTIONS" => return Response::new(204).header("Allow", "GET, HEAD, OPTIONS"),
            _ => return Response::error(405).header("Allow", "GET, HEAD, OPTIONS"),
        }
        let segs = match segments(req.path(), self.opts.show_dotfiles) {
            Ok(s) => s,
            Err(PathError::Bad(_)) => return Response::error(400),
            Err(PathError::Hidden) => return self.not_found(),
        };
        let rel = segs.join("/");
        let file = match self.open(&rel) {
            Ok(f) => f,
            Err(e) => return self.open_error(&e),
        };
        let meta = match file.metadata() {
            Ok(m) => m,
            Err(_) => return Response::error(500),
        };
        if meta.is_dir() {
            if !req.path().ends_with('/') {
                let mut loc = percent_encode(&format!("/{rel}/"));
                if loc == "//" {
                    loc = "/".into();
                }
                if let Some(q) = req.query() {
                    loc.push('?');
                    loc.push_str(q);
                }
                return Response::error(301).header("Location", loc);
            }
            for name in &self.opts.index {
                let candidate = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                if let Ok(f) = self.open(&candidate) {
                    if let Ok(m) = f.metadata() {
                        if m.is_file() {
                            return self.file_response(req, &candidate, f, m);
                        }
                    }
                }
            }
            if self.opts.listing {
                return self.listing(&rel);
            }
            return self.not_found();
        }
        // A file named as a directory (`/small.txt/`) is not found, as the
        // kernel would say (ENOTDIR).
        if !meta.is_file() || names_a_directory(req.path()) {
            return self.not_found();
        }
        self.file_response(req, &rel, file, meta)
    }

    /// Opens `rel` beneath the root. Unless symlinks may leave the root,
    /// the kernel resolves the path and refuses any escape (openat2 with
    /// RESOLVE_BENEATH). RESOLVE_BENEATH also refuses every absolute
    /// symlink, even one pointing inside the root, so on that refusal the
    /// canonical path is checked and, when inside, opened with no symlinks
    /// allowed at all (a link swapped in meanwhile is refused). On kernels
    /// without openat2, the canonical path is checked instead.
    fn open(&self, rel: &str) -> std::io::Result<File> {
        let rel = if rel.is_empty() { "." } else { rel };
        if self.opts.follow_symlinks {
            return open_nonblocking(&self.opts.root.join(rel));
        }
        match self.open_beneath(rel, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EXDEV) | Some(libc::ENOSYS)) => {
                let full = std::fs::canonicalize(self.opts.root.join(rel))?;
                let inside = full
                    .strip_prefix(&self.opts.root)
                    .map_err(|_| std::io::Error::from_raw_os_error(libc::EXDEV))?;
                if e.raw_os_error() == Some(libc::ENOSYS) {
                    return open_nonblocking(&full);
                }
                let inside = inside.to_str().filter(|s| !s.is_empty()).unwrap_or(".");
                self.open_beneath(inside, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
            }
            other => other,
        }
    }

    /// openat2(2) of `rel` under the root fd with these RESOLVE_* flags.
    fn open_beneath(&self, rel: &str, resolve: u64) -> std::io::Result<File> {
        #[repr(C)]
        struct OpenHow {
            flags: u64,
            mode: u64,
            resolve: u64,
        }
        let c = CString::new(rel).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        let how = OpenHow {
            flags: OPEN_FLAGS as u64,
            mode: 0,
            resolve,
        };
        // SAFETY: openat2 with a valid dirfd, C path and open_how, all alive
        // for the call.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                std::os::fd::AsRawFd::as_raw_fd(&self.root_fd),
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a descriptor the kernel just gave us, owned by nobody else.
        Ok(unsafe { File::from_raw_fd(fd as i32) })
    }

    fn open_error(&self, e: &std::io::Error) -> Response {
        match e.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => Response::error(403),
            // ENOENT, ENOTDIR, EXDEV (escape refused), ELOOP, ENAMETOOLONG...
            _ => self.not_found(),
        }
    }

    fn not_found(&self) -> Response {
        if let Some(page) = &self.opts.not_found {
            let path = if page.is_absolute() {
                page.clone()
            } else {
                self.opts.root.join(page)
            };
            if let Some(body) = read_regular(&path) {
                return Response::new(404)
                    .bytes(&mime_for(&path.to_string_lossy(), &self.opts.mime), body);
            }
        }
        Response::error(404)
    }

    fn cache_control(&self, rel: &str) -> Option<&str> {
        let url = format!("/{rel}");
        self.opts
            .cache_control
            .iter()
            .find(|(pattern, _)| {
                glob(pattern, &url) || glob(pattern, rel.rsplit('/').next().unwrap_or(rel))
            })
            .map(|(_, v)| v.as_str())
    }

    /// 200, 206, 304, 412 or 416 for a regular file, choosing a
    /// precompressed sibling when the client accepts it.
    fn file_response(
        &self,
        req: &Request,
        rel: &str,
        file: File,
        meta: std::fs::Metadata,
    ) -> Response {
        let mut chosen = (file, meta, None::<&str>);
        let mut has_variant = false;
        // Most files have no precompressed sibling; remember that for a
        // second so a kept-alive client does not cost two failed opens per
        // request.
        let no_siblings = {
            let cache = self.no_siblings.borrow();
            cache.as_ref().is_some_and(|(at, names)| {
                at.elapsed() < Duration::from_secs(1) && names.contains(rel)
            })
        };
        for (coding, ext) in [("br", "br"), ("gzip", "gz")] {
            if no_siblings {
                break;
            }
            let sibling = format!("{rel}.{ext}");
            if let Ok(f) = self.open(&sibling) {
                if let Ok(m) = f.metadata() {
                    if m.is_file() {
                        has_variant = true;
                        if chosen.2.is_none() && accepts_encoding(req, coding) {
                            chosen = (f, m, Some(coding));
                        }
                    }
                }
            }
        }
        if !has_variant && !no_siblings {
            let mut cache = self.no_siblings.borrow_mut();
            let fresh = cache
                .as_ref()
                .is_some_and(|(at, _)| at.elapsed() < Duration::from_secs(1));
            if !fresh {
                *cache = Some((std::time::Instant::now(), std::collections::HashSet::new()));
            }
            if let Some((_, names)) = cache.as_mut() {
                names.insert(rel.to_string());
            }
        }
        let (file, meta, encoding) = chosen;
        let len = meta.len();
        let v = Validators {
            etag: format!(
                "\"{:x}-{:x}-{:x}{}\"",
                meta.ino(),
                len,
                meta.mtime() as u64 * 1_000_000_000 + meta.mtime_nsec() as u64,
                encoding.map(|e| format!("-{e}")).unwrap_or_default()
            ),
            modified: meta.mtime(),
        };
        let mut headers: Vec<(String, String)> = vec![
            ("ETag".into(), v.etag.clone()),
            ("Last-Modified".into(), format_http_date(v.modified)),
        ];
        if has_variant {
            headers.push(("Vary".into(), "Accept-Encoding".into()));
        }
        if let Some(cc) = self.cache_control(rel) {
            headers.push(("Cache-Control".into(), cc.to_string()));
        }
        let with = |mut r: Response, hs: &[(String, String)]| {
            r.headers
                .extend(hs.iter().map(|(k, v)| (k.clone(), v.clone().into_bytes())));
            r
        };
        let range_ok = match evaluate(req, &v) {
            Condition::NotModified => return with(Response::new(304), &headers),
            Condition::PreconditionFailed => return Response::error(412),
            Condition::Proceed { range_ok } => range_ok,
        };
        let content_type = mime_for(rel, &self.opts.mime);
        headers.push(("Accept-Ranges".into(), "bytes".into()));
        if let Some(e) = encoding {
            headers.push(("Content-Encoding".into(), e.into()));
        }
        let ranges = match (req.method.as_str(), req.header("Range")) {
            ("GET", Some(h)) if range_ok => parse_range(h, len),
            _ => Ranges::Whole,
        };
        match ranges {
            Ranges::Whole => {
                headers.push(("Content-Type".into(), content_type));
                let mut r = with(Response::new(200), &headers);
                r.body = Body::Segments(file, vec![Segment::File { offset: 0, len }]);
                r
            }
            Ranges::Unsatisfiable => {
                Response::error(416).header("Content-Range", format!("bytes */{len}"))
            }
            Ranges::Some(rs) if rs.len() == 1 => {
                let (a, b) = rs[0];
                headers.push(("Content-Type".into(), content_type));
                headers.push(("Content-Range".into(), format!("bytes {a}-{b}/{len}")));
                let mut r = with(Response::new(206), &headers);
                r.body = Body::Segments(
                    file,
                    vec![Segment::File {
                        offset: a,
                        len: b - a + 1,
                    }],
                );
                r
            }
            Ranges::Some(rs) => {
                let boundary = format!("jawas{:x}{:x}", meta.ino(), len);
                let mut segs = Vec::with_capacity(rs.len() * 2 + 1);
                for (a, b) in &rs {
                    segs.push(Segment::Bytes(
                        format!("\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {a}-{b}/{len}\r\n\r\n").into_bytes(),
                    ));
                    segs.push(Segment::File {
                        offset: *a,
                        len: b - a + 1,
                    });
                }
                segs.push(Segment::Bytes(
                    format!("\r\n--{boundary}--\r\n").into_bytes(),
                ));
                headers.push((
                    "Content-Type".into(),
                    format!("multipart/byteranges; boundary={boundary}"),
                ));
                let mut r = with(Response::new(206), &headers);
                r.body = Body::Segments(file, segs);
                r
            }
        }
    }

    /// An HTML index of a directory, names escaped, dotfiles hidden.
    fn listing(&self, rel: &str) -> Response {
        let Ok(entries) = std::fs::read_dir(self.opts.root.join(rel)) else {
            return Response::error(403);
        };
        let mut names: Vec<(String, bool, u64)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                if name.starts_with('.') && !self.opts.show_dotfiles {
                    return None;
                }
                let m = e.metadata().ok()?;
                Some((name, m.is_dir(), m.len()))
            })
            .collect();
        names.sort();
        let title = html_escape(&format!("/{rel}"));
        let mut html = format!("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title></head><body>\n<h1>Index of {title}</h1>\n<ul>\n");
        if !rel.is_empty() {
            html.push_str("<li><a href=\"../\">../</a></li>\n");
        }
        for (name, is_dir, size) in names {
            let slash = if is_dir { "/" } else { "" };
            // "./" first: a name such as "javascript:alert(1)" must stay a
            // relative path, never be read as a URL scheme.
            let href = html_escape(&format!("./{}", percent_encode(&name)));
            let shown = html_escape(&name);
            let size = if is_dir {
                String::new()
            } else {
                format!(" ({size} bytes)")
            };
            html.push_str(&format!(
                "<li><a href=\"{href}{slash}\">{shown}{slash}</a>{size}</li>\n"
            ));
        }
        html.push_str("</ul>\n</body></html>\n");
        Response::new(200).bytes("text/html; charset=utf-8", html)
    }
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;

/// Flags for every open under the root. O_NONBLOCK: opening a FIFO
/// with no writer (or a device) must not block the engine for ever; only
/// regular files and directories are served, and O_NONBLOCK changes
/// nothing for those.
const OPEN_FLAGS: libc::c_int =
    libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;

fn open_nonblocking(path: &std::path::Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(OPEN_FLAGS)
        .open(path)
}

/// The contents of a regular file; `None` for anything else. Opened
/// non-blocking, so a FIFO named as the 404 page cannot hang the engine.
fn read_regular(path: &std::path::Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut f = open_nonblocking(path).ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let mut body = Vec::with_capacity(meta.len() as usize);
    f.read_to_end(&mut body).ok()?;
    Some(body)
}

/// Whether a request path ends as a directory does (`/`, `/.`, also
/// percent-encoded).
fn names_a_directory(path: &str) -> bool {
    let decoded = jawas_http::path::percent_decode(path).unwrap_or_default();
    decoded.ends_with(b"/") || decoded.ends_with(b"/.")
}

/// Shell-style match with `*` (any run) and `?` (one character).
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What parsing one option value gives.
    type Parsed = Result<(String, String), String>;

    #[test]
    fn value_pairs() {
        let ok = |a: &str, b: &str| Ok((a.to_string(), b.to_string()));
        let mime: &[(&str, Parsed)] = &[
            ("foo=text/x-foo", ok("foo", "text/x-foo")),
            (".svg=image/svg+xml", ok("svg", "image/svg+xml")),
            ("foo", Err("expected EXT=TYPE".into())),
            (
                "=text/plain",
                Err("expected EXT=TYPE with a file extension such as css".into()),
            ),
            (
                "a/b=text/plain",
                Err("expected EXT=TYPE with a file extension such as css".into()),
            ),
            ("foo=", Err("TYPE is empty".into())),
            (
                "foo=text/plain\r\nX: y",
                Err("TYPE has a control character".into()),
            ),
        ];
        for (v, want) in mime {
            assert_eq!(&parse_mime(v), want, "--mime {v:?}");
        }
        let cache: &[(&str, Parsed)] = &[
            ("*.css=max-age=60", ok("*.css", "max-age=60")),
            (
                "/static/*=public, max-age=31536000",
                ok("/static/*", "public, max-age=31536000"),
            ),
            ("max-age", Err("expected PATTERN=VALUE".into())),
            (
                "=max-age=60",
                Err("expected PATTERN=VALUE with a PATTERN such as *.css".into()),
            ),
            ("*.css= ", Err("VALUE is empty".into())),
            ("*.css=a\nb", Err("VALUE has a control character".into())),
        ];
        for (v, want) in cache {
            assert_eq!(&parse_cache_control(v), want, "--cache-control {v:?}");
        }
    }

    #[test]
    fn glob_cases() {
        for (p, t, want) in [
            ("*.css", "site.css", true),
            ("*.css", "site.js", false),
            ("/static/*", "/static/a/b.png", true),
            ("/static/*", "/other/x", false),
            ("a?c", "abc", true),
            ("*", "", true),
        ] {
            assert_eq!(glob(p, t), want, "{p} vs {t}");
        }
    }
}

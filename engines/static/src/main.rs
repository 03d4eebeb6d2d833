//! jawas-static: serves files from one directory over HTTP/1.1, one
//! connection per process (stdin/stdout), keep-alive and pipelining within it.
//!
//! Failure paths, each one HTTP answer: a path that cannot be parsed (400),
//! a path that is hidden, missing or leaves the root (404), a method other
//! than GET/HEAD/OPTIONS (405 with Allow), failed preconditions (412), an
//! unsatisfiable range (416), a file that cannot be read (403 or 500).
//! Usage errors exit 100 before anything is read.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use jawas_http::{
    exit, format_http_date, parse_secs, Body, Conn, Limits, Request, Response, Segment,
};

use jawas_http::path::{html_escape, percent_encode, segments, PathError};
use jawas_http::rules::{
    accepts_encoding, evaluate, mime_for, parse_range, Condition, Ranges, Validators,
};

const USAGE: &str =
    "usage: jawas-static --root DIR [--index NAME[,NAME...]] [--listing] [--mime EXT=TYPE]... \
[--cache-control PATTERN=VALUE]... [--not-found FILE] [--follow-symlinks] [--show-dotfiles] \
[--idle-timeout SECS] [--request-timeout SECS] [--send-timeout SECS] [--no-access-log]";

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

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        root: PathBuf::new(),
        index: vec!["index.html".into()],
        listing: false,
        mime: Vec::new(),
        cache_control: Vec::new(),
        not_found: None,
        follow_symlinks: false,
        show_dotfiles: false,
        limits: Limits::default(),
        access_log: true,
    };
    let mut root = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--root" => root = Some(PathBuf::from(value("--root")?)),
            "--index" => {
                o.index = value("--index")?
                    .split(',')
                    .map(String::from)
                    .filter(|s| !s.is_empty())
                    .collect()
            }
            "--listing" => o.listing = true,
            "--no-listing" => o.listing = false,
            "--mime" => {
                let v = value("--mime")?;
                let (e, t) = v
                    .split_once('=')
                    .ok_or(format!("--mime {v}: expected EXT=TYPE"))?;
                o.mime
                    .push((e.trim_start_matches('.').to_string(), t.to_string()));
            }
            "--cache-control" => {
                let v = value("--cache-control")?;
                let (p, c) = v
                    .split_once('=')
                    .ok_or(format!("--cache-control {v}: expected PATTERN=VALUE"))?;
                o.cache_control.push((p.to_string(), c.to_string()));
            }
            "--not-found" => o.not_found = Some(PathBuf::from(value("--not-found")?)),
            "--follow-symlinks" => o.follow_symlinks = true,
            "--show-dotfiles" => o.show_dotfiles = true,
            "--idle-timeout" => o.limits.idle = parse_secs(&value("--idle-timeout")?)?,
            "--send-timeout" => o.limits.send = parse_secs(&value("--send-timeout")?)?,
            "--request-timeout" => o.limits.request = parse_secs(&value("--request-timeout")?)?,
            "--no-access-log" => o.access_log = false,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    let root = root.ok_or("--root DIR is required")?;
    o.root = std::fs::canonicalize(&root).map_err(|e| format!("--root {}: {e}", root.display()))?;
    if !o.root.is_dir() {
        return Err(format!("--root {}: not a directory", root.display()));
    }
    Ok(o)
}

fn main() {
    let opts = jawas_http::engine_start("jawas-static", USAGE, parse_args);
    let root_fd = match open_dir(&opts.root) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("jawas-static: --root {}: {e}", opts.root.display());
            std::process::exit(exit::SYSTEM);
        }
    };
    let server = Server {
        opts,
        root_fd,
        no_siblings: std::cell::RefCell::new(None),
    };
    let mut conn = Conn::stdio(server.opts.limits.clone());
    if !server.opts.access_log {
        conn.log = jawas_http::AccessLog::Off;
    }
    std::process::exit(jawas_http::serve(&mut conn, |conn, req| {
        // A request body is never read: the layer drains it after the
        // answer (or closes), so it cannot be taken for the next request.
        let resp = server.respond(&req);
        conn.send(Some(&req), resp)
    }));
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
            if let Ok(body) = std::fs::read(&path) {
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

fn open_dir(path: &std::path::Path) -> std::io::Result<OwnedFd> {
    let f = File::open(path)?;
    Ok(OwnedFd::from(f))
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

//! The HTTP answers of jawas-blog: pages from the cache's current
//! generation (sent with sendfile), files from the site's `static/`,
//! redirects (aliases, `/page/1/`, a missing trailing slash), search, and
//! the themed 404.
//!
//! Owns the mapping from a URL path to an output path of the plan
//! (`/` and `/x/` to `x/index.html` or, for feeds, `x/index.xml`) and the
//! response rules: validators and ranges come from jawas-http's `rules`,
//! the same as jawas-static's. Invariants: nothing outside the current
//! generation and `static/` is ever served (no dotfile, no path leaving
//! `static/`); a damaged cache is rebuilt before anything is answered
//! from it; client input never panics: every failure is one HTTP answer.

use std::ffi::CString;
use std::fs::File;
use std::io::BufReader;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use jawas_http::path::{percent_decode, percent_encode, segments, PathError};
use jawas_http::rules::{evaluate, mime_for, parse_range, Condition, Ranges, Validators};
use jawas_http::{format_http_date, AccessLog, Body, Request, Response, Segment};

use crate::site;
use crate::store::{Lookup, Page, Store};

/// At most this many search results on the search page.
pub const SEARCH_HITS: usize = 20;
/// A longer query is cut to this many characters.
const QUERY_MAX: usize = 200;
/// Theme assets change only with the binary or the templates; pages change
/// whenever a post does, so they are always revalidated.
const THEME_CACHE: &str = "public, max-age=3600";
const PAGE_CACHE: &str = "no-cache";
/// The files answering a URL path that ends in `/`, in order.
const INDEXES: [&str; 2] = ["index.html", "index.xml"];

pub struct Server {
    store: Store,
    /// `static/`, opened once; `None` when the site has none.
    static_dir: Option<OwnedFd>,
    static_path: PathBuf,
}

impl Server {
    pub fn new(store: Store) -> Server {
        let static_path = store.site_dir().join("static");
        let static_dir = open_dir(&static_path).ok();
        Server {
            store,
            static_dir,
            static_path,
        }
    }

    /// The site's directory.
    pub fn site_dir(&self) -> &std::path::Path {
        self.store.site_dir()
    }

    pub fn respond(&self, req: &Request, log: &AccessLog) -> Response {
        if req.method != "GET" && req.method != "HEAD" {
            return Response::error(405).header("Allow", "GET, HEAD");
        }
        if let Err(e) = self.store.refresh() {
            // The previous generation (if any) is still served.
            log.line(&format!("jawas-blog: {e}"));
        }
        let path = req.path();
        if path == "/search" {
            return self.search(req, log);
        }
        let segs = match segments(path, false) {
            Ok(s) => s,
            Err(PathError::Bad(_)) => return Response::error(400),
            Err(PathError::Hidden) => return self.not_found(log),
        };
        let rel = segs.join("/");
        if rel == "page/1" {
            return redirect("/");
        }
        if rel.is_empty() || path.ends_with('/') {
            if let Some(resp) = self.index_page(req, &rel, log) {
                return resp;
            }
        } else {
            if let Some(resp) = self.page(req, &rel, log) {
                return resp;
            }
            if let Some(resp) = self.static_file(req, &rel) {
                return resp;
            }
            if self.has_index(&rel) {
                let mut to = format!("{}/", percent_encode(&format!("/{rel}")));
                if let Some(q) = req.query() {
                    to.push('?');
                    to.push_str(q);
                }
                return redirect(&to);
            }
        }
        if let Some(to) = self.alias(path) {
            return redirect(&to);
        }
        self.not_found(log)
    }

    /// The answer for output file `rel`, if the site has it (or the cache
    /// is damaged beyond repair: 500).
    fn page(&self, req: &Request, rel: &str, log: &AccessLog) -> Option<Response> {
        match self.find(rel, log) {
            Ok(Some(page)) => Some(page_response(req, page)),
            Ok(None) => None,
            Err(resp) => Some(resp),
        }
    }

    /// The answer for directory `rel` of the output (empty: the root):
    /// its `index.html`, or `index.xml` (the RSS feed at `/rss/`).
    fn index_page(&self, req: &Request, rel: &str, log: &AccessLog) -> Option<Response> {
        INDEXES.iter().find_map(|index| {
            let file = if rel.is_empty() {
                index.to_string()
            } else {
                format!("{rel}/{index}")
            };
            self.page(req, &file, log)
        })
    }

    /// Whether `rel/` would be answered by `index_page`.
    fn has_index(&self, rel: &str) -> bool {
        INDEXES.iter().any(|index| {
            matches!(
                self.store.lookup(&format!("{rel}/{index}")),
                Lookup::Found(_)
            )
        })
    }

    /// The page at output path `rel`: `Ok(None)` when the site has no such
    /// file; a damaged cache is rebuilt first, and if it is still damaged
    /// the answer is a 500, never the damaged file.
    fn find(&self, rel: &str, log: &AccessLog) -> Result<Option<Page>, Response> {
        let why = match self.store.lookup(rel) {
            Lookup::Found(page) => return Ok(Some(page)),
            Lookup::Missing => return Ok(None),
            Lookup::Corrupt(why) => why,
        };
        log.line(&format!("jawas-blog: cache damaged ({why}): rebuilding"));
        if let Err(e) = self.store.rebuild() {
            log.line(&format!("jawas-blog: {e}"));
        }
        match self.store.lookup(rel) {
            Lookup::Found(page) => Ok(Some(page)),
            Lookup::Missing => Ok(None),
            Lookup::Corrupt(why) => {
                log.line(&format!("jawas-blog: cache still damaged: {why}"));
                Err(Response::error(500))
            }
        }
    }

    /// The target of an alias for `path` (as sent or percent-decoded,
    /// with or without its trailing slash).
    fn alias(&self, path: &str) -> Option<String> {
        let decoded = percent_decode(path)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_else(|| path.to_string());
        let forms = [path, decoded.as_str()];
        let same = |from: &str| {
            forms.iter().any(|p| {
                *p == from || p.strip_suffix('/') == Some(from) || from.strip_suffix('/') == Some(p)
            })
        };
        self.store
            .aliases()
            .into_iter()
            .find(|(from, _)| same(from))
            .map(|(_, to)| to)
    }

    /// The themed 404 page (the plan's `404.html`) with status 404.
    fn not_found(&self, log: &AccessLog) -> Response {
        match self.find("404.html", log) {
            Ok(Some(page)) => {
                let len = page.record.len;
                let mut r = Response::new(404)
                    .header("Content-Type", page.record.content_type.as_str())
                    .header("Cache-Control", PAGE_CACHE);
                r.body = Body::Segments(page.file, vec![Segment::File { offset: 0, len }]);
                r
            }
            Ok(None) => Response::error(404),
            Err(resp) => resp,
        }
    }

    /// `/search?q=...`: the hits from the current generation's index, on
    /// the themed search page.
    fn search(&self, req: &Request, log: &AccessLog) -> Response {
        let query = req.query().and_then(query_param).unwrap_or_default();
        let hits = match self.find("search.idx", log) {
            Ok(Some(page)) => {
                let mut reader = BufReader::new(page.file);
                site::search(&mut reader, &query, SEARCH_HITS)
            }
            Ok(None) => Vec::new(),
            Err(resp) => return resp,
        };
        match site::search_page(self.store.site_dir(), &query, &hits) {
            Ok(body) => Response::new(200)
                .header("Cache-Control", PAGE_CACHE)
                .bytes("text/html; charset=utf-8", body),
            Err(e) => {
                log.line(&format!("jawas-blog: search page: {e}"));
                Response::error(500)
            }
        }
    }

    /// A regular file under `static/`, or `None` when there is none.
    fn static_file(&self, req: &Request, rel: &str) -> Option<Response> {
        let dir = self.static_dir.as_ref()?;
        let file = open_beneath(dir, &self.static_path, rel).ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() {
            return None;
        }
        let v = Validators {
            etag: format!(
                "\"{:x}-{:x}-{:x}\"",
                meta.ino(),
                meta.len(),
                meta.mtime() as u64 * 1_000_000_000 + meta.mtime_nsec() as u64
            ),
            modified: meta.mtime(),
        };
        Some(file_response(
            req,
            file,
            meta.len(),
            &v,
            &mime_for(rel, &[]),
            None,
        ))
    }
}

/// A page of the generation: strong ETag from its key (equal keys, equal
/// bytes, in every process and every generation); Last-Modified the
/// later of the date the content side gives (a post's `updated`) and when
/// these bytes were rendered, so a client revalidating by date alone
/// still sees an edit that kept the post's dates.
fn page_response(req: &Request, page: Page) -> Response {
    let r = &page.record;
    let v = Validators {
        etag: format!("\"{:032x}\"", r.key),
        modified: r.modified.max(page.rendered),
    };
    let path = req.path();
    let cache = if path.starts_with("/theme/") {
        THEME_CACHE
    } else {
        PAGE_CACHE
    };
    let content_type = r.content_type.clone();
    let len = r.len;
    file_response(req, page.file, len, &v, &content_type, Some(cache))
}

/// 200, 206, 304, 412 or 416 for `len` bytes of `file`.
fn file_response(
    req: &Request,
    file: File,
    len: u64,
    v: &Validators,
    content_type: &str,
    cache_control: Option<&str>,
) -> Response {
    let mut head = Response::new(200)
        .header("ETag", v.etag.as_str())
        .header("Last-Modified", format_http_date(v.modified));
    if let Some(cc) = cache_control {
        head = head.header("Cache-Control", cc);
    }
    let range_ok = match evaluate(req, v) {
        Condition::NotModified => {
            head.status = 304;
            return head;
        }
        Condition::PreconditionFailed => return Response::error(412),
        Condition::Proceed { range_ok } => range_ok,
    };
    head = head.header("Accept-Ranges", "bytes");
    let ranges = match (req.method.as_str(), req.header("Range")) {
        ("GET", Some(h)) if range_ok => parse_range(h, len),
        _ => Ranges::Whole,
    };
    match ranges {
        Ranges::Whole => {
            head = head.header("Content-Type", content_type);
            head.body = Body::Segments(file, vec![Segment::File { offset: 0, len }]);
            head
        }
        Ranges::Unsatisfiable => {
            Response::error(416).header("Content-Range", format!("bytes */{len}"))
        }
        Ranges::Some(rs) if rs.len() == 1 => {
            let (a, b) = rs[0];
            head.status = 206;
            head = head
                .header("Content-Type", content_type)
                .header("Content-Range", format!("bytes {a}-{b}/{len}"));
            let part = Segment::File {
                offset: a,
                len: b - a + 1,
            };
            head.body = Body::Segments(file, vec![part]);
            head
        }
        Ranges::Some(rs) => {
            let boundary = format!("jawasblog{len:x}");
            let mut segs = Vec::with_capacity(rs.len() * 2 + 1);
            for (a, b) in &rs {
                let part = format!(
                    "\r\n--{boundary}\r\nContent-Type: {content_type}\r\n\
                     Content-Range: bytes {a}-{b}/{len}\r\n\r\n"
                );
                segs.push(Segment::Bytes(part.into_bytes()));
                segs.push(Segment::File {
                    offset: *a,
                    len: b - a + 1,
                });
            }
            segs.push(Segment::Bytes(
                format!("\r\n--{boundary}--\r\n").into_bytes(),
            ));
            head.status = 206;
            head = head.header(
                "Content-Type",
                format!("multipart/byteranges; boundary={boundary}"),
            );
            head.body = Body::Segments(file, segs);
            head
        }
    }
}

fn redirect(to: &str) -> Response {
    Response::error(301).header("Location", to)
}

/// The value of `q` in a query string, `+` as space, percent-decoded
/// (invalid UTF-8 replaced), at most `QUERY_MAX` characters.
pub fn query_param(query: &str) -> Option<String> {
    let raw = query.split('&').find_map(|pair| pair.strip_prefix("q="))?;
    let spaced = raw.replace('+', " ");
    // A stray % is kept as it is rather than refusing the whole query.
    let bytes = percent_decode(&spaced).unwrap_or_else(|_| spaced.clone().into_bytes());
    let text = String::from_utf8_lossy(&bytes);
    Some(text.chars().take(QUERY_MAX).collect())
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_BENEATH: u64 = 0x08;

/// O_NONBLOCK: a FIFO planted in static/ must not hang the engine.
const OPEN_FLAGS: libc::c_int =
    libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;

fn open_dir(path: &Path) -> std::io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)?;
    Ok(OwnedFd::from(f))
}

/// Opens `rel` beneath `dir`, the kernel refusing any path (symlinks
/// included) that leaves it (openat2 RESOLVE_BENEATH); on a kernel
/// without openat2, the canonical path must be inside `dir_path`.
fn open_beneath(dir: &OwnedFd, dir_path: &Path, rel: &str) -> std::io::Result<File> {
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
        resolve: RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: openat2 with a valid directory fd, a NUL-terminated path and
    // an open_how of the size passed, all alive for the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd >= 0 {
        // SAFETY: a descriptor the kernel just gave us, owned by nobody else.
        return Ok(unsafe { File::from_raw_fd(fd as i32) });
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::ENOSYS) {
        return Err(e);
    }
    let base = std::fs::canonicalize(dir_path)?;
    let full = std::fs::canonicalize(dir_path.join(rel))?;
    if !full.starts_with(&base) {
        return Err(std::io::Error::from_raw_os_error(libc::EXDEV));
    }
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(OPEN_FLAGS)
        .open(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_queries() {
        for (q, want) in [
            ("q=rust", Some("rust")),
            ("q=hello+world", Some("hello world")),
            ("a=1&q=caf%C3%A9", Some("café")),
            ("q=%2B1", Some("+1")),
            ("q=100%", Some("100%")),
            ("q=%ff", Some("\u{fffd}")),
            ("q=", Some("")),
            ("x=1", None),
            ("qq=1", None),
        ] {
            assert_eq!(query_param(q).as_deref(), want, "{q:?}");
        }
        let long = format!("q={}", "a".repeat(1000));
        assert_eq!(query_param(&long).unwrap().len(), QUERY_MAX);
    }
}

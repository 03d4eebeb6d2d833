//! `--static DIR`: answers plain (non-upgrade) requests with files from
//! DIR, as websocketd's `--staticdir`, so one port serves a page and its
//! socket. Deliberately small: GET and HEAD, `index.html` for a
//! directory, ETag/Last-Modified with conditional requests and MIME types
//! from jawas-http's `rules` (the full file server is jawas-static).
//! Invariants: only regular files whose real path lies under DIR's real
//! path are sent; no name starting with `.` is ever served.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use jawas_http::path::{percent_encode, segments, PathError};
use jawas_http::rules::{evaluate, mime_for, Condition, Validators};
use jawas_http::{format_http_date, Body, Request, Response, Segment};

const INDEX: &str = "index.html";

/// Answers `req` from the files under `root` (a real path).
pub fn respond(root: &Path, req: &Request) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        return Response::error(405).header("Allow", "GET, HEAD");
    }
    let segs = match segments(req.path(), false) {
        Ok(s) => s,
        Err(PathError::Bad(_)) => return Response::error(400),
        Err(PathError::Hidden) => return Response::error(404),
    };
    let rel = segs.join("/");
    let mut path = match inside(root, &root.join(&rel)) {
        Ok(p) => p,
        Err(status) => return Response::error(status),
    };
    if path.is_dir() {
        if !req.path().ends_with('/') {
            let loc = if rel.is_empty() {
                "/".to_string()
            } else {
                percent_encode(&format!("/{rel}/"))
            };
            return Response::error(301).header("Location", loc);
        }
        path = match inside(root, &path.join(INDEX)) {
            Ok(p) => p,
            Err(status) => return Response::error(status),
        };
    }
    file_response(req, &path)
}

/// The real path of `path` if it lies under `root`; else the status.
fn inside(root: &Path, path: &Path) -> Result<PathBuf, u16> {
    let real = std::fs::canonicalize(path).map_err(|e| status_for(&e))?;
    if real.starts_with(root) {
        Ok(real)
    } else {
        Err(404)
    }
}

/// 200 (or 304, 412) for the regular file at `path`.
fn file_response(req: &Request, path: &Path) -> Response {
    let file = match open(path) {
        Ok(f) => f,
        Err(e) => return Response::error(status_for(&e)),
    };
    let meta = match file.metadata() {
        Ok(m) if m.is_file() => m,
        Ok(_) => return Response::error(404),
        Err(_) => return Response::error(500),
    };
    let v = Validators {
        etag: format!(
            "\"{:x}-{:x}-{:x}\"",
            meta.ino(),
            meta.len(),
            meta.mtime() as u64 * 1_000_000_000 + meta.mtime_nsec() as u64
        ),
        modified: meta.mtime(),
    };
    let with_validators = |r: Response| {
        r.header("ETag", v.etag.clone())
            .header("Last-Modified", format_http_date(v.modified))
    };
    match evaluate(req, &v) {
        Condition::NotModified => return with_validators(Response::new(304)),
        Condition::PreconditionFailed => return Response::error(412),
        Condition::Proceed { .. } => {}
    }
    let name = path.to_string_lossy();
    let mut r = with_validators(Response::new(200)).header("Content-Type", mime_for(&name, &[]));
    r.body = Body::Segments(
        file,
        vec![Segment::File {
            offset: 0,
            len: meta.len(),
        }],
    );
    r
}

/// Non-blocking, so a FIFO placed in DIR cannot hang the engine.
fn open(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

fn status_for(e: &std::io::Error) -> u16 {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => 403,
        _ => 404,
    }
}

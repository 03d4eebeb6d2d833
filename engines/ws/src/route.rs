//! `--dir DIR`: from a request path to the program under DIR that serves
//! it, as websocketd's `--dir` does: the path is walked one segment at a
//! time, directories are descended, and the first file is the program;
//! the segments after it are PATH_INFO. Owns only that walk.
//! Invariants: the program found is a regular, executable file whose real
//! path (symlinks resolved) lies under DIR's real path; no name starting
//! with `.` is ever used.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use jawas_http::path::{segments, PathError};

/// The program for one request, and how the request path splits around it.
#[derive(Debug, PartialEq, Eq)]
pub struct Route {
    /// Real path of the program (under DIR).
    pub program: PathBuf,
    /// The URL path of the program: `/chat` for `DIR/chat`.
    pub script_name: String,
    /// What follows it: `/room/1` for `/chat/room/1`; empty if nothing.
    pub path_info: String,
}

/// Finds the program for request path `path` under `dir` (a real path:
/// canonical, no symlinks). Errors are HTTP statuses: 400 for a path that
/// cannot be parsed, 404 for nothing there (also a dotfile, a directory,
/// an escape from DIR), 403 for a file that is not an executable.
pub fn resolve(dir: &Path, path: &str) -> Result<Route, u16> {
    let segs = match segments(path, false) {
        Ok(s) => s,
        Err(PathError::Bad(_)) => return Err(400),
        Err(PathError::Hidden) => return Err(404),
    };
    let mut here = dir.to_path_buf();
    for (i, seg) in segs.iter().enumerate() {
        here.push(seg);
        // Resolved each step, so a symlink (to a directory or a file) is
        // followed only while it stays under DIR.
        let real = std::fs::canonicalize(&here).map_err(|_| 404u16)?;
        if !real.starts_with(dir) {
            return Err(404);
        }
        let meta = std::fs::metadata(&real).map_err(|_| 404u16)?;
        if meta.is_dir() {
            continue;
        }
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(403);
        }
        let rest = &segs[i + 1..];
        let mut path_info = String::new();
        for s in rest {
            path_info.push('/');
            path_info.push_str(s);
        }
        // A trailing slash is part of what the program was asked for.
        if !rest.is_empty() && path.ends_with('/') {
            path_info.push('/');
        }
        return Ok(Route {
            program: real,
            script_name: format!("/{}", segs[..=i].join("/")),
            path_info,
        });
    }
    // The path ended on DIR or a directory in it: no program.
    Err(404)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn exe(p: &Path, mode: u32) {
        std::fs::write(p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn paths() {
        let tmp = std::env::temp_dir().join(format!("jawas-ws-route-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let dir = tmp.join("dir");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        exe(&dir.join("chat"), 0o755);
        exe(&dir.join("sub/deep"), 0o755);
        exe(&dir.join(".hidden"), 0o755);
        exe(&dir.join("plain"), 0o644);
        exe(&tmp.join("outside"), 0o755);
        symlink(dir.join("chat"), dir.join("inlink")).unwrap();
        symlink(tmp.join("outside"), dir.join("outlink")).unwrap();
        symlink(&tmp, dir.join("updir")).unwrap();
        let dir = std::fs::canonicalize(&dir).unwrap();
        let ok = |prog: &str, script: &str, info: &str| {
            Ok(Route {
                program: dir.join(prog),
                script_name: script.to_string(),
                path_info: info.to_string(),
            })
        };
        let cases: &[(&str, Result<Route, u16>)] = &[
            ("/chat", ok("chat", "/chat", "")),
            ("/chat/room/1", ok("chat", "/chat", "/room/1")),
            ("/chat/a%20b/", ok("chat", "/chat", "/a b/")),
            ("/sub/deep/x", ok("sub/deep", "/sub/deep", "/x")),
            ("//sub/./deep", ok("sub/deep", "/sub/deep", "")),
            ("/sub/../chat", ok("chat", "/chat", "")),
            ("/inlink/x", ok("chat", "/inlink", "/x")),
            ("/", Err(404)),
            ("/sub", Err(404)),
            ("/sub/", Err(404)),
            ("/missing", Err(404)),
            ("/.hidden", Err(404)),
            ("/sub/.hidden", Err(404)),
            ("/plain", Err(403)),
            ("/outlink", Err(404)),
            ("/updir/outside", Err(404)),
            ("/../outside", Err(400)),
            ("/%2e%2e/outside", Err(400)),
            ("/chat%00", Err(400)),
        ];
        for (path, want) in cases {
            assert_eq!(&resolve(&dir, path), want, "{path}");
        }
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}

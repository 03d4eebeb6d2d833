//! The program's CGI-style environment (as websocketd gives it): where
//! the client is, what it asked for, every request header as HTTP_*.
//! Pure: builds a list of variables from the request and the peer; the
//! caller adds them to its own environment (which carries jawasd's
//! env/pass_env for the service).

use jawas_engine::Peer;
use jawas_http::Request;

use crate::route::Route;

/// The variables for `req` from `peer`, in a stable order. `route` is the
/// program `--dir` chose (SCRIPT_NAME and PATH_INFO then split the path
/// around it); without one, as websocketd: SCRIPT_NAME `/`, PATH_INFO the
/// whole path.
pub fn cgi_vars(req: &Request, peer: &Peer, route: Option<&Route>) -> Vec<(String, String)> {
    let opt = |v: Option<String>| v.unwrap_or_default();
    let path = percent_decode(req.path());
    let (script_name, path_info) = match route {
        Some(r) => (r.script_name.clone(), r.path_info.clone()),
        None => ("/".to_string(), path.clone()),
    };
    let remote_addr = opt(peer.remote_ip.map(|ip| ip.to_string()));
    let server_name = req
        .host_name()
        .map(str::to_string)
        .or(peer.local_ip.map(|ip| ip.to_string()));
    let mut vars = vec![
        ("REMOTE_ADDR", remote_addr.clone()),
        // No reverse lookup (websocketd makes one only when asked to).
        ("REMOTE_HOST", remote_addr),
        ("REMOTE_PORT", opt(peer.remote_port.map(|p| p.to_string()))),
        ("SERVER_NAME", opt(server_name)),
        ("SERVER_PORT", opt(peer.local_port.map(|p| p.to_string()))),
        ("SERVER_PROTOCOL", req.version().to_string()),
        ("REQUEST_METHOD", req.method.clone()),
        ("REQUEST_URI", req.target.clone()),
        ("SCRIPT_NAME", script_name),
        ("PATH_INFO", path_info),
        // websocketd's value: the decoded URL path, not a file path.
        ("PATH_TRANSLATED", path),
        ("QUERY_STRING", req.query().unwrap_or("").to_string()),
        // The interface is websocketd's, so programs that check it agree.
        ("GATEWAY_INTERFACE", "websocketd-CGI/0.1".to_string()),
        (
            "SERVER_SOFTWARE",
            concat!("jawas-ws/", env!("CARGO_PKG_VERSION")).to_string(),
        ),
        ("UNIQUE_ID", unique_id()),
        ("AUTH_TYPE", String::new()),
        ("CONTENT_LENGTH", String::new()),
        ("CONTENT_TYPE", String::new()),
        ("REMOTE_IDENT", String::new()),
        ("REMOTE_USER", String::new()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect::<Vec<_>>();
    for (name, value) in &req.headers {
        let key = header_var(name);
        let value = String::from_utf8_lossy(value).into_owned();
        // A repeated field joins its values, as HTTP allows for lists.
        match vars.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => {
                v.push_str(", ");
                v.push_str(&value);
            }
            None => vars.push((key, value)),
        }
    }
    vars
}

/// A number no other connection gets: the time in nanoseconds, with this
/// process's id (one connection per process) in the low digits.
fn unique_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}{:07}", nanos / 1000, std::process::id())
}

/// `Sec-WebSocket-Protocol` -> `HTTP_SEC_WEBSOCKET_PROTOCOL`.
fn header_var(name: &str) -> String {
    let mut k = String::from("HTTP_");
    k.extend(name.chars().map(|c| match c {
        '-' => '_',
        c => c.to_ascii_uppercase(),
    }));
    k
}

/// `%XX` decoded (invalid escapes kept as they are); not UTF-8 -> lossy.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names() {
        let cases = [
            ("Origin", "HTTP_ORIGIN"),
            ("Sec-WebSocket-Protocol", "HTTP_SEC_WEBSOCKET_PROTOCOL"),
            ("x-a", "HTTP_X_A"),
        ];
        for (name, want) in cases {
            assert_eq!(header_var(name), want);
        }
    }

    #[test]
    fn decoding() {
        let cases = [
            ("/a%20b", "/a b"),
            ("/%", "/%"),
            ("/%4", "/%4"),
            ("/%41", "/A"),
            ("/%zz", "/%zz"),
            ("/%ff", "/\u{fffd}"),
        ];
        for (s, want) in cases {
            assert_eq!(percent_decode(s), want, "{s}");
        }
    }
}

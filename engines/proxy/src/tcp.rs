//! `jawas-proxy tcp`: one client connection relayed to one upstream,
//! byte for byte (after an optional PROXY header).
//!
//! Owns nothing past the call: the upstream connection lives as long as
//! the client's. Invariant: when no upstream accepts, the client
//! connection is closed without a byte and the reasons are logged.

use std::io::Write;
use std::os::fd::AsFd;
use std::time::Duration;

use jawas_engine::{Connection, Error};

use crate::proxy_header;
use crate::relay::{self, End};
use crate::upstream::Upstreams;

pub struct Config {
    pub upstreams: Upstreams,
    pub send_proxy: Option<proxy_header::Version>,
    pub idle: Option<Duration>,
}

pub fn serve(cfg: &Config, conn: Connection) -> Result<(), Error> {
    let (mut stream, target) = cfg
        .upstreams
        .connect()
        .map_err(|why| Error::system(format!("no upstream answered: {why}")))?;
    if let Some(v) = cfg.send_proxy {
        let addrs = conn.peer.remote().zip(conn.peer.local());
        stream
            .write_all(&proxy_header::encode(v, addrs))
            .map_err(|e| Error::system(format!("{}: {e}", target.authority())))?;
    }
    let (input, output) = conn.into_fds();
    let (end, _, _) = relay::run(input.as_fd(), output.as_fd(), stream.as_fd(), cfg.idle)
        .map_err(|e| Error::io("relay", &e))?;
    match end {
        End::Done | End::Stopping => Ok(()),
        End::Idle => {
            let line = "jawas-proxy: idle timeout, connection closed\n";
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
            Ok(())
        }
    }
}

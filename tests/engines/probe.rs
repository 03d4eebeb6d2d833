//! jawas-test-probe: an engine on the jawas-engine runtime that reports
//! what it is, for the zygote tests (it runs the same under exec and
//! zygote mode). One command line per connection:
//! - `info`: one line of `key=value` facts: its pid, the pid that ran
//!   `init` (the zygote's in zygote mode, its own under exec), process
//!   group and session, the UCSPI variables, whether JAWAS_ZYGOTE leaked
//!   through, what fds 0-2 are, and the blocked signal mask;
//! - `exit N`: exits with N;
//! - `crash`: dies of SIGABRT;
//! - `hold`: answers `held PID`, then waits for the client to close.

use std::io::{BufRead, BufReader, Read, Write};

use jawas_http::jawas_engine::{self, Args, Connection, Engine, Error, Opt};

struct Probe {
    init_pid: u32,
}

impl Engine for Probe {
    const NAME: &'static str = "jawas-test-probe";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const USAGE: &'static [&'static str] = &[""];
    const ABOUT: &'static str = "Reports its pid, environment and descriptors.";
    const OPTIONS: &'static [Opt] = &[];

    fn init(_: &Args) -> Result<Self, Error> {
        Ok(Probe {
            init_pid: std::process::id(),
        })
    }

    fn serve(&mut self, conn: Connection) -> Result<(), Error> {
        let (input, mut output) = conn.into_files();
        let mut reader = BufReader::new(input);
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .map_err(|e| Error::io("read", &e))?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let write = |out: &mut std::fs::File, text: String| {
            out.write_all(text.as_bytes())
                .map_err(|e| Error::io("write", &e))
        };
        match words.as_slice() {
            ["info"] => write(&mut output, format!("{}\n", self.facts())),
            ["exit", n] => std::process::exit(n.parse().unwrap_or(1)),
            ["crash"] => std::process::abort(),
            ["hold"] => {
                write(&mut output, format!("held {}\n", std::process::id()))?;
                let mut rest = Vec::new();
                let _ = reader.read_to_end(&mut rest);
                Ok(())
            }
            // A line on stderr, then the same text without its end, which
            // only the engine's exit finishes.
            ["say", text] => {
                let mut err = std::io::stderr().lock();
                let said = write!(err, "{text}\n{text}-tail").and_then(|_| err.flush());
                said.map_err(|e| Error::io("stderr", &e))?;
                write(&mut output, format!("said {}\n", std::process::id()))
            }
            _ => write(&mut output, format!("unknown command {line:?}\n")),
        }
    }
}

impl Probe {
    fn facts(&self) -> String {
        let var = |k: &str| std::env::var(k).unwrap_or_else(|_| "-".into());
        let fd = |n: i32| {
            std::fs::read_link(format!("/proc/self/fd/{n}"))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "closed".into())
        };
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let sigblk = status
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .unwrap_or("?")
            .trim()
            .to_string();
        // SAFETY: getpgrp and getsid take no pointers.
        let (pgid, sid) = unsafe { (libc::getpgrp(), libc::getsid(0)) };
        format!(
            "pid={} ppid={} init_pid={} pgid={pgid} sid={sid} PROTO={} TCPREMOTEIP={} TCPREMOTEPORT={} TCPLOCALIP={} \
             TCPLOCALPORT={} JAWAS_SERVICE={} JAWAS_ZYGOTE={} FROM_CONFIG={} fd0={} fd1={} fd2={} sigblk={sigblk}",
            std::process::id(),
            std::os::unix::process::parent_id(),
            self.init_pid,
            var("PROTO"),
            var("TCPREMOTEIP"),
            var("TCPREMOTEPORT"),
            var("TCPLOCALIP"),
            var("TCPLOCALPORT"),
            var("JAWAS_SERVICE"),
            var("JAWAS_ZYGOTE"),
            var("FROM_CONFIG"),
            fd(0),
            fd(1),
            fd(2),
        )
    }
}

fn main() {
    jawas_engine::run::<Probe>()
}

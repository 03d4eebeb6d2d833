//! jawas-test-hello: the trivial engine of the zygote benchmark
//! (tests/bench/zygote.sh): reads one request head and answers
//! `200 hello` with Connection: close. On the jawas-engine runtime, so
//! the same binary runs exec'd (jawasd, tcpserver) and forked from a
//! zygote.

use std::io::{Read, Write};

use jawas_http::jawas_engine::{self, Args, Connection, Engine, Error, Opt};

const REPLY: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n";

struct Hello;

impl Engine for Hello {
    const NAME: &'static str = "jawas-test-hello";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const USAGE: &'static [&'static str] = &[""];
    const ABOUT: &'static str = "Answers one HTTP request with 200 hello.";
    const OPTIONS: &'static [Opt] = &[];

    fn init(_: &Args) -> Result<Self, Error> {
        Ok(Hello)
    }

    fn serve(&mut self, conn: Connection) -> Result<(), Error> {
        let (mut input, mut output) = conn.into_files();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
            match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
                Err(e) => return Err(Error::io("read", &e)),
            }
        }
        output.write_all(REPLY).map_err(|e| Error::io("write", &e))
    }
}

fn main() {
    jawas_engine::run::<Hello>()
}

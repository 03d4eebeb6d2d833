//! The PROGRAM behind a socket: started with pipes in its own process
//! group, fed messages on stdin by a writer thread, read on stdout as
//! lines (or raw chunks with --binary), and stopped so that nothing of it
//! is left running. Owns the child, its pipes and its process group.
//! Invariant: `finish` returns only once the group is gone or has been
//! sent SIGKILL.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;
use tungstenite::Message;

use crate::pump::Backend;

/// Messages queued for stdin before the pump stops reading the client:
/// enough to absorb a burst, small enough to push back on a client the
/// program cannot keep up with.
const STDIN_QUEUE: usize = 16;

/// How the program's output becomes messages.
#[derive(Debug, Clone, Copy)]
pub struct Framing {
    pub binary: bool,
    /// Longest message sent; a longer line is sent in pieces of this size.
    pub max: usize,
}

pub struct Program {
    child: Child,
    stdin: Option<Sender<Vec<u8>>>,
    /// Messages given to the writer thread and not yet written.
    queued: Arc<AtomicUsize>,
    /// The writer thread is gone (stdin broke): messages are dropped.
    stdin_gone: Arc<AtomicBool>,
    stdout: Option<ChildStdout>,
    framing: Framing,
    pending: Vec<u8>,
}

impl Program {
    /// Starts `argv` with `vars` added to this process's environment.
    pub fn start(
        argv: &[String],
        vars: &[(String, String)],
        framing: Framing,
    ) -> io::Result<Program> {
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()?;
        let mut pipe = child.stdin.take().expect("stdin was piped");
        let (tx, rx) = channel::<Vec<u8>>();
        let queued = Arc::new(AtomicUsize::new(0));
        let stdin_gone = Arc::new(AtomicBool::new(false));
        let (q, gone) = (queued.clone(), stdin_gone.clone());
        // A thread, so a program slow to read its stdin never stops the
        // pump from reading its stdout; it ends when the sender is dropped
        // (stdin then closes) or the pipe breaks.
        std::thread::spawn(move || {
            // SIGTERM must interrupt the pump's poll, not this thread.
            let mut term = SigSet::empty();
            term.add(Signal::SIGTERM);
            let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&term), None);
            for data in rx {
                if pipe.write_all(&data).is_err() {
                    break;
                }
                q.fetch_sub(1, Ordering::SeqCst);
            }
            gone.store(true, Ordering::SeqCst);
        });
        Ok(Program {
            stdout: child.stdout.take(),
            child,
            stdin: Some(tx),
            queued,
            stdin_gone,
            framing,
            pending: Vec::new(),
        })
    }

    fn pgid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Closes stdin, gives the program `grace` to exit, then SIGTERM to its
    /// group, then SIGKILL. Returns the program's exit status, if it exited
    /// by itself.
    pub fn finish(&mut self, grace: Duration) -> Option<ExitStatus> {
        self.stdin = None;
        let status = self.wait(grace);
        if self.group_alive() {
            let _ = killpg(self.pgid(), Signal::SIGTERM);
            let _ = self.wait(grace);
            let end = Instant::now() + grace;
            while self.group_alive() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = killpg(self.pgid(), Signal::SIGKILL);
        }
        let _ = self.child.wait();
        status
    }

    fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(s)) => return Some(s),
                Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(10)),
                _ => return None,
            }
        }
    }

    fn group_alive(&self) -> bool {
        killpg(self.pgid(), None).is_ok()
    }
}

/// Splits `pending` (output read so far) into messages, leaving an
/// unfinished line in it; with `eof`, what is left is one message too.
fn split(pending: &mut Vec<u8>, framing: Framing, eof: bool) -> Vec<Message> {
    let max = framing.max.max(1);
    if framing.binary {
        let data = std::mem::take(pending);
        return data
            .chunks(max)
            .map(|c| Message::binary(c.to_vec()))
            .collect();
    }
    let mut out = Vec::new();
    loop {
        let line = match pending.iter().position(|&b| b == b'\n') {
            Some(i) if i <= max => {
                let mut line: Vec<u8> = pending.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                line
            }
            _ if pending.len() > max => pending.drain(..max).collect(),
            _ if eof && !pending.is_empty() => std::mem::take(pending),
            _ => break,
        };
        out.push(Message::text(String::from_utf8_lossy(&line).into_owned()));
    }
    out
}

impl Backend for Program {
    fn output(&self) -> Option<BorrowedFd<'_>> {
        self.stdout.as_ref().map(|s| s.as_fd())
    }

    fn read_output(&mut self) -> io::Result<Option<Vec<Message>>> {
        let Some(stdout) = self.stdout.as_mut() else {
            return Ok(None);
        };
        let mut buf = [0u8; 16384];
        let n = match stdout.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Some(Vec::new())),
            Err(e) => return Err(e),
        };
        if n == 0 {
            self.stdout = None;
            let last = split(&mut self.pending, self.framing, true);
            return Ok(if last.is_empty() { None } else { Some(last) });
        }
        self.pending.extend_from_slice(&buf[..n]);
        Ok(Some(split(&mut self.pending, self.framing, false)))
    }

    fn deliver(&mut self, msg: Message) {
        let mut data = msg.into_data().to_vec();
        if !self.framing.binary {
            data.push(b'\n');
        }
        // A program that closed its stdin no longer wants messages.
        if let Some(tx) = &self.stdin {
            self.queued.fetch_add(1, Ordering::SeqCst);
            if tx.send(data).is_err() {
                self.queued.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    fn wants_input(&self) -> bool {
        self.stdin_gone.load(Ordering::SeqCst) || self.queued.load(Ordering::SeqCst) < STDIN_QUEUE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Framing, output, end of output, messages sent, bytes left over.
    type Case = (
        Framing,
        &'static [u8],
        bool,
        &'static [&'static [u8]],
        &'static [u8],
    );

    #[test]
    fn output_becomes_messages() {
        let text = |max| Framing { binary: false, max };
        let bin = Framing {
            binary: true,
            max: 3,
        };
        let cases: &[Case] = &[
            (text(100), b"a\nb\n", false, &[b"a", b"b"], b""),
            (text(100), b"a\r\nb", false, &[b"a"], b"b"),
            (text(100), b"a\nb", true, &[b"a", b"b"], b""),
            (text(100), b"\n", false, &[b""], b""),
            (text(100), b"", true, &[], b""),
            (text(3), b"abcdefg\n", false, &[b"abc", b"def", b"g"], b""),
            (text(3), b"abcd", false, &[b"abc"], b"d"),
            (text(100), b"\xff\n", false, &[b"\xef\xbf\xbd"], b""),
            (bin, b"ab\ncdefg", false, &[b"ab\n", b"cde", b"fg"], b""),
        ];
        for (framing, output, eof, want, left) in cases {
            let mut pending = output.to_vec();
            let got: Vec<Vec<u8>> = split(&mut pending, *framing, *eof)
                .into_iter()
                .map(|m| {
                    assert_eq!(m.is_binary(), framing.binary);
                    m.into_data().to_vec()
                })
                .collect();
            let want: Vec<Vec<u8>> = want.iter().map(|w| w.to_vec()).collect();
            assert_eq!(got, want, "{output:?} eof={eof}");
            assert_eq!(pending, *left, "{output:?}");
        }
    }
}

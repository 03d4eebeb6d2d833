//! A room member that also runs a per-connection PROGRAM: the client's
//! messages go to PROGRAM's stdin, PROGRAM's lines go to the room as
//! this member's messages, and the room's messages go to the client.
//! Owns only the wiring of the two; the program (`program`) and the
//! member (`member`) keep their own rules and bounds. Invariant: the
//! pump's output is the room's (read ahead, bounded per client); the
//! program's output is a side descriptor, so a slow client never stops
//! it, read only while the member's queue to the hub has room.

use std::io;
use std::os::fd::BorrowedFd;

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Message;

use super::member::Member;
use crate::program::Program;
use crate::pump::Backend;

pub struct WithProgram<'a> {
    pub member: Member<'a>,
    pub program: Program,
}

impl Backend for WithProgram<'_> {
    fn output(&self) -> Option<BorrowedFd<'_>> {
        self.member.output()
    }

    fn read_output(&mut self) -> io::Result<Option<Vec<Message>>> {
        self.member.read_output()
    }

    fn deliver(&mut self, msg: Message) {
        self.program.deliver(msg);
    }

    fn wants_input(&self) -> bool {
        self.program.wants_input()
    }

    fn input_blocked(&self) -> Option<BorrowedFd<'_>> {
        self.program.input_blocked()
    }

    fn write_input(&mut self) {
        self.program.write_input();
    }

    fn read_ahead(&self) -> bool {
        true
    }

    fn side(&self) -> Vec<(BorrowedFd<'_>, i16)> {
        let mut v = Vec::new();
        // While lines wait for the hub, PROGRAM's output waits in its pipe
        // (pushing back on it) instead of growing here.
        if let (Some(fd), true) = (self.program.output(), self.member.wants_input()) {
            v.push((fd, libc::POLLIN));
        }
        if let Some(fd) = self.member.hub_blocked() {
            v.push((fd, libc::POLLOUT));
        }
        v
    }

    fn on_side(&mut self) {
        self.member.write_input();
        if self.program.output().is_some() {
            match self.program.read_output() {
                Ok(Some(lines)) => {
                    for line in lines {
                        if let Message::Text(t) = line {
                            self.member.say(t.as_str());
                        }
                    }
                }
                Ok(None) => {}
                Err(_) => return self.member.end(CloseCode::Error),
            }
        }
        // PROGRAM is done: so is the connection (its status picks the
        // close code once it is collected).
        if self.program.output().is_none() {
            self.member.end(CloseCode::Normal);
        }
    }
}

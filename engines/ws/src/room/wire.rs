//! What travels between a room's members, its hub and a broker: one
//! event per frame. Owns the encoding (pure, so it is table-tested here).
//! Invariants: ids are at most 255 bytes (room ids are far shorter), the
//! text is opaque bytes; a frame on a stream is a 4-byte big-endian
//! length and the body, on a broker the body alone.

/// Longest frame body accepted from a stream; longer means a broken peer.
pub const MAX_BODY: usize = 64 << 20;

/// One room event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Member -> hub: I am `id`. Hub -> members and bot: `id` joined.
    Join(String),
    /// `id` left (or was cut).
    Leave(String),
    /// A message from `from` to everyone.
    Msg { from: String, text: Vec<u8> },
    /// A message from `from` to member `to` only (`bot`: the bot).
    To {
        from: String,
        to: String,
        text: Vec<u8>,
    },
    /// Hub -> member: your join is accepted.
    Welcome,
    /// Hub -> member: the room is full; you are not in it.
    Full,
    /// Hub -> member: you were cut for not reading (and lost messages):
    /// your rejoin is refused.
    Cut,
    /// Hub -> member: the broker went away (`false`) or came back (`true`).
    Broker(bool),
}

impl Event {
    /// The body: a kind byte, then the fields (ids with a length byte).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        let id = |b: &mut Vec<u8>, s: &str| {
            let s = &s.as_bytes()[..s.len().min(255)];
            b.push(s.len() as u8);
            b.extend_from_slice(s);
        };
        match self {
            Event::Join(i) => {
                b.push(b'J');
                id(&mut b, i);
            }
            Event::Leave(i) => {
                b.push(b'L');
                id(&mut b, i);
            }
            Event::Msg { from, text } => {
                b.push(b'M');
                id(&mut b, from);
                b.extend_from_slice(text);
            }
            Event::To { from, to, text } => {
                b.push(b'T');
                id(&mut b, from);
                id(&mut b, to);
                b.extend_from_slice(text);
            }
            Event::Welcome => b.push(b'W'),
            Event::Full => b.push(b'F'),
            Event::Cut => b.push(b'C'),
            Event::Broker(up) => b.extend_from_slice(if *up { b"B+" } else { b"B-" }),
        }
        b
    }

    /// A body back into an event; `None` if it is not one.
    pub fn decode(b: &[u8]) -> Option<Event> {
        let (&kind, mut rest) = b.split_first()?;
        let mut id = || -> Option<String> {
            let (&n, r) = rest.split_first()?;
            let n = usize::from(n);
            if r.len() < n {
                return None;
            }
            let s = String::from_utf8(r[..n].to_vec()).ok()?;
            rest = &r[n..];
            Some(s)
        };
        let ev = match kind {
            b'J' => Event::Join(id()?),
            b'L' => Event::Leave(id()?),
            b'M' => {
                let from = id()?;
                Event::Msg {
                    from,
                    text: rest.to_vec(),
                }
            }
            b'T' => {
                let from = id()?;
                let to = id()?;
                Event::To {
                    from,
                    to,
                    text: rest.to_vec(),
                }
            }
            b'W' if rest.is_empty() => Event::Welcome,
            b'F' if rest.is_empty() => Event::Full,
            b'C' if rest.is_empty() => Event::Cut,
            b'B' if rest == b"+" => Event::Broker(true),
            b'B' if rest == b"-" => Event::Broker(false),
            _ => return None,
        };
        Some(ev)
    }

    /// The body with its length in front, for a stream.
    pub fn frame(&self) -> Vec<u8> {
        let body = self.encode();
        let mut f = (body.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(&body);
        f
    }
}

/// Takes the complete frames off the front of `buf`. `Err` for a frame
/// that is not one (too long, or not an event): the peer is broken.
pub fn take_frames(buf: &mut Vec<u8>) -> Result<Vec<Event>, ()> {
    let mut out = Vec::new();
    let mut at = 0;
    while buf.len() - at >= 4 {
        let n = u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as usize;
        if n > MAX_BODY {
            return Err(());
        }
        if buf.len() - at - 4 < n {
            break;
        }
        out.push(Event::decode(&buf[at + 4..at + 4 + n]).ok_or(())?);
        at += 4 + n;
    }
    buf.drain(..at);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        let s = |x: &str| x.to_string();
        let cases = [
            Event::Join(s("h1-00ff")),
            Event::Leave(s("")),
            Event::Msg {
                from: s("a"),
                text: b"hi \x00 there\n".to_vec(),
            },
            Event::Msg {
                from: s("a"),
                text: vec![],
            },
            Event::To {
                from: s("a"),
                to: s("bot"),
                text: b"x".to_vec(),
            },
            Event::Welcome,
            Event::Full,
            Event::Cut,
            Event::Broker(true),
            Event::Broker(false),
        ];
        for ev in cases {
            assert_eq!(Event::decode(&ev.encode()), Some(ev.clone()), "{ev:?}");
            let mut buf = ev.frame();
            buf.extend_from_slice(&ev.frame()[..3]);
            assert_eq!(take_frames(&mut buf), Ok(vec![ev.clone()]));
            assert_eq!(buf.len(), 3, "a partial frame stays");
        }
    }

    #[test]
    fn broken_bodies_are_refused() {
        let cases: &[&[u8]] = &[b"", b"X", b"J", b"J\x05ab", b"T\x01a", b"Wx", b"B?"];
        for body in cases {
            assert_eq!(Event::decode(body), None, "{body:?}");
        }
        let mut huge = (MAX_BODY as u32 + 1).to_be_bytes().to_vec();
        assert_eq!(take_frames(&mut huge), Err(()));
        let mut bad = vec![0, 0, 0, 1, b'X'];
        assert_eq!(take_frames(&mut bad), Err(()));
    }
}

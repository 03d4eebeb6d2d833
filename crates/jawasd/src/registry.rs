//! The registry of event sources: everything the loop waits on, by key.
//!
//! Owns the epoll instance and, for each watched descriptor, the value it
//! belongs to (a listener, a stderr pipe, a child's pidfd, the signalfd; a
//! pending connection or a zygote socket later) and an optional deadline.
//! It does not know what a source means: the server dispatches on the value.
//!
//! Invariants:
//! - **A descriptor is removed from epoll before it is closed**: sources are
//!   owned here, and `remove` deletes the registration before handing the
//!   value back. This is what makes `add` safe to call.
//! - A key names one source for its whole life; keys are never reused.
//! - Deadlines are kept in order, so finding the next one costs O(log n)
//!   whatever the number of sources.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use polling::{Event, Events, PollMode, Poller};

/// A source's name in the registry.
pub type Key = usize;

struct Entry<S> {
    source: S,
    deadline: Option<Instant>,
    /// Whether the loop wants readiness events from it now.
    armed: bool,
    /// Whether it also wants writability (a control client with output
    /// the kernel did not take yet).
    writable: bool,
}

pub struct Registry<S: AsFd> {
    poller: Poller,
    entries: HashMap<Key, Entry<S>>,
    deadlines: BTreeSet<(Instant, Key)>,
    next: Key,
    /// Test seam: the number of further registrations that succeed before
    /// one fails, as epoll_ctl can (ENOMEM, ENOSPC at max_user_watches).
    #[cfg(test)]
    pub fail_after: Option<usize>,
}

impl<S: AsFd> Registry<S> {
    pub fn new() -> io::Result<Self> {
        Ok(Registry {
            poller: Poller::new()?,
            entries: HashMap::new(),
            deadlines: BTreeSet::new(),
            next: 1,
            #[cfg(test)]
            fail_after: None,
        })
    }

    /// Watches `source` for readability (when `armed`) and returns its key.
    /// On error the source is handed back with it, so nothing is lost.
    pub fn add(&mut self, source: S, armed: bool) -> Result<Key, (S, io::Error)> {
        self.insert(source, armed, PollMode::Level)
    }

    /// Watches `source` for new bytes, edge-triggered: one event per
    /// arrival, not one per loop while unread bytes wait (for sockets that
    /// are only peeked at). `arm` must not be used on it.
    pub fn add_edge(&mut self, source: S) -> Result<Key, (S, io::Error)> {
        self.insert(source, true, PollMode::Edge)
    }

    fn insert(&mut self, source: S, armed: bool, mode: PollMode) -> Result<Key, (S, io::Error)> {
        #[cfg(test)]
        if let Some(n) = self.fail_after.as_mut() {
            if *n == 0 {
                return Err((source, io::Error::from_raw_os_error(libc::ENOSPC)));
            }
            *n -= 1;
        }
        let key = self.next;
        let event = if armed {
            Event::readable(key)
        } else {
            Event::none(key)
        };
        // SAFETY: the descriptor belongs to `source`, which this registry
        // owns from now on and deletes from the poller before dropping it
        // (`remove`, and `Drop` below).
        let added = unsafe {
            self.poller
                .add_with_mode(source.as_fd().as_raw_fd(), event, mode)
        };
        if let Err(e) = added {
            return Err((source, e));
        }
        self.next += 1;
        self.entries.insert(
            key,
            Entry {
                source,
                deadline: None,
                armed,
                writable: false,
            },
        );
        Ok(key)
    }

    /// Stops watching `key` and hands its source back.
    pub fn remove(&mut self, key: Key) -> Option<S> {
        let entry = self.entries.remove(&key)?;
        if let Some(d) = entry.deadline {
            self.deadlines.remove(&(d, key));
        }
        let _ = self.poller.delete(entry.source.as_fd());
        Some(entry.source)
    }

    pub fn get(&self, key: Key) -> Option<&S> {
        self.entries.get(&key).map(|e| &e.source)
    }

    pub fn get_mut(&mut self, key: Key) -> Option<&mut S> {
        self.entries.get_mut(&key).map(|e| &mut e.source)
    }

    #[cfg(test)]
    pub fn contains(&self, key: Key) -> bool {
        self.entries.contains_key(&key)
    }

    /// Every key whose source matches `pick`.
    pub fn keys_where(&self, pick: impl Fn(&S) -> bool) -> Vec<Key> {
        let mut keys: Vec<Key> = self
            .entries
            .iter()
            .filter(|(_, e)| pick(&e.source))
            .map(|(k, _)| *k)
            .collect();
        keys.sort_unstable();
        keys
    }

    /// Turns readiness events for `key` on or off.
    pub fn arm(&mut self, key: Key, on: bool) {
        let Some(entry) = self.entries.get_mut(&key) else {
            return;
        };
        if entry.armed == on {
            return;
        }
        let event = interest(key, on, entry.writable);
        if self
            .poller
            .modify_with_mode(entry.source.as_fd(), event, PollMode::Level)
            .is_ok()
        {
            entry.armed = on;
        }
    }

    /// Turns writability events for `key` on or off (readability stays as
    /// `arm` left it).
    pub fn want_write(&mut self, key: Key, on: bool) {
        let Some(entry) = self.entries.get_mut(&key) else {
            return;
        };
        if entry.writable == on {
            return;
        }
        let event = interest(key, entry.armed, on);
        if self
            .poller
            .modify_with_mode(entry.source.as_fd(), event, PollMode::Level)
            .is_ok()
        {
            entry.writable = on;
        }
    }

    /// Sets or clears the moment `key` expires (see `expired`).
    pub fn set_deadline(&mut self, key: Key, deadline: Option<Instant>) {
        let Some(entry) = self.entries.get_mut(&key) else {
            return;
        };
        if let Some(old) = entry.deadline.take() {
            self.deadlines.remove(&(old, key));
        }
        if let Some(d) = deadline {
            self.deadlines.insert((d, key));
            entry.deadline = Some(d);
        }
    }

    /// The deadline of `key`, if it has one.
    pub fn deadline(&self, key: Key) -> Option<Instant> {
        self.entries.get(&key).and_then(|e| e.deadline)
    }

    /// The earliest deadline of any source.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(d, _)| *d)
    }

    /// Takes the keys whose deadline has passed (their deadlines cleared).
    pub fn expired(&mut self, now: Instant) -> Vec<Key> {
        let mut out = Vec::new();
        while let Some(&(d, key)) = self.deadlines.first() {
            if d > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(e) = self.entries.get_mut(&key) {
                e.deadline = None;
            }
            out.push(key);
        }
        out
    }

    /// Waits for events, at most until `timeout`.
    pub fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        match self.poller.wait(events, timeout) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(e),
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The events a source asks for.
fn interest(key: Key, readable: bool, writable: bool) -> Event {
    let mut event = Event::none(key);
    event.readable = readable;
    event.writable = writable;
    event
}

impl<S: AsFd> Drop for Registry<S> {
    fn drop(&mut self) {
        for (_, e) in self.entries.drain() {
            let _ = self.poller.delete(e.source.as_fd());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    #[test]
    fn events_deadlines_and_removal() {
        let mut r: Registry<UnixStream> = Registry::new().unwrap();
        let (a, mut a_peer) = UnixStream::pair().unwrap();
        let (b, _b_peer) = UnixStream::pair().unwrap();
        let ka = r.add(a, true).unwrap();
        let kb = r.add(b, false).unwrap();
        assert_ne!(ka, kb);
        a_peer.write_all(b"x").unwrap();
        let mut events = Events::new();
        r.wait(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        let keys: Vec<Key> = events.iter().map(|e| e.key).collect();
        assert_eq!(keys, vec![ka]);

        let now = Instant::now();
        r.set_deadline(kb, Some(now + Duration::from_secs(5)));
        r.set_deadline(ka, Some(now + Duration::from_secs(1)));
        assert_eq!(r.next_deadline(), Some(now + Duration::from_secs(1)));
        r.set_deadline(ka, None);
        assert_eq!(r.next_deadline(), Some(now + Duration::from_secs(5)));
        assert!(r.expired(now).is_empty());
        assert_eq!(r.expired(now + Duration::from_secs(6)), vec![kb]);
        assert_eq!(r.next_deadline(), None);

        assert!(r.remove(ka).is_some());
        assert!(r.remove(ka).is_none());
        assert!(!r.contains(ka));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn a_failed_registration_hands_the_source_back() {
        let mut r: Registry<UnixStream> = Registry::new().unwrap();
        r.fail_after = Some(0);
        let (a, _peer) = UnixStream::pair().unwrap();
        let (back, e) = r.add(a, true).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        assert!(back.peer_addr().is_ok());
        assert_eq!(r.len(), 0);
    }
}

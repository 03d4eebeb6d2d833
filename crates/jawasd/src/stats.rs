//! What jawasd counts about each service: the numbers behind SIGUSR1's
//! lines, `jawasd ctl status` and the Prometheus metrics.
//!
//! Owns the counters, the exit-status tally, the connection-duration
//! histogram and the recent accept rate. Invariants: counters only grow
//! while jawasd runs (a reload keeps them); every bucket is cumulative in
//! the output only, stored per bucket; memory is fixed per service (the
//! exit tally is bounded by `MAX_STATUSES`).

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::reaper::ExitStatus;

/// Upper bounds (seconds) of the connection-duration histogram's buckets.
pub const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 600.0,
];
/// Distinct exit statuses tallied per service; the rest count as "other".
const MAX_STATUSES: usize = 32;
/// The accept rate is averaged over this many one-second slots.
const RATE_SLOTS: usize = 10;

#[derive(Default, Debug, Clone)]
pub struct Stats {
    pub accepted: u64,
    pub refused: u64,
    /// Refusals by reason (`Refusal::as_str`).
    pub refused_by: BTreeMap<&'static str, u64>,
    pub spawn_failed: u64,
    /// Engines that ended with a non-zero status or a signal.
    pub failed: u64,
    /// Ends by status: "exit=0", "signal=9", ...
    pub exits: BTreeMap<String, u64>,
    pub durations: Histogram,
    pub rate: Rate,
}

impl Stats {
    pub fn accept(&mut self, now: Instant) {
        self.accepted += 1;
        self.rate.count(now);
    }

    pub fn refuse(&mut self, reason: &'static str) {
        self.refused += 1;
        *self.refused_by.entry(reason).or_insert(0) += 1;
    }

    pub fn ended(&mut self, status: ExitStatus, took: Duration) {
        if status != ExitStatus::Exited(0) {
            self.failed += 1;
        }
        let key = status.describe();
        let key = if self.exits.len() < MAX_STATUSES || self.exits.contains_key(&key) {
            key
        } else {
            "other".to_string()
        };
        *self.exits.entry(key).or_insert(0) += 1;
        self.durations.observe(took);
    }
}

/// Connection durations in fixed buckets (Prometheus style).
#[derive(Default, Debug, Clone)]
pub struct Histogram {
    /// Observations per bucket; the last slot is the overflow (+Inf).
    pub counts: [u64; BUCKETS.len() + 1],
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn observe(&mut self, took: Duration) {
        let s = took.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i] += 1;
        self.sum += s;
        self.count += 1;
    }

    /// `(upper bound, cumulative count)` per bucket, +Inf last (as `None`).
    pub fn cumulative(&self) -> Vec<(Option<f64>, u64)> {
        let mut total = 0;
        let mut out = Vec::with_capacity(self.counts.len());
        for (i, n) in self.counts.iter().enumerate() {
            total += n;
            out.push((BUCKETS.get(i).copied(), total));
        }
        out
    }
}

/// Accepts per second over the last `RATE_SLOTS` seconds.
#[derive(Default, Debug, Clone)]
pub struct Rate {
    /// (second since `origin`, count) per slot.
    slots: [(u64, u64); RATE_SLOTS],
    origin: Option<Instant>,
}

impl Rate {
    fn second(&mut self, now: Instant) -> u64 {
        let origin = *self.origin.get_or_insert(now);
        now.saturating_duration_since(origin).as_secs()
    }

    pub fn count(&mut self, now: Instant) {
        let sec = self.second(now);
        let slot = &mut self.slots[sec as usize % RATE_SLOTS];
        if slot.0 != sec {
            *slot = (sec, 0);
        }
        slot.1 += 1;
    }

    /// The mean over the last `RATE_SLOTS` whole seconds and this one.
    pub fn per_second(&mut self, now: Instant) -> f64 {
        if self.origin.is_none() {
            return 0.0;
        }
        let sec = self.second(now);
        let recent: u64 = self
            .slots
            .iter()
            .filter(|(s, _)| *s + RATE_SLOTS as u64 > sec)
            .map(|(_, n)| n)
            .sum();
        recent as f64 / RATE_SLOTS as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets() {
        let mut h = Histogram::default();
        for ms in [1, 5, 6, 300, 700_000] {
            h.observe(Duration::from_millis(ms));
        }
        let c = h.cumulative();
        assert_eq!(c[0], (Some(0.005), 2), "5 ms is in the 0.005 bucket");
        assert_eq!(c[1], (Some(0.01), 3));
        assert_eq!(c[6], (Some(0.5), 4));
        assert_eq!(c[11], (Some(600.0), 4));
        assert_eq!(c[12], (None, 5));
        assert_eq!(h.count, 5);
    }

    #[test]
    fn rate_forgets_old_seconds() {
        let mut r = Rate::default();
        let t0 = Instant::now();
        for _ in 0..20 {
            r.count(t0);
        }
        assert_eq!(r.per_second(t0), 2.0);
        assert_eq!(r.per_second(t0 + Duration::from_secs(9)), 2.0);
        assert_eq!(r.per_second(t0 + Duration::from_secs(10)), 0.0);
        r.count(t0 + Duration::from_secs(25));
        assert_eq!(r.per_second(t0 + Duration::from_secs(25)), 0.1);
    }

    #[test]
    fn exit_tally() {
        let mut s = Stats::default();
        s.ended(ExitStatus::Exited(0), Duration::ZERO);
        s.ended(ExitStatus::Exited(1), Duration::ZERO);
        s.ended(ExitStatus::Signaled(9), Duration::ZERO);
        assert_eq!(s.failed, 2);
        assert_eq!(s.exits.len(), 3);
        for code in 2..100 {
            s.ended(ExitStatus::Exited(code), Duration::ZERO);
        }
        assert_eq!(s.exits.len(), MAX_STATUSES + 1, "bounded, plus other");
    }
}

//! Admission: whether a new connection gets an engine.
//!
//! A function of the connection (service, client address, time), the
//! service's policy, the running counts and a clock that is passed in, so
//! every rule is unit-tested without sleeping. Owns the state the rules
//! keep between connections: token buckets for `rate` (per service) and
//! `per_source_rate` (per service and client), and the sensor's deny list.
//! It never blocks and never does I/O: the clock supplies the time of day
//! and the load average.
//!
//! Invariant: state kept per client address is bounded: buckets that have
//! refilled and denials that have expired are dropped by `prune`.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::acl::Acl;
use crate::config::{Rate, Service};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Access,
    MaxConnections,
    Instances,
    PerSource,
    Rate,
    SourceRate,
    AccessTimes,
    Load,
    Denied,
    /// A `spawn = "zygote"` service with `zygote_fallback = "refuse"`
    /// whose zygote is not ready.
    NoZygote,
    /// A `proxy_protocol` connection from outside `proxy_from`.
    ProxyUntrusted,
    /// A `proxy_protocol` connection without a valid header.
    ProxyHeader,
    /// A `proxy_protocol` connection whose header did not come in time.
    ProxyTimeout,
    /// Too many connections waiting for their PROXY header or request.
    MaxPending,
    /// A router's request matched no route (404).
    RouteNone,
    /// A router's request named a host with no route (421).
    RouteHost,
    /// A router's request could not be read (400).
    RouteBad,
    /// A router's request did not come in time (408).
    RouteTimeout,
}

impl Refusal {
    /// The reason word xinetd writes in its FAIL lines.
    pub fn xinetd_reason(self) -> &'static str {
        match self {
            Refusal::Access => "address",
            Refusal::AccessTimes => "time",
            Refusal::Load => "load",
            Refusal::MaxConnections => "process_limit",
            Refusal::Instances => "service_limit",
            Refusal::PerSource => "per_source_limit",
            Refusal::Rate | Refusal::SourceRate => "cps",
            Refusal::Denied => "sensor",
            Refusal::NoZygote => "service_limit",
            Refusal::ProxyUntrusted | Refusal::ProxyHeader | Refusal::ProxyTimeout => "address",
            Refusal::MaxPending => "process_limit",
            Refusal::RouteNone | Refusal::RouteHost | Refusal::RouteBad | Refusal::RouteTimeout => {
                "address"
            }
        }
    }

    /// A refusal for a count of running engines, which an exit not yet
    /// seen may have made wrong.
    pub fn counts_sessions(self) -> bool {
        matches!(
            self,
            Refusal::MaxConnections | Refusal::Instances | Refusal::PerSource
        )
    }

    /// The reason word of jawasd's own `refuse` line (the config key).
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Access => "access",
            Refusal::MaxConnections => "max_connections",
            Refusal::Instances => "instances",
            Refusal::PerSource => "per_source",
            Refusal::Rate => "rate",
            Refusal::SourceRate => "per_source_rate",
            Refusal::AccessTimes => "access_times",
            Refusal::Load => "max_load",
            Refusal::Denied => "deny_time",
            Refusal::NoZygote => "zygote_fallback",
            Refusal::ProxyUntrusted => "proxy_from",
            Refusal::ProxyHeader => "proxy_header",
            Refusal::ProxyTimeout => "proxy_timeout",
            Refusal::MaxPending => "max_pending",
            Refusal::RouteNone => "route_none",
            Refusal::RouteHost => "route_host",
            Refusal::RouteBad => "route_bad_request",
            Refusal::RouteTimeout => "route_timeout",
        }
    }
}

/// The admission rules of one service, taken from its config.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub acl: Acl,
    pub access_times: Vec<(u16, u16)>,
    pub max_load: Option<f64>,
    pub instances: Option<u32>,
    pub per_source: Option<u32>,
    pub rate: Option<Rate>,
    pub source_rate: Option<Rate>,
    pub sensor: bool,
    pub deny_time: Option<Duration>,
}

impl Policy {
    pub fn of(svc: &Service) -> Policy {
        Policy {
            acl: svc.acl.clone(),
            access_times: svc.access_times.clone(),
            max_load: svc.max_load,
            instances: svc.instances,
            per_source: svc.per_source,
            rate: svc.rate,
            source_rate: svc.per_source_rate,
            sensor: svc.sensor,
            deny_time: svc.deny_time,
        }
    }
}

/// Where the rules get the time, the time of day and the load average.
pub trait Clock {
    fn now(&self) -> Instant;
    /// Minutes since local midnight.
    fn minute_of_day(&self) -> u16;
    /// The 1-minute load average.
    fn load_average(&mut self) -> f64;
}

/// The running counts a connection is checked against.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// Sessions of every service.
    pub total: usize,
    /// Sessions of this service.
    pub service: u32,
    /// Sessions of this service from this client.
    pub source: u32,
}

/// A connection asking to be served.
pub struct Request<'a> {
    pub service: &'a Rc<str>,
    /// The client; `None` for a TCP wait service, where the engine accepts.
    pub ip: Option<IpAddr>,
    pub counts: Counts,
    /// jawasd's `max_connections`.
    pub max_total: Option<u32>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(rate.burst),
            refilled: now,
        }
    }

    /// Refills for the time passed, then takes a token if there is one.
    fn take(&mut self, rate: Rate, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(f64::from(rate.burst));
        self.refilled = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }

    fn is_full_at(&self, rate_per_second: f64, burst: u32, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens + elapsed * rate_per_second >= f64::from(burst)
    }
}

/// What admission remembers between connections.
#[derive(Default)]
pub struct Admission {
    service_buckets: HashMap<Rc<str>, Bucket>,
    source_buckets: HashMap<(Rc<str>, IpAddr), (Bucket, Rate)>,
    /// Clients that touched a sensor, denied every service until then.
    denied: HashMap<IpAddr, Instant>,
    /// Checks since the last prune.
    since_prune: u32,
}

/// A denial longer than the clock can count lasts this long instead.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Per-client state is swept after this many checks.
const PRUNE_EVERY: u32 = 4096;

impl Admission {
    /// Decides on one connection. Takes a rate token when it admits.
    pub fn check(
        &mut self,
        policy: &Policy,
        req: &Request<'_>,
        clock: &mut dyn Clock,
    ) -> Result<(), Refusal> {
        let now = clock.now();
        self.since_prune += 1;
        if self.since_prune >= PRUNE_EVERY {
            self.prune(now);
        }
        if let Some(ip) = req.ip {
            if let Some(until) = self.denied.get(&ip) {
                if *until > now {
                    return Err(Refusal::Denied);
                }
                self.denied.remove(&ip);
            }
            if policy.sensor {
                if let Some(d) = policy.deny_time.filter(|d| !d.is_zero()) {
                    // A deny_time too long for the clock means: for as long as
                    // jawasd runs.
                    let until = now.checked_add(d).or_else(|| now.checked_add(FOREVER));
                    self.denied.insert(ip, until.unwrap_or(now));
                }
                return Err(Refusal::Denied);
            }
            if !policy.acl.allows(ip) {
                return Err(Refusal::Access);
            }
        }
        if !policy.access_times.is_empty() && !within(&policy.access_times, clock.minute_of_day()) {
            return Err(Refusal::AccessTimes);
        }
        if let Some(max) = policy.max_load {
            if clock.load_average() >= max {
                return Err(Refusal::Load);
            }
        }
        if req
            .max_total
            .is_some_and(|m| req.counts.total >= m as usize)
        {
            return Err(Refusal::MaxConnections);
        }
        if policy.instances.is_some_and(|m| req.counts.service >= m) {
            return Err(Refusal::Instances);
        }
        if req.ip.is_some() && policy.per_source.is_some_and(|m| req.counts.source >= m) {
            return Err(Refusal::PerSource);
        }
        // The per-source bucket first: a flooding client spends its own
        // tokens and is refused before it can drain the service's.
        if let (Some(rate), Some(ip)) = (policy.source_rate, req.ip) {
            let (bucket, kept) = self
                .source_buckets
                .entry((req.service.clone(), ip))
                .or_insert_with(|| (Bucket::full(rate, now), rate));
            *kept = rate;
            if !bucket.take(rate, now) {
                return Err(Refusal::SourceRate);
            }
        }
        if let Some(rate) = policy.rate {
            let bucket = self
                .service_buckets
                .entry(req.service.clone())
                .or_insert_with(|| Bucket::full(rate, now));
            if !bucket.take(rate, now) {
                return Err(Refusal::Rate);
            }
        }
        Ok(())
    }

    /// Drops per-client state that no longer changes a decision: buckets
    /// that would be full again, and denials that have expired.
    pub fn prune(&mut self, now: Instant) {
        self.since_prune = 0;
        self.source_buckets
            .retain(|_, (b, rate)| !b.is_full_at(rate.per_second, rate.burst, now));
        self.denied.retain(|_, until| *until > now);
    }

    /// Forgets the buckets of services that no longer exist (after a reload).
    pub fn retain_services(&mut self, exists: impl Fn(&str) -> bool) {
        self.service_buckets.retain(|name, _| exists(name));
        self.source_buckets.retain(|(name, _), _| exists(name));
    }
}

/// Whether `minute` falls in one of the ranges (a range may wrap past
/// midnight; bounds are included, as in xinetd).
fn within(ranges: &[(u16, u16)], minute: u16) -> bool {
    ranges.iter().any(|&(a, b)| {
        if a <= b {
            a <= minute && minute <= b
        } else {
            minute >= a || minute <= b
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::Cidr;

    struct FakeClock {
        now: Instant,
        minute: u16,
        load: f64,
    }

    impl Clock for FakeClock {
        fn now(&self) -> Instant {
            self.now
        }
        fn minute_of_day(&self) -> u16 {
            self.minute
        }
        fn load_average(&mut self) -> f64 {
            self.load
        }
    }

    fn clock() -> FakeClock {
        FakeClock {
            now: Instant::now(),
            minute: 12 * 60,
            load: 0.5,
        }
    }

    fn ask<'a>(svc: &'a Rc<str>, ip: &str, counts: Counts) -> Request<'a> {
        Request {
            service: svc,
            ip: Some(ip.parse().unwrap()),
            counts,
            max_total: Some(100),
        }
    }

    #[test]
    fn each_rule_refuses_in_order() {
        let svc: Rc<str> = Rc::from("web");
        let acl = Acl {
            only_from: None,
            no_access: vec![Cidr::parse("192.0.2.0/24").unwrap()],
        };
        let strict = Policy {
            acl,
            access_times: vec![(8 * 60, 17 * 60)],
            max_load: Some(4.0),
            instances: Some(10),
            per_source: Some(2),
            ..Policy::default()
        };
        let zero = Counts::default();
        type Case = (&'static str, Counts, u16, f64, Result<(), Refusal>);
        let cases: &[Case] = &[
            ("198.51.100.1", zero, 12 * 60, 0.5, Ok(())),
            ("192.0.2.9", zero, 12 * 60, 0.5, Err(Refusal::Access)),
            (
                "198.51.100.1",
                zero,
                20 * 60,
                0.5,
                Err(Refusal::AccessTimes),
            ),
            ("198.51.100.1", zero, 17 * 60, 0.5, Ok(())),
            ("198.51.100.1", zero, 12 * 60, 4.0, Err(Refusal::Load)),
            (
                "198.51.100.1",
                Counts {
                    total: 100,
                    service: 0,
                    source: 0,
                },
                12 * 60,
                0.5,
                Err(Refusal::MaxConnections),
            ),
            (
                "198.51.100.1",
                Counts {
                    total: 10,
                    service: 10,
                    source: 0,
                },
                12 * 60,
                0.5,
                Err(Refusal::Instances),
            ),
            (
                "198.51.100.1",
                Counts {
                    total: 2,
                    service: 2,
                    source: 2,
                },
                12 * 60,
                0.5,
                Err(Refusal::PerSource),
            ),
        ];
        for (ip, counts, minute, load, want) in cases {
            let mut c = clock();
            c.minute = *minute;
            c.load = *load;
            let got = Admission::default().check(&strict, &ask(&svc, ip, *counts), &mut c);
            assert_eq!(got, *want, "{ip} {counts:?} minute={minute} load={load}");
        }
    }

    #[test]
    fn access_times_wrap_past_midnight() {
        for (minute, want) in [(23 * 60, true), (30, true), (12 * 60, false)] {
            assert_eq!(within(&[(22 * 60, 60)], minute), want, "{minute}");
        }
    }

    #[test]
    fn service_rate_refills_with_time() {
        let svc: Rc<str> = Rc::from("web");
        let policy = Policy {
            rate: Some(Rate {
                per_second: 2.0,
                burst: 3,
            }),
            ..Policy::default()
        };
        let mut a = Admission::default();
        let mut c = clock();
        let req = ask(&svc, "198.51.100.1", Counts::default());
        let results: Vec<bool> = (0..4)
            .map(|_| a.check(&policy, &req, &mut c).is_ok())
            .collect();
        assert_eq!(results, [true, true, true, false]);
        c.now += Duration::from_millis(500);
        assert!(a.check(&policy, &req, &mut c).is_ok(), "one token back");
        assert_eq!(a.check(&policy, &req, &mut c), Err(Refusal::Rate));
    }

    #[test]
    fn a_flooding_source_does_not_lock_out_others() {
        let svc: Rc<str> = Rc::from("web");
        let policy = Policy {
            rate: Some(Rate {
                per_second: 100.0,
                burst: 100,
            }),
            source_rate: Some(Rate {
                per_second: 1.0,
                burst: 5,
            }),
            ..Policy::default()
        };
        let mut a = Admission::default();
        let mut c = clock();
        let flood = ask(&svc, "203.0.113.66", Counts::default());
        let admitted = (0..1000)
            .filter(|_| a.check(&policy, &flood, &mut c).is_ok())
            .count();
        assert_eq!(admitted, 5, "the flooder gets its burst only");
        let other = ask(&svc, "198.51.100.1", Counts::default());
        assert_eq!(a.check(&policy, &other, &mut c), Ok(()));
        // Buckets that refilled are forgotten.
        c.now += Duration::from_secs(10);
        a.prune(c.now);
        assert!(a.source_buckets.is_empty());
    }

    #[test]
    fn sensor_denies_every_service_until_it_expires() {
        let sensor: Rc<str> = Rc::from("trap");
        let web: Rc<str> = Rc::from("web");
        let trap = Policy {
            sensor: true,
            deny_time: Some(Duration::from_secs(60)),
            ..Policy::default()
        };
        let open = Policy::default();
        let mut a = Admission::default();
        let mut c = clock();
        let z = Counts::default();
        assert_eq!(
            a.check(&trap, &ask(&sensor, "192.0.2.1", z), &mut c),
            Err(Refusal::Denied)
        );
        assert_eq!(
            a.check(&open, &ask(&web, "192.0.2.1", z), &mut c),
            Err(Refusal::Denied)
        );
        assert_eq!(a.check(&open, &ask(&web, "192.0.2.2", z), &mut c), Ok(()));
        c.now += Duration::from_secs(61);
        assert_eq!(a.check(&open, &ask(&web, "192.0.2.1", z), &mut c), Ok(()));
        // An absurd deny_time cannot overflow the clock.
        let forever = Policy {
            sensor: true,
            deny_time: Some(Duration::MAX),
            ..Policy::default()
        };
        assert_eq!(
            a.check(&forever, &ask(&sensor, "192.0.2.3", z), &mut c),
            Err(Refusal::Denied)
        );
    }
}

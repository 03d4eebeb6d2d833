//! The on-disk cache of the rendered site, shared by every process that
//! serves it: readers find a page with an open and three small reads, and the
//! sources are looked at most once per period across all processes.
//!
//! Owns the cache directory except `memo/` (the content side's):
//! - `objects/KEY`: rendered files, immutable, named by their `Planned`
//!   key in hex, written to a temporary name and renamed into place;
//! - `gen-N`: one generation, a single immutable file (see `index`) that
//!   gives every output path its `Record` (key, length, Last-Modified,
//!   Content-Type), plus the aliases, the sources' fingerprint and the
//!   next time the plan changes by itself;
//! - `current`: a symbolic link to the generation being served, replaced
//!   by rename(2), so a reader sees the old or the new site, never a mix;
//! - `stamp`: its mtime is when the sources were last scanned;
//! - `lock`: flock(2) held by the one builder;
//! - `failed`: the fingerprint of sources that failed to load.
//!
//! With `--drafts` the names `current`, `stamp`, `failed` and `gen-N` take
//! a `drafts-` prefix, so a drafts preview and the public site can share
//! one cache without switching each other's generation.
//!
//! Invariants: an object is served only when its length is the one its
//! record says (a truncated or missing object makes the reader rebuild,
//! never serve); a generation file is complete before `current` names it
//! (written under a temporary name, then renamed); the generation
//! `current` names and the one before it are never removed, nor the
//! objects any remaining generation names.

mod index;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::site::{Finding, LoadOptions, Memo, Planned, Site};

/// How many directory levels below posts/, pages/ and templates/ a scan
/// descends (a bound, not a feature: sources are flat directories).
const SCAN_DEPTH: usize = 4;

/// What a generation says about one output file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub key: u128,
    pub len: u64,
    /// Last-Modified, Unix seconds.
    pub modified: i64,
    pub content_type: String,
}

impl Record {
    /// `KEY LEN MODIFIED CONTENT-TYPE`, as the generation file holds it.
    fn encode(&self) -> String {
        format!(
            "{:032x} {} {} {}",
            self.key, self.len, self.modified, self.content_type
        )
    }

    fn decode(text: &str) -> Option<Record> {
        let mut parts = text.splitn(4, ' ');
        let key = parts.next().filter(|k| k.len() == 32)?;
        let record = Record {
            key: u128::from_str_radix(key, 16).ok()?,
            len: parts.next()?.parse().ok()?,
            modified: parts.next()?.parse().ok()?,
            content_type: parts.next().filter(|t| !t.is_empty())?.to_string(),
        };
        Some(record)
    }

    /// The object's name under `objects/`.
    pub fn object_name(&self) -> String {
        format!("{:032x}", self.key)
    }
}

/// One file of the current generation, open and checked against its record.
pub struct Page {
    pub file: File,
    pub record: Record,
    /// When these bytes were first rendered here (the object's mtime,
    /// Unix seconds): a post edited without a new `updated` still changes
    /// this, so Last-Modified never claims the bytes are older than they are.
    pub rendered: i64,
}

/// What looking up an output path finds.
pub enum Lookup {
    Found(Page),
    /// Not a file of the site (maybe a static file or an alias).
    Missing,
    /// No usable generation, or a record whose object is missing or the
    /// wrong length: the cache must be rebuilt before anything is served.
    Corrupt(String),
}

/// Why a generation could not be built.
#[derive(Debug)]
pub enum BuildError {
    /// The sources have problems; nothing was switched.
    Findings(Vec<Finding>),
    Io(String),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Findings(list) => {
                let lines: Vec<String> = list.iter().map(|x| x.to_string()).collect();
                write!(f, "the site has problems: {}", lines.join("; "))
            }
            BuildError::Io(why) => write!(f, "{why}"),
        }
    }
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> BuildError {
    BuildError::Io(format!("{what} {}: {e}", path.display()))
}

/// The cache of one site, for one view of it (public or with drafts).
pub struct Store {
    site: PathBuf,
    cache: PathBuf,
    drafts: bool,
    period: Duration,
    /// The stamp's mtime as the last `refresh` saw it.
    seen_stamp: std::cell::Cell<Option<SystemTime>>,
    /// The generation file opened for an earlier request of this
    /// connection, with the stamp's mtime then: while the stamp has not
    /// changed no build has switched `current`, so it is still current
    /// (a build touches the stamp after the switch; until then the old
    /// generation, whole and valid, is served a moment longer).
    gen: std::cell::RefCell<Option<(SystemTime, std::rc::Rc<File>)>>,
}

impl Store {
    /// The cache under `cache` for the site in `site`. Nothing is created
    /// yet (the first build does that, so `--check` writes nothing); fails
    /// with a message naming the directory when the cache, or the
    /// directory it would be made in, cannot be written.
    pub fn open(site: &Path, cache: &Path, drafts: bool) -> Result<Store, String> {
        let mut probe = cache;
        // The nearest existing directory is the one that must be writable.
        while !probe.exists() {
            match probe.parent() {
                Some(p) if !p.as_os_str().is_empty() => probe = p,
                _ => break,
            }
        }
        if !writable(probe) {
            let e = std::io::Error::last_os_error().to_string();
            // Without the "(os error N)" Rust appends: the message is for people.
            let why = e.split(" (os error").next().unwrap_or(&e);
            return Err(format!(
                "cannot write the cache {}: {}: {why}",
                cache.display(),
                probe.display()
            ));
        }
        Ok(Store {
            site: site.to_path_buf(),
            cache: cache.to_path_buf(),
            drafts,
            period: Duration::from_secs(1),
            seen_stamp: std::cell::Cell::new(None),
            gen: std::cell::RefCell::new(None),
        })
    }

    /// The same store, scanning at most once per `period`.
    pub fn with_period(self, period: Duration) -> Store {
        Store { period, ..self }
    }

    pub fn site_dir(&self) -> &Path {
        &self.site
    }

    fn name(&self, base: &str) -> String {
        if self.drafts {
            format!("drafts-{base}")
        } else {
            base.to_string()
        }
    }

    fn path(&self, base: &str) -> PathBuf {
        self.cache.join(self.name(base))
    }

    /// The generation `current` names, when it names one by a valid name.
    fn current_gen(&self) -> Option<String> {
        let target = std::fs::read_link(self.path("current")).ok()?;
        let target = target.to_str()?;
        let number = target.strip_prefix(&self.name("gen-"))?;
        (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
            .then(|| target.to_string())
    }

    fn read_meta(&self, gen: &str) -> Option<index::Meta> {
        let f = File::open(self.cache.join(gen)).ok()?;
        index::read_meta(&f).ok()
    }

    /// Whether the sources were scanned less than a period ago.
    fn stamp_fresh(&self) -> bool {
        self.seen_stamp.set(None);
        let Ok(meta) = std::fs::metadata(self.path("stamp")) else {
            return false;
        };
        let Ok(at) = meta.modified() else {
            return false;
        };
        self.seen_stamp.set(Some(at));
        // A stamp from the future (clock stepped back) is not fresh.
        matches!(SystemTime::now().duration_since(at), Ok(age) if age < self.period)
    }

    fn touch_stamp(&self) -> Result<(), BuildError> {
        let path = self.path("stamp");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_err("cannot write", &path, e))?;
        f.set_modified(SystemTime::now())
            .map_err(|e| io_err("cannot touch", &path, e))
    }

    /// Makes sure the current generation is no older than the sources as
    /// of at most one period ago: does nothing while the stamp is fresh;
    /// otherwise scans the sources (at most once per period across every
    /// process sharing the cache) and builds a generation when they
    /// changed or a future post's time came. When another process is
    /// building, returns at once and the old generation is served, unless
    /// there is none yet: then it waits for that build.
    pub fn refresh(&self) -> Result<(), BuildError> {
        if self.stamp_fresh() {
            return Ok(());
        }
        // A scan, maybe a build, follows: the generation is looked up anew.
        self.gen.replace(None);
        let have_current = self.current_gen().is_some();
        let Some(_lock) = self.lock(!have_current)? else {
            return Ok(());
        };
        if self.stamp_fresh() && self.current_gen().is_some() {
            return Ok(());
        }
        self.scan_and_build(false)
    }

    /// Builds a new generation whatever the stamp says, re-rendering every
    /// object that is missing or not the length its record says: for a
    /// reader that found the cache damaged, and for `build`. Waits for a
    /// build in progress.
    pub fn rebuild(&self) -> Result<(), BuildError> {
        self.rebuild_then(|_| ())
    }

    /// `rebuild`, then `then` with the lock still held, so no other
    /// builder can switch or remove the generation while `then` reads it.
    pub fn rebuild_then<T>(&self, then: impl FnOnce(&Store) -> T) -> Result<T, BuildError> {
        let _lock = self.lock(true)?;
        self.gen.replace(None);
        self.scan_and_build(true)?;
        self.gen.replace(None);
        Ok(then(self))
    }

    /// The builder's lock: `None` when `wait` is false and another process
    /// holds it.
    fn lock(&self, wait: bool) -> Result<Option<File>, BuildError> {
        let objects = self.cache.join("objects");
        std::fs::create_dir_all(&objects).map_err(|e| io_err("cannot create", &objects, e))?;
        let path = self.cache.join("lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_err("cannot open", &path, e))?;
        let op = if wait {
            libc::LOCK_EX
        } else {
            libc::LOCK_EX | libc::LOCK_NB
        };
        loop {
            // SAFETY: flock on a descriptor owned by `f`, alive for the call.
            if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
                // Released when `f` is closed.
                return Ok(Some(f));
            }
            let e = std::io::Error::last_os_error();
            match e.kind() {
                ErrorKind::Interrupted => continue,
                ErrorKind::WouldBlock => return Ok(None),
                _ => return Err(io_err("cannot lock", &path, e)),
            }
        }
    }

    /// Under the lock: scan, and build when needed (or `force`d).
    fn scan_and_build(&self, force: bool) -> Result<(), BuildError> {
        let fingerprint = fingerprint(&self.site, self.drafts);
        let current = self.current_gen();
        let meta = current.as_deref().and_then(|g| self.read_meta(g));
        let now = unix_now();
        let unchanged = meta
            .as_ref()
            .is_some_and(|m| m.fingerprint == fingerprint && m.next_change.is_none_or(|t| t > now));
        if unchanged && !force {
            return self.touch_stamp();
        }
        // Sources that failed to load are not loaded again every period
        // until they change; the last good generation stays served.
        let failed_path = self.path("failed");
        let failed = std::fs::read_to_string(&failed_path).ok();
        if !force && current.is_some() && failed.as_deref() == Some(fingerprint.as_str()) {
            return self.touch_stamp();
        }
        match self.build(&fingerprint, current.as_deref(), force) {
            Err(BuildError::Findings(f)) => {
                let _ = std::fs::write(&failed_path, &fingerprint);
                let _ = self.touch_stamp();
                Err(BuildError::Findings(f))
            }
            other => other,
        }
    }

    /// Loads and plans the site, renders what has no object yet, writes a
    /// new generation and switches `current` to it. With `verify`, every
    /// object kept is checked for its length first (after damage was seen).
    fn build(
        &self,
        fingerprint: &str,
        previous: Option<&str>,
        verify: bool,
    ) -> Result<(), BuildError> {
        let now = SystemTime::now();
        let mut memo = Memo::open(&self.cache.join("memo"))
            .map_err(|e| io_err("cannot open", &self.cache.join("memo"), e))?;
        let opts = LoadOptions {
            drafts: self.drafts,
            now,
        };
        let site = Site::load(&self.site, &opts, &mut memo).map_err(BuildError::Findings)?;
        let known = previous.map(|g| self.manifest(g)).unwrap_or_default();
        let mut files = Vec::new();
        for planned in site.plan() {
            // A content-side bug, never served: the whole build is refused.
            if !safe_output_path(&planned.path) {
                return Err(BuildError::Io(format!(
                    "the plan has an unsafe output path {:?}",
                    planned.path
                )));
            }
            let record = self.object(&site, &planned, &known, verify)?;
            files.push((planned.path, record));
        }
        let contents = index::Contents {
            meta: index::Meta {
                fingerprint: fingerprint.to_string(),
                next_change: site.next_change().map(unix_secs),
                // An alias with a control character could split a
                // Location header: such an alias is left out (check
                // reports bad front matter), not the whole build refused.
                aliases: site
                    .aliases()
                    .into_iter()
                    .filter(|(from, to)| !from.chars().chain(to.chars()).any(char::is_control))
                    .collect(),
            },
            files,
        };
        let bytes = index::encode(&contents).map_err(BuildError::Io)?;
        let gen = self.name(&format!("gen-{}", self.next_number()?));
        let tmp = self.cache.join(format!("{gen}.tmp"));
        write_file(&tmp, &bytes)?;
        let dest = self.cache.join(&gen);
        std::fs::rename(&tmp, &dest).map_err(|e| io_err("cannot rename", &tmp, e))?;
        self.switch(&gen)?;
        let _ = std::fs::remove_file(self.path("failed"));
        self.touch_stamp()?;
        self.collect(&gen, previous);
        Ok(())
    }

    /// The record of `planned`, rendering its object unless the previous
    /// generation has one for its key (an object no generation vouches
    /// for is rendered again). Objects are immutable, so the previous
    /// generation's word is taken as it is, unless `verify`: then the
    /// object must also be there with that length. (A reader checks every
    /// object it sends, so damage not verified here is still never served.)
    fn object(
        &self,
        site: &Site,
        planned: &Planned,
        known: &HashMap<u128, u64>,
        verify: bool,
    ) -> Result<Record, BuildError> {
        let mut record = Record {
            key: planned.key,
            len: 0,
            modified: unix_secs(planned.modified),
            content_type: planned.content_type.replace(['\n', '\t'], " "),
        };
        let path = self.cache.join("objects").join(record.object_name());
        if let Some(len) = known.get(&planned.key) {
            let intact =
                !verify || std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == *len);
            if intact {
                record.len = *len;
                return Ok(record);
            }
        }
        let bytes = site
            .render(planned)
            .map_err(|e| BuildError::Io(format!("cannot render {}: {e}", planned.path)))?;
        let tmp = self.cache.join("objects").join(format!(
            ".tmp-{}-{}",
            record.object_name(),
            std::process::id()
        ));
        write_file(&tmp, &bytes)?;
        std::fs::rename(&tmp, &path).map_err(|e| io_err("cannot rename", &tmp, e))?;
        record.len = bytes.len() as u64;
        Ok(record)
    }

    /// Key to length of every object a generation's manifest names.
    fn manifest(&self, gen: &str) -> HashMap<u128, u64> {
        self.manifest_records(gen)
            .into_iter()
            .map(|(r, _)| (r.key, r.len))
            .collect()
    }

    /// Every (record, path) of a generation; empty when it is damaged.
    pub fn manifest_records(&self, gen: &str) -> Vec<(Record, String)> {
        let Ok(bytes) = std::fs::read(self.cache.join(gen)) else {
            return Vec::new();
        };
        match index::decode(&bytes) {
            Ok(c) => c.files.into_iter().map(|(p, r)| (r, p)).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// One more than the highest generation number of this view.
    fn next_number(&self) -> Result<u64, BuildError> {
        let prefix = self.name("gen-");
        let entries =
            std::fs::read_dir(&self.cache).map_err(|e| io_err("cannot read", &self.cache, e))?;
        let highest = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let rest = name.strip_prefix(&prefix)?;
                rest.trim_end_matches(".tmp").parse::<u64>().ok()
            })
            .max()
            .unwrap_or(0);
        Ok(highest + 1)
    }

    /// Points `current` at `gen` atomically: a new link renamed over it.
    fn switch(&self, gen: &str) -> Result<(), BuildError> {
        let tmp = self.path(&format!("current.tmp-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(gen, &tmp).map_err(|e| io_err("cannot link", &tmp, e))?;
        let current = self.path("current");
        std::fs::rename(&tmp, &current).map_err(|e| io_err("cannot rename", &tmp, e))
    }

    /// Removes this view's generations other than `current` and
    /// `previous` (and unfinished ones), then every object no remaining
    /// generation of any view names. Failures only leave garbage behind.
    fn collect(&self, current: &str, previous: Option<&str>) {
        let prefix = self.name("gen-");
        let other_prefix = if self.drafts { "gen-" } else { "drafts-gen-" };
        let Ok(entries) = std::fs::read_dir(&self.cache) else {
            return;
        };
        let mut live = Vec::new();
        for e in entries.flatten() {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            if name.starts_with(&prefix) {
                if name == current || Some(name.as_str()) == previous {
                    live.push(name);
                } else {
                    let _ = std::fs::remove_file(e.path());
                }
            } else if name.starts_with(other_prefix) && !name.ends_with(".tmp") {
                live.push(name);
            }
        }
        let mut keep = HashSet::new();
        for gen in &live {
            for (record, _) in self.manifest_records(gen) {
                keep.insert(record.object_name());
            }
        }
        let objects = self.cache.join("objects");
        let Ok(entries) = std::fs::read_dir(&objects) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            // Temporary files are another builder's only under the lock,
            // which we hold: any left are from a crash.
            if !keep.contains(name.as_ref()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// The file at output path `rel` (`index.html`, `tag/rust/index.html`)
    /// in the current generation. An object missing because the
    /// generation was replaced (and its objects collected) between
    /// opening `current` and opening the object is looked up again, once.
    pub fn lookup(&self, rel: &str) -> Lookup {
        let mut last = Lookup::Missing;
        for attempt in 0..2 {
            let gen = match self.current_file(attempt == 0) {
                Ok(f) => f,
                Err(e) => {
                    return Lookup::Corrupt(format!("{}: {e}", self.path("current").display()))
                }
            };
            let record = match index::find(&gen, rel) {
                Ok(Some(r)) => r,
                Ok(None) => return Lookup::Missing,
                Err(why) => return Lookup::Corrupt(format!("{}: {why}", self.name("current"))),
            };
            last = self.open_object(record);
            if !matches!(last, Lookup::Corrupt(_)) {
                return last;
            }
        }
        last
    }

    /// The current generation file: the one kept from an earlier request
    /// when `reuse` and the stamp has not changed since, else opened (and
    /// kept).
    fn current_file(&self, reuse: bool) -> std::io::Result<std::rc::Rc<File>> {
        let stamp = self.seen_stamp.get();
        if let (true, Some(at), Some((kept_at, f))) = (reuse, stamp, &*self.gen.borrow()) {
            if *kept_at == at {
                return Ok(f.clone());
            }
        }
        let f = std::rc::Rc::new(File::open(self.path("current"))?);
        self.gen.replace(stamp.map(|at| (at, f.clone())));
        Ok(f)
    }

    fn open_object(&self, record: Record) -> Lookup {
        let path = self.cache.join("objects").join(record.object_name());
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) => return Lookup::Corrupt(format!("{}: {e}", path.display())),
        };
        match file.metadata() {
            Ok(m) if m.is_file() && m.len() == record.len => Lookup::Found(Page {
                file,
                record,
                rendered: m.mtime(),
            }),
            Ok(m) => Lookup::Corrupt(format!(
                "{}: {} bytes, the record says {}",
                path.display(),
                m.len(),
                record.len
            )),
            Err(e) => Lookup::Corrupt(format!("{}: {e}", path.display())),
        }
    }

    /// The current generation's aliases, (old path, new path).
    pub fn aliases(&self) -> Vec<(String, String)> {
        File::open(self.path("current"))
            .ok()
            .and_then(|f| index::read_meta(&f).ok())
            .map(|m| m.aliases)
            .unwrap_or_default()
    }

    /// The current generation's name (for `build`).
    pub fn current(&self) -> Option<String> {
        self.current_gen()
    }

    /// The path of an object, for `build`.
    pub fn object_path(&self, record: &Record) -> PathBuf {
        self.cache.join("objects").join(record.object_name())
    }
}

/// Whether this process may create files in directory `dir` (access(2)
/// with W_OK and X_OK; errno says why not).
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access with a NUL-terminated path alive for the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// Writes `bytes` to a new file at `path`.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    let mut f = File::create(path).map_err(|e| io_err("cannot create", path, e))?;
    f.write_all(bytes)
        .map_err(|e| io_err("cannot write", path, e))
}

/// An output path is relative, made of plain names: nothing that could
/// climb out of a generation or hide as a dotfile.
fn safe_output_path(p: &str) -> bool {
    !p.is_empty()
        && !p.contains(['\\', '\0', '\t', '\n'])
        && p.split('/').all(|s| !s.is_empty() && !s.starts_with('.'))
}

fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs_f64().ceil() as i64),
    }
}

fn unix_now() -> i64 {
    unix_secs(SystemTime::now())
}

/// A digest of the identity of every source file (name, device, inode,
/// size, times, mode), of this program's file (a new binary may render
/// differently: its built-in theme) and of the options that change the
/// output: equal fingerprints, nothing to rebuild. Reads directories and
/// stats files; reads no file's contents.
pub fn fingerprint(site: &Path, drafts: bool) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    env!("CARGO_PKG_VERSION").hash(&mut h);
    drafts.hash(&mut h);
    let mut entries = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        stat_into(Path::new("/"), &exe, &mut entries);
    }
    stat_into(site, Path::new("site.toml"), &mut entries);
    for dir in ["posts", "pages", "templates"] {
        scan_dir(site, Path::new(dir), SCAN_DEPTH, &mut entries);
    }
    entries.sort();
    entries.hash(&mut h);
    format!("{:016x}", h.finish())
}

type Identity = (PathBuf, u64, u64, u64, i64, i64, i64, i64, u32);

fn stat_into(site: &Path, rel: &Path, out: &mut Vec<Identity>) -> Option<std::fs::Metadata> {
    let m = std::fs::metadata(site.join(rel)).ok()?;
    out.push((
        rel.to_path_buf(),
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
        m.mode(),
    ));
    Some(m)
}

fn scan_dir(site: &Path, rel: &Path, depth: usize, out: &mut Vec<Identity>) {
    let Some(m) = stat_into(site, rel, out) else {
        return;
    };
    if !m.is_dir() || depth == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(site.join(rel)) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        // Editors' swap and backup files come and go without the site
        // changing; dotfiles are never sources.
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        scan_dir(site, &rel.join(name), depth - 1, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_reject_garbage() {
        let r = Record {
            key: 0x0123_4567_89ab_cdef_0011_2233_4455_6677,
            len: 42,
            modified: 1_700_000_000,
            content_type: "text/html; charset=utf-8".into(),
        };
        assert_eq!(Record::decode(&r.encode()), Some(r.clone()));
        for bad in [
            "",
            "garbage",
            "0123 42 1 text/html",
            "0123456789abcdef0011223344556677 x 1 text/html",
            "0123456789abcdef0011223344556677 42 1",
            "0123456789abcdef0011223344556677 42 1 ",
            "zz23456789abcdef0011223344556677 42 1 text/html",
        ] {
            assert_eq!(Record::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn output_paths() {
        for (p, ok) in [
            ("index.html", true),
            ("tag/rust/index.html", true),
            ("2024/05/01/a.html", true),
            ("", false),
            ("/etc/passwd", false),
            ("../x", false),
            ("a/../../x", false),
            ("a//b", false),
            (".meta", false),
            ("a/.hidden", false),
            ("a\\b", false),
        ] {
            assert_eq!(safe_output_path(p), ok, "{p:?}");
        }
    }
}

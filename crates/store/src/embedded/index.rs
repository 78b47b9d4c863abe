//! The in-memory MVCC index: every retained version of every key, serving reads at any
//! retained revision and the replay part of watches.
//!
//! Per key the index keeps the versions in revision order; a delete is a tombstone version.
//! Compaction at `C` keeps, per key, the newest version at or below `C` (dropped too when it
//! is a tombstone) and everything above `C`, so the state at `C` stays readable and every
//! event above `C` still knows its previous value (what etcd's `prev_kv` would return).

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

use crate::{Entry, Error, Event, EventKind, ListOptions, Page, Result, Revision};

/// One version of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Version {
    pub rev: i64,
    /// Create revision of this incarnation (0 for a tombstone).
    pub create: i64,
    /// Writes since (re)creation (0 for a tombstone).
    pub version: i64,
    /// `None` marks a delete.
    pub value: Option<Bytes>,
}

/// A write as it appears in the log: what was done, at which revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Op {
    pub rev: i64,
    pub key: String,
    /// `Some` for a put, `None` for a delete.
    pub value: Option<Bytes>,
}

/// The whole retained history.
#[derive(Debug, Default)]
pub(crate) struct Index {
    keys: BTreeMap<String, Vec<Version>>,
    current: i64,
    compacted: i64,
}

impl Index {
    /// An index restored from a snapshot (see `snapshot.rs`).
    pub fn from_parts(keys: BTreeMap<String, Vec<Version>>, current: i64, compacted: i64) -> Self {
        Index { keys, current, compacted }
    }

    pub fn current(&self) -> i64 {
        self.current
    }

    pub fn compacted(&self) -> i64 {
        self.compacted
    }

    /// Every key with its retained versions, in key order.
    #[cfg(test)]
    pub fn keys(&self) -> &BTreeMap<String, Vec<Version>> {
        &self.keys
    }

    /// Up to `max` keys after `after` (all keys when `None`) with their versions at or
    /// below `at`, skipping keys with none, plus the last key looked at (`None` at the end).
    /// A snapshot of revision `at` is read in such chunks while writes go on: writes only
    /// append versions above `at`, so the chunks add up to one consistent state.
    #[allow(clippy::type_complexity)] // a pair of plain collections reads better than a struct
    pub fn chunk_at(
        &self,
        after: Option<&str>,
        at: i64,
        max: usize,
    ) -> (Vec<(String, Vec<Version>)>, Option<String>) {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut chunk = Vec::new();
        let mut last = None;
        for (key, versions) in self.keys.range::<str, _>((start, Bound::Unbounded)).take(max) {
            let upto = versions.partition_point(|v| v.rev <= at);
            if upto > 0 {
                chunk.push((key.clone(), versions[..upto].to_vec()));
            }
            last = Some(key);
        }
        (chunk, last.cloned())
    }

    /// The mod revision of the live key, `None` when absent or deleted.
    pub fn live_revision(&self, key: &str) -> Option<i64> {
        let last = self.keys.get(key)?.last()?;
        last.value.as_ref().map(|_| last.rev)
    }

    /// The latest live entry of `key`.
    pub fn get(&self, key: &str) -> Option<Entry> {
        let versions = self.keys.get(key)?;
        entry_at(key, versions, self.current)
    }

    /// Keys under `prefix` as of `options.revision`, in key order.
    pub fn list(&self, prefix: &str, options: &ListOptions) -> Result<Page> {
        let at = match options.revision {
            None => self.current,
            Some(Revision(r)) => {
                self.check_readable(r)?;
                r
            }
        };
        let start = match &options.start_after {
            Some(after) if after.as_str() >= prefix => Bound::Excluded(after.clone()),
            _ => Bound::Included(prefix.to_string()),
        };
        let limit = options.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let mut entries = Vec::new();
        let mut remaining = 0;
        let range = self.keys.range::<String, _>((start, Bound::Unbounded));
        for (key, versions) in range.take_while(|(k, _)| k.starts_with(prefix)) {
            if let Some(entry) = entry_at(key, versions, at) {
                if entries.len() < limit {
                    entries.push(entry);
                } else {
                    remaining += 1;
                }
            }
        }
        Ok(Page { entries, revision: Revision(at), remaining })
    }

    /// `Compacted` below the compacted revision, `FutureRevision` above the current one.
    pub fn check_readable(&self, rev: i64) -> Result<()> {
        if rev < self.compacted {
            return Err(Error::Compacted {
                requested: Revision(rev),
                oldest: Revision(self.compacted),
            });
        }
        if rev > self.current {
            return Err(Error::FutureRevision {
                requested: Revision(rev),
                current: Revision(self.current),
            });
        }
        Ok(())
    }

    /// Applies one write, which must carry the next revision, and returns its event.
    /// The caller (the writer, or recovery) has already checked the write's preconditions;
    /// a delete of an absent key or a revision gap here means the log is corrupt.
    pub fn apply(&mut self, op: Op) -> std::result::Result<Event, String> {
        if op.rev != self.current + 1 {
            return Err(format!("revision {} follows revision {}", op.rev, self.current));
        }
        let versions = self.keys.entry(op.key.clone()).or_default();
        let prev = versions.last().and_then(|v| v.value.as_ref().map(|_| v.clone()));
        let event = match (op.value, prev) {
            (Some(value), prev) => {
                let (create, version) = match &prev {
                    Some(p) => (p.create, p.version + 1),
                    None => (op.rev, 1),
                };
                versions.push(Version { rev: op.rev, create, version, value: Some(value) });
                let len = versions.len();
                event_of(&op.key, &versions[len - 1], prev.as_ref())
            }
            (None, Some(prev)) => {
                versions.push(Version { rev: op.rev, create: 0, version: 0, value: None });
                let len = versions.len();
                event_of(&op.key, &versions[len - 1], Some(&prev))
            }
            (None, None) => return Err(format!("delete of absent key {}", op.key)),
        };
        self.current = op.rev;
        Ok(event)
    }

    /// Drops history below `up_to`; the caller checked `compacted < up_to <= current`.
    pub fn compact(&mut self, up_to: i64) {
        self.keys.retain(|_, versions| {
            // Index of the newest version at or below `up_to`: everything before it goes.
            let keep_from = versions.partition_point(|v| v.rev <= up_to).saturating_sub(1);
            versions.drain(..keep_from);
            if versions.first().is_some_and(|v| v.rev <= up_to && v.value.is_none()) {
                versions.remove(0);
            }
            !versions.is_empty()
        });
        self.compacted = up_to;
    }

    /// Every retained event under `prefix` with a revision above `after`, in revision order.
    pub fn events_after(&self, prefix: &str, after: i64) -> Vec<Event> {
        let mut events = Vec::new();
        let range = self.keys.range::<str, _>((Bound::Included(prefix), Bound::Unbounded));
        for (key, versions) in range.take_while(|(k, _)| k.starts_with(prefix)) {
            let first = versions.partition_point(|v| v.rev <= after);
            for i in first..versions.len() {
                let prev = i.checked_sub(1).map(|p| &versions[p]).filter(|p| p.value.is_some());
                events.push(event_of(key, &versions[i], prev));
            }
        }
        events.sort_by_key(|e| e.entry.mod_revision);
        events
    }
}

/// The live entry of a key as of revision `at`.
fn entry_at(key: &str, versions: &[Version], at: i64) -> Option<Entry> {
    let idx = versions.partition_point(|v| v.rev <= at).checked_sub(1)?;
    let v = &versions[idx];
    let value = v.value.clone()?;
    Some(Entry {
        key: key.to_string(),
        value,
        create_revision: Revision(v.create),
        mod_revision: Revision(v.rev),
        version: v.version,
    })
}

fn entry_of(key: &str, v: &Version) -> Entry {
    Entry {
        key: key.to_string(),
        value: v.value.clone().unwrap_or_default(),
        create_revision: Revision(v.create),
        mod_revision: Revision(v.rev),
        version: v.version,
    }
}

/// The event that wrote `v`, given the live version before it.
fn event_of(key: &str, v: &Version, prev: Option<&Version>) -> Event {
    let prev = prev.map(|p| entry_of(key, p));
    match &v.value {
        Some(_) => Event { kind: EventKind::Put, entry: entry_of(key, v), prev },
        None => {
            // A delete carries the last value, stamped with the delete's revision.
            let mut entry = prev.clone().unwrap_or_else(|| Entry {
                key: key.to_string(),
                value: Bytes::new(),
                create_revision: Revision(0),
                mod_revision: Revision(0),
                version: 0,
            });
            entry.mod_revision = Revision(v.rev);
            Event { kind: EventKind::Delete, entry, prev }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(rev: i64, key: &str, value: &str) -> Op {
        Op { rev, key: key.into(), value: Some(Bytes::copy_from_slice(value.as_bytes())) }
    }

    fn del(rev: i64, key: &str) -> Op {
        Op { rev, key: key.into(), value: None }
    }

    fn build(ops: Vec<Op>) -> Index {
        let mut index = Index::default();
        for op in ops {
            index.apply(op).unwrap();
        }
        index
    }

    #[test]
    fn apply_tracks_create_revision_and_version() {
        let index =
            build(vec![put(1, "/a", "1"), put(2, "/a", "2"), del(3, "/a"), put(4, "/a", "3")]);
        let e = index.get("/a").unwrap();
        assert_eq!((e.create_revision.0, e.mod_revision.0, e.version), (4, 4, 1));
        let page =
            index.list("/a", &ListOptions { revision: Some(Revision(2)), ..Default::default() });
        let e = &page.unwrap().entries[0];
        assert_eq!((e.create_revision.0, e.mod_revision.0, e.version), (1, 2, 2));
    }

    #[test]
    fn apply_rejects_gaps_and_absent_deletes() {
        let mut index = build(vec![put(1, "/a", "1")]);
        assert!(index.apply(put(3, "/b", "x")).is_err());
        assert!(index.apply(del(2, "/b")).is_err());
    }

    #[test]
    fn compact_keeps_state_at_revision_and_later_history() {
        let mut index = build(vec![
            put(1, "/a", "1"),
            put(2, "/b", "1"),
            put(3, "/a", "2"),
            del(4, "/b"),
            put(5, "/a", "3"),
            put(6, "/c", "1"),
        ]);
        index.compact(4);
        assert_eq!(index.keys.len(), 2, "fully deleted /b is gone");
        assert_eq!(index.keys["/a"].iter().map(|v| v.rev).collect::<Vec<_>>(), vec![3, 5]);
        let at4 =
            index.list("/", &ListOptions { revision: Some(Revision(4)), ..Default::default() });
        let keys: Vec<_> = at4.unwrap().entries.into_iter().map(|e| e.key).collect();
        assert_eq!(keys, vec!["/a"]);
        assert!(matches!(
            index.list("/", &ListOptions { revision: Some(Revision(3)), ..Default::default() }),
            Err(Error::Compacted { .. })
        ));
        let events = index.events_after("/", 4);
        assert_eq!(events.iter().map(|e| e.revision().0).collect::<Vec<_>>(), vec![5, 6]);
        assert_eq!(events[0].prev.as_ref().unwrap().mod_revision, Revision(3));
    }

    #[test]
    fn chunks_at_a_revision_ignore_later_writes() {
        let mut index = build(vec![put(1, "/a", "1"), put(2, "/b", "1"), put(3, "/c", "1")]);
        let (first, last) = index.chunk_at(None, 2, 1);
        assert_eq!(last.as_deref(), Some("/a"));
        index.apply(put(4, "/a", "2")).unwrap();
        index.apply(put(5, "/aa", "1")).unwrap();
        let (second, last) = index.chunk_at(last.as_deref(), 2, 2);
        assert_eq!(last.as_deref(), Some("/b"));
        let keys: Vec<_> =
            first.iter().chain(&second).map(|(k, v)| (k.as_str(), v.len())).collect();
        assert_eq!(keys, [("/a", 1), ("/b", 1)]);
        let (third, last) = index.chunk_at(last.as_deref(), 2, 2);
        assert_eq!((third.len(), last.as_deref()), (0, Some("/c")));
        assert_eq!(index.chunk_at(last.as_deref(), 2, 2), (vec![], None));
    }

    #[test]
    fn delete_event_carries_last_value() {
        let index = build(vec![put(1, "/a", "v"), del(2, "/a")]);
        let events = index.events_after("/", 0);
        assert_eq!(events[1].kind, EventKind::Delete);
        assert_eq!(events[1].entry.value, Bytes::from_static(b"v"));
        assert_eq!(events[1].entry.mod_revision, Revision(2));
        assert_eq!(events[1].prev.as_ref().unwrap().mod_revision, Revision(1));
    }
}

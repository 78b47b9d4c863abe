//! Snapshots: the whole retained history in one checksummed file, written by compaction.
//!
//! ```text
//! file := "RKSNAP\0\x02" body crc32(body):u32le
//! body := generation:u64le compacted:i64le current:i64le key* END:u32le (0xffff_ffff)
//! key  := key_len:u32le key version_count:u32le version{version_count}
//! version := rev:i64le create:i64le version:i64le tag:u8 (0 tombstone, 1 value)
//!            [value_len:u32le value]                                    (tag 1 only)
//! ```
//!
//! Keys are streamed (no count up front), so a snapshot can be written from the live index
//! in chunks while writes go on. A snapshot is written to a temporary name, synced and
//! renamed into place, so it is either complete or absent; a bad checksum therefore means
//! corruption, never a torn write.

use std::collections::BTreeMap;
use std::io::Write;

use bytes::Bytes;

use super::index::{Index, Version};
use super::log::Reader;

const SNAP_MAGIC: &[u8; 8] = b"RKSNAP\0\x02";
const END: u32 = u32::MAX;

/// Streams a snapshot into `out`: [`begin`](Self::begin), [`key`](Self::key) in key order,
/// [`finish`](Self::finish).
pub(crate) struct SnapshotWriter<W: Write> {
    out: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> SnapshotWriter<W> {
    pub fn begin(out: W, generation: u64, compacted: i64, current: i64) -> std::io::Result<Self> {
        let mut w = SnapshotWriter { out, crc: crc32fast::Hasher::new() };
        w.out.write_all(SNAP_MAGIC)?;
        w.put(&generation.to_le_bytes())?;
        w.put(&compacted.to_le_bytes())?;
        w.put(&current.to_le_bytes())?;
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.crc.update(bytes);
        self.out.write_all(bytes)
    }

    pub fn key(&mut self, key: &str, versions: &[Version]) -> std::io::Result<()> {
        self.put(&(key.len() as u32).to_le_bytes())?;
        self.put(key.as_bytes())?;
        self.put(&(versions.len() as u32).to_le_bytes())?;
        for v in versions {
            self.put(&v.rev.to_le_bytes())?;
            self.put(&v.create.to_le_bytes())?;
            self.put(&v.version.to_le_bytes())?;
            match &v.value {
                None => self.put(&[0])?,
                Some(value) => {
                    self.put(&[1])?;
                    self.put(&(value.len() as u32).to_le_bytes())?;
                    self.put(value)?;
                }
            }
        }
        Ok(())
    }

    /// Writes the end marker and checksum; returns the sink for syncing.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.put(&END.to_le_bytes())?;
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        Ok(self.out)
    }
}

/// Serialises all of `index` as generation `generation` (tests; compaction streams).
#[cfg(test)]
pub(crate) fn write(index: &Index, generation: u64, out: &mut impl Write) -> std::io::Result<()> {
    let mut w = SnapshotWriter::begin(out, generation, index.compacted(), index.current())?;
    for (key, versions) in index.keys() {
        w.key(key, versions)?;
    }
    w.finish().map(|_| ())
}

/// Parses a snapshot file's bytes; `generation` must match the file name.
pub(crate) fn read(buf: &[u8], generation: u64) -> Result<Index, String> {
    if buf.len() < SNAP_MAGIC.len() + 4 || &buf[..SNAP_MAGIC.len()] != SNAP_MAGIC {
        return Err("not a snapshot file".into());
    }
    let body = &buf[SNAP_MAGIC.len()..buf.len() - 4];
    let mut stored = [0u8; 4];
    stored.copy_from_slice(&buf[buf.len() - 4..]);
    if crc32fast::hash(body) != u32::from_le_bytes(stored) {
        return Err("snapshot checksum mismatch".into());
    }
    let mut r = Reader { buf: body, at: 0 };
    let found = r.u64()?;
    if found != generation {
        return Err(format!("snapshot says generation {found}, file name says {generation}"));
    }
    let compacted = r.i64()?;
    let current = r.i64()?;
    let mut keys = BTreeMap::new();
    loop {
        let len = r.u32()?;
        if len == END {
            break;
        }
        let len = len as usize;
        let key = std::str::from_utf8(r.bytes(len)?).map_err(|_| "key is not UTF-8")?;
        let count = r.u32()? as usize;
        let mut versions = Vec::with_capacity(count.min(body.len()));
        for _ in 0..count {
            let rev = r.i64()?;
            let create = r.i64()?;
            let version = r.i64()?;
            let value = match r.bytes(1)?[0] {
                0 => None,
                1 => {
                    let len = r.u32()? as usize;
                    Some(Bytes::copy_from_slice(r.bytes(len)?))
                }
                tag => return Err(format!("unknown version tag {tag}")),
            };
            versions.push(Version { rev, create, version, value });
        }
        keys.insert(key.to_string(), versions);
    }
    if r.at != body.len() {
        return Err("trailing bytes in snapshot".into());
    }
    Ok(Index::from_parts(keys, current, compacted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::index::Op;

    #[test]
    fn round_trips_and_detects_damage() {
        let mut index = Index::default();
        for (rev, key, value) in [(1, "/a", Some("x")), (2, "/b", Some("y")), (3, "/a", None)] {
            let value = value.map(|v| Bytes::copy_from_slice(v.as_bytes()));
            index.apply(Op { rev, key: key.into(), value }).unwrap();
        }
        index.compact(2);
        let mut buf = Vec::new();
        write(&index, 5, &mut buf).unwrap();
        let back = read(&buf, 5).unwrap();
        assert_eq!(back.keys(), index.keys());
        assert_eq!((back.current(), back.compacted()), (3, 2));
        assert!(read(&buf, 6).is_err());
        buf[20] ^= 1;
        assert!(read(&buf, 5).unwrap_err().contains("checksum"));
    }
}

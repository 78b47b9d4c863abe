//! Cluster snapshots: every key of the store as of one revision, plus a few named files
//! (the cluster's CA and keys), in one checksummed file that `rkube snapshot restore` turns
//! back into a data directory.
//!
//! ```text
//! file    := MAGIC format:u32le body crc32(MAGIC format body):u32le
//! body    := meta_len:u32le meta  entry_count:u64le entry*  file_count:u32le named*
//! meta    := UTF-8 lines "name=value": cluster, revision, created, source
//! entry   := key_len:u32le key value_len:u32le value create:i64le mod:i64le version:i64le
//! named   := name_len:u32le name len:u32le bytes
//! ```
//!
//! [`Snapshot::decode`] checks magic, format version, checksum and structure of the whole
//! file before returning anything, so a restore never acts on a damaged or truncated file.
//! Entries keep their create/mod revisions and versions, so objects keep their
//! resourceVersions across a restore (as etcd's own snapshot restore does).

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use bytes::Bytes;

use crate::{EmbeddedStore, Entry, ListOptions, Result, Revision, Store};

const MAGIC: &[u8; 16] = b"rkube-snapshot\n\0";
/// The snapshot format this build writes and reads.
pub const FORMAT: u32 = 1;
/// Keys read per list call while capturing.
const PAGE: usize = 5000;

/// Who made a snapshot, of what, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The cluster's identity (the `kube-system` namespace's uid, as upstream tools use).
    pub cluster: String,
    /// The store revision the entries are the state of.
    pub revision: Revision,
    /// When it was taken (RFC 3339, UTC).
    pub created: String,
    /// The backend it was taken from (`embedded` or `etcd`).
    pub source: String,
}

/// A decoded or captured snapshot.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub meta: Meta,
    /// Every key as of `meta.revision`, in key order.
    pub entries: Vec<Entry>,
    /// Named files restored next to the store (e.g. `tls/ca.crt`).
    pub files: Vec<(String, Vec<u8>)>,
}

/// Why a snapshot file was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("not an rkube snapshot (bad magic)")]
    NotASnapshot,
    #[error("snapshot format {found} is newer than this build reads ({supported})")]
    UnsupportedFormat { found: u32, supported: u32 },
    #[error("snapshot checksum mismatch: the file is corrupt or truncated")]
    Checksum,
    #[error("snapshot is malformed: {0}")]
    Malformed(String),
}

/// Reads every key of `store` at one revision (the current one), page by page.
pub async fn capture(store: &dyn Store, cluster: &str, created: &str, source: &str) -> Result<Snapshot> {
    let revision = store.current_revision().await?;
    let mut entries = Vec::new();
    let mut start_after = None;
    loop {
        let options = ListOptions { revision: Some(revision), start_after, limit: Some(PAGE) };
        let page = store.list("", options).await?;
        entries.extend(page.entries);
        if page.remaining == 0 {
            break;
        }
        start_after = entries.last().map(|e| e.key.clone());
    }
    let meta = Meta {
        cluster: cluster.to_string(),
        revision,
        created: created.to_string(),
        source: source.to_string(),
    };
    Ok(Snapshot { meta, entries, files: Vec::new() })
}

impl Snapshot {
    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            64 + self.entries.iter().map(|e| e.key.len() + e.value.len() + 32).sum::<usize>(),
        );
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT.to_le_bytes());
        let mut meta = String::new();
        let m = &self.meta;
        let _ = write!(
            meta,
            "cluster={}\nrevision={}\ncreated={}\nsource={}\n",
            m.cluster, m.revision, m.created, m.source
        );
        put_bytes(&mut out, meta.as_bytes());
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for e in &self.entries {
            put_bytes(&mut out, e.key.as_bytes());
            put_bytes(&mut out, &e.value);
            out.extend_from_slice(&e.create_revision.0.to_le_bytes());
            out.extend_from_slice(&e.mod_revision.0.to_le_bytes());
            out.extend_from_slice(&e.version.to_le_bytes());
        }
        out.extend_from_slice(&(self.files.len() as u32).to_le_bytes());
        for (name, data) in &self.files {
            put_bytes(&mut out, name.as_bytes());
            put_bytes(&mut out, data);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses and fully validates a snapshot file.
    pub fn decode(buf: &[u8]) -> Result<Snapshot, SnapshotError> {
        let meta = Self::check(buf)?;
        let body = &buf[MAGIC.len() + 4..buf.len() - 4];
        let mut r = Reader { buf: body, at: 0 };
        r.bytes_u32()?; // meta, parsed by check
        let count = r.u64()?;
        let mut entries = Vec::with_capacity((count as usize).min(body.len() / 36));
        let mut last: Option<&[u8]> = None;
        for _ in 0..count {
            let key = r.bytes_u32()?;
            if last.is_some_and(|l| l >= key) {
                return Err(SnapshotError::Malformed("keys out of order".into()));
            }
            last = Some(key);
            let key = std::str::from_utf8(key)
                .map_err(|_| SnapshotError::Malformed("key is not UTF-8".into()))?;
            let value = Bytes::copy_from_slice(r.bytes_u32()?);
            let (create, modified, version) = (r.i64()?, r.i64()?, r.i64()?);
            if modified > meta.revision.0 || create > modified || create <= 0 || version <= 0 {
                return Err(SnapshotError::Malformed(format!("bad revisions for {key}")));
            }
            entries.push(Entry {
                key: key.to_string(),
                value,
                create_revision: Revision(create),
                mod_revision: Revision(modified),
                version,
            });
        }
        let file_count = r.u32()?;
        let mut files = Vec::new();
        for _ in 0..file_count {
            let name = std::str::from_utf8(r.bytes_u32()?)
                .map_err(|_| SnapshotError::Malformed("file name is not UTF-8".into()))?;
            let safe = !name.is_empty()
                && !name.starts_with('/')
                && name.split('/').all(|part| !part.is_empty() && part != "." && part != "..");
            if !safe {
                return Err(SnapshotError::Malformed(format!("unsafe file name {name:?}")));
            }
            files.push((name.to_string(), r.bytes_u32()?.to_vec()));
        }
        if r.at != body.len() {
            return Err(SnapshotError::Malformed("trailing bytes".into()));
        }
        Ok(Snapshot { meta, entries, files })
    }

    /// Checks magic, format and checksum and returns the metadata, without decoding entries
    /// (for `rkube snapshot ls`).
    pub fn check(buf: &[u8]) -> Result<Meta, SnapshotError> {
        if buf.len() < MAGIC.len() || &buf[..MAGIC.len()] != MAGIC {
            return Err(SnapshotError::NotASnapshot);
        }
        if buf.len() < MAGIC.len() + 8 {
            return Err(SnapshotError::Checksum);
        }
        let mut format = [0u8; 4];
        format.copy_from_slice(&buf[MAGIC.len()..MAGIC.len() + 4]);
        let format = u32::from_le_bytes(format);
        if format != FORMAT {
            return Err(SnapshotError::UnsupportedFormat { found: format, supported: FORMAT });
        }
        let (content, crc) = buf.split_at(buf.len() - 4);
        let mut stored = [0u8; 4];
        stored.copy_from_slice(crc);
        if crc32fast::hash(content) != u32::from_le_bytes(stored) {
            return Err(SnapshotError::Checksum);
        }
        let mut r = Reader { buf: &content[MAGIC.len() + 4..], at: 0 };
        let text = std::str::from_utf8(r.bytes_u32()?)
            .map_err(|_| SnapshotError::Malformed("metadata is not UTF-8".into()))?;
        parse_meta(text)
    }
}

/// What [`restore_embedded`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// Where the previous store directory went (`<data-dir>/db.old`), if there was one.
    pub previous: Option<std::path::PathBuf>,
    pub entries: usize,
    pub revision: Revision,
}

/// Restores `snapshot` into `data_dir` for the embedded backend: the store becomes
/// `<data-dir>/db` and the named files land under `<data-dir>`.
///
/// Everything is written beside the live data first (`db.restoring`, `*.restoring`); only
/// when that succeeded is the old `db` moved to `db.old` (replacing an older `db.old`) and
/// the new one moved in, so a failure leaves the old data as it was. Refuses with
/// [`Error::Unavailable`](crate::Error::Unavailable) while a server has `db` open.
pub fn restore_embedded(snapshot: &Snapshot, data_dir: &Path) -> Result<Restored> {
    std::fs::create_dir_all(data_dir)?;
    let db = data_dir.join("db");
    // Held until the swap is done: no server can open the old store meanwhile.
    let _lock = if db.exists() { Some(EmbeddedStore::lock_dir(&db)?) } else { None };
    let staging = data_dir.join("db.restoring");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    EmbeddedStore::create_restored(&staging, snapshot.meta.revision, &snapshot.entries)?;
    let mut staged_files = Vec::new();
    for (name, data) in &snapshot.files {
        let target = data_dir.join(name);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = data_dir.join(format!("{name}.restoring"));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        staged_files.push((tmp, target));
    }
    let mut previous = None;
    if db.exists() {
        let old = data_dir.join("db.old");
        if old.exists() {
            std::fs::remove_dir_all(&old)?;
        }
        std::fs::rename(&db, &old)?;
        previous = Some(old);
    }
    std::fs::rename(&staging, &db)?;
    for (tmp, target) in staged_files {
        std::fs::rename(tmp, target)?;
    }
    std::fs::File::open(data_dir)?.sync_all()?;
    Ok(Restored { previous, entries: snapshot.entries.len(), revision: snapshot.meta.revision })
}

fn parse_meta(text: &str) -> Result<Meta, SnapshotError> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
            .map(str::to_string)
            .ok_or_else(|| SnapshotError::Malformed(format!("metadata lacks {name}")))
    };
    let revision = field("revision")?
        .parse()
        .map_err(|_| SnapshotError::Malformed("bad revision".into()))?;
    Ok(Meta {
        cluster: field("cluster")?,
        revision: Revision(revision),
        created: field("created")?,
        source: field("source")?,
    })
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        let end = self.at.checked_add(n).filter(|end| *end <= self.buf.len());
        let end = end.ok_or_else(|| SnapshotError::Malformed("truncated record".into()))?;
        let out = &self.buf[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u32(&mut self) -> Result<u32, SnapshotError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&mut self) -> Result<u64, SnapshotError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }
    fn i64(&mut self) -> Result<i64, SnapshotError> {
        Ok(self.u64()? as i64)
    }
    fn bytes_u32(&mut self) -> Result<&'a [u8], SnapshotError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Snapshot {
        let entry = |key: &str, value: &str, create: i64, modified: i64, version: i64| Entry {
            key: key.into(),
            value: Bytes::copy_from_slice(value.as_bytes()),
            create_revision: Revision(create),
            mod_revision: Revision(modified),
            version,
        };
        Snapshot {
            meta: Meta {
                cluster: "uid-1".into(),
                revision: Revision(9),
                created: "2026-01-01T00:00:00Z".into(),
                source: "embedded".into(),
            },
            entries: vec![entry("/registry/a", "{}", 2, 5, 3), entry("/registry/b", "x", 9, 9, 1)],
            files: vec![("tls/ca.crt".into(), b"PEM".to_vec())],
        }
    }

    #[test]
    fn round_trips() {
        let s = sample();
        let back = Snapshot::decode(&s.encode()).unwrap();
        assert_eq!((back.meta, back.entries, back.files), (s.meta, s.entries, s.files));
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_refused() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            assert!(Snapshot::decode(&bytes[..len]).is_err(), "truncated to {len} accepted");
        }
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x20;
            assert!(Snapshot::decode(&bad).is_err(), "flip at {at} accepted");
        }
    }

    #[test]
    fn newer_format_is_named() {
        let mut bytes = sample().encode();
        bytes[16] = 2;
        let e = Snapshot::decode(&bytes).unwrap_err();
        assert_eq!(e, SnapshotError::UnsupportedFormat { found: 2, supported: FORMAT });
    }

    #[test]
    fn structure_is_checked_even_with_a_valid_checksum() {
        // A file that checksums fine but escapes the data dir with a file name.
        let mut s = sample();
        s.files = vec![("../../etc/passwd".into(), b"x".to_vec())];
        assert!(matches!(Snapshot::decode(&s.encode()), Err(SnapshotError::Malformed(_))));
        let mut s = sample();
        s.entries.swap(0, 1);
        assert!(matches!(Snapshot::decode(&s.encode()), Err(SnapshotError::Malformed(_))));
    }
}

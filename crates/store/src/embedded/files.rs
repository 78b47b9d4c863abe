//! The data directory: format marker, lock, log and snapshot files, recovery on open and the
//! file switch of compaction.
//!
//! ```text
//! <dir>/FORMAT        "rkube-store-embedded <version>\n"
//! <dir>/LOCK          held (flock) while a process has the store open
//! <dir>/snap.<gen>    state after compaction number <gen> (absent for generation 0)
//! <dir>/log.<gen>     every write after snap.<gen>
//! ```
//!
//! Compaction first switches writes to a fresh `log.<gen+1>` (created and synced before the
//! first write goes there), then writes the state as of the switch to `snap.tmp` in the
//! background, syncs it and renames it to `snap.<gen+1>`: that rename is the commit point,
//! after which older files are deleted. Recovery loads the highest snapshot generation `s`
//! (none: generation 0), replays `log.s` and every following `log.s+1`, `log.s+2`, ... (a
//! crash before the rename leaves the old snapshot and a chain of logs), and deletes older
//! files and `snap.tmp`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

use super::index::Index;
use super::log;
use super::snapshot::{self, SnapshotWriter};
use crate::{Error, Result};

/// The on-disk format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
const FORMAT_FILE: &str = "FORMAT";
const FORMAT_PREFIX: &str = "rkube-store-embedded ";
const LOCK_FILE: &str = "LOCK";
pub(crate) const SNAP_TMP: &str = "snap.tmp";

/// An open, locked data directory.
pub(crate) struct DataDir {
    path: PathBuf,
    /// Holds the advisory lock for as long as the store is open.
    _lock: File,
}

/// The active log, written only by the writer thread.
pub(crate) struct LogFile {
    file: File,
    generation: u64,
    /// Where the next frame goes.
    pos: u64,
    /// Length of the file; `pos..allocated` is zeros written ahead.
    allocated: u64,
    preallocate: u64,
}

/// Everything [`open`] recovered.
pub(crate) struct Recovered {
    pub dir: DataDir,
    pub log: LogFile,
    pub index: Index,
}

fn corrupt(path: &Path, reason: impl Into<String>) -> Error {
    Error::Corrupt { path: path.display().to_string(), reason: reason.into() }
}

fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// Opens (creating if needed) the store in `path` and recovers its state.
pub(crate) fn open(path: &Path, preallocate: u64) -> Result<Recovered> {
    fs::create_dir_all(path)?;
    let dir = DataDir { path: path.to_path_buf(), _lock: lock(path)? };
    let names: Vec<String> = fs::read_dir(path)?
        .filter_map(|e| e.ok().and_then(|e| e.file_name().into_string().ok()))
        .collect();
    let has_data = names.iter().any(|n| n.starts_with("log.") || n.starts_with("snap."));
    check_format(path, has_data)?;

    let generation = names.iter().filter_map(|n| generation_of(n, "snap.")).max().unwrap_or(0);
    let mut index = Index::default();
    if generation > 0 {
        let snap_path = path.join(format!("snap.{generation}"));
        index = snapshot::read(&fs::read(&snap_path)?, generation)
            .map_err(|reason| corrupt(&snap_path, reason))?;
    }
    let log_path = path.join(format!("log.{generation}"));
    let mut log = recover_log(&log_path, generation, preallocate, &mut index)?;
    while names.contains(&format!("log.{}", log.generation + 1)) {
        let next = log.generation + 1;
        log = recover_log(&path.join(format!("log.{next}")), next, preallocate, &mut index)?;
    }
    if let Some(stray) = names.iter().find(|n| generation_of(n, "log.") > Some(log.generation)) {
        return Err(corrupt(&path.join(stray), "log does not follow the others"));
    }

    // Leftovers of finished or interrupted compactions.
    let mut removed = false;
    for name in &names {
        let stale = name == SNAP_TMP
            || generation_of(name, "snap.").is_some_and(|g| g < generation)
            || generation_of(name, "log.").is_some_and(|g| g < generation);
        if stale {
            fs::remove_file(path.join(name))?;
            removed = true;
        }
    }
    if removed {
        sync_dir(path)?;
    }
    Ok(Recovered { dir, log, index })
}

fn generation_of(name: &str, prefix: &str) -> Option<u64> {
    name.strip_prefix(prefix)?.parse().ok()
}

// `File::try_lock` is stable since Rust 1.89 and the toolchain here is newer; the workspace's
// declared rust-version predates it, and the lock is only a guard against two processes
// opening one directory, so an older toolchain failing to build is the honest outcome.
#[allow(clippy::incompatible_msrv)]
fn lock(path: &Path) -> Result<File> {
    let file =
        OpenOptions::new().create(true).truncate(false).write(true).open(path.join(LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(Error::Unavailable(
            format!("{} is in use by another process", path.display()).into(),
        )),
        Err(fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

fn check_format(path: &Path, has_data: bool) -> Result<()> {
    let format_path = path.join(FORMAT_FILE);
    match fs::read_to_string(&format_path) {
        Ok(text) => {
            let version = text.trim_end().strip_prefix(FORMAT_PREFIX).and_then(|v| v.parse().ok());
            match version {
                Some(FORMAT_VERSION) => Ok(()),
                Some(found) => Err(Error::UnsupportedFormat {
                    path: format_path.display().to_string(),
                    found,
                    supported: FORMAT_VERSION,
                }),
                None => Err(corrupt(&format_path, "unrecognised format marker")),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && !has_data => {
            let tmp = path.join("FORMAT.tmp");
            let mut file = File::create(&tmp)?;
            file.write_all(format!("{FORMAT_PREFIX}{FORMAT_VERSION}\n").as_bytes())?;
            file.sync_all()?;
            fs::rename(&tmp, &format_path)?;
            sync_dir(path)?;
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(corrupt(&format_path, "missing, but the directory holds data"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Replays `log.<generation>` into `index`, cutting a torn tail; creates the log if absent.
fn recover_log(path: &Path, generation: u64, prealloc: u64, index: &mut Index) -> Result<LogFile> {
    let buf = match fs::read(path) {
        Ok(buf) => buf,
        Err(e) if e.kind() == io::ErrorKind::NotFound && generation == 0 => Vec::new(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(corrupt(path, "missing: writes after the last snapshot are lost"));
        }
        Err(e) => return Err(e.into()),
    };
    // A log is created and synced before any write goes to it; a crash during that leaves
    // a short or zero header and no acknowledged write.
    let unborn = buf.len() < log::HEADER_LEN || buf[..log::HEADER_LEN].iter().all(|b| *b == 0);
    if unborn {
        return Ok(LogFile::create(path, generation, prealloc)?);
    }
    let scan = log::scan(&buf, generation).map_err(|damage| corrupt(path, damage.0))?;
    for op in scan.ops {
        index.apply(op).map_err(|reason| corrupt(path, reason))?;
    }
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    if scan.dirty_end > scan.end {
        tracing::warn!(
            path = %path.display(),
            offset = scan.end,
            bytes = scan.dirty_end - scan.end,
            "discarding torn tail of the log"
        );
        file.write_all_at(&vec![0; scan.dirty_end - scan.end], scan.end as u64)?;
        file.sync_data()?;
    }
    Ok(LogFile {
        file,
        generation,
        pos: scan.end as u64,
        allocated: buf.len() as u64,
        preallocate: prealloc.max(1),
    })
}

impl LogFile {
    /// A new, synced, empty log with its space preallocated.
    fn create(path: &Path, generation: u64, preallocate: u64) -> io::Result<LogFile> {
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
        file.write_all_at(&log::header(generation), 0)?;
        let mut log = LogFile {
            file,
            generation,
            pos: log::HEADER_LEN as u64,
            allocated: log::HEADER_LEN as u64,
            preallocate: preallocate.max(1),
        };
        log.reserve(0)?;
        Ok(log)
    }

    /// Makes sure `len` more bytes fit in already allocated space. Writing real zeros (not a
    /// sparse `set_len`) means later `fdatasync`s only flush data, never block allocations or
    /// the file size, which is what keeps a sync cheap.
    fn reserve(&mut self, len: u64) -> Result<(), AppendError> {
        if self.pos + len <= self.allocated && self.allocated > self.pos {
            return Ok(());
        }
        let target = self.pos + len + self.preallocate;
        let zeros = vec![0u8; 1 << 20];
        while self.allocated < target {
            let n = (target - self.allocated).min(zeros.len() as u64);
            // Only zeros past the last frame: a failure here leaves the log as it was.
            self.file.write_all_at(&zeros[..n as usize], self.allocated).map_err(AppendError::reserving)?;
            self.allocated += n;
        }
        self.file.sync_all().map_err(AppendError::Io)
    }

    /// Writes one frame and makes it durable.
    pub fn append(&mut self, frame: &[u8]) -> Result<(), AppendError> {
        self.reserve(frame.len() as u64)?;
        self.file.write_all_at(frame, self.pos).map_err(AppendError::Io)?;
        self.file.sync_data().map_err(AppendError::Io)?;
        self.pos += frame.len() as u64;
        Ok(())
    }
}

/// Why [`LogFile::append`] failed.
#[derive(Debug)]
pub(crate) enum AppendError {
    /// The file system is full: nothing of the frame was written and the log is as before,
    /// so a later append succeeds once space returns.
    NoSpace(io::Error),
    /// A write or sync of the log failed: what the file holds is unknown.
    Io(io::Error),
}

impl AppendError {
    fn reserving(e: io::Error) -> AppendError {
        match e.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => AppendError::NoSpace(e),
            _ => AppendError::Io(e),
        }
    }
}

impl From<AppendError> for io::Error {
    fn from(e: AppendError) -> io::Error {
        match e {
            AppendError::NoSpace(e) | AppendError::Io(e) => e,
        }
    }
}

impl DataDir {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Switches `log` to a fresh, synced `log.<gen+1>` and returns its generation. Until a
    /// snapshot of that generation is committed, recovery replays the old log and this one.
    pub fn start_generation(&self, log: &mut LogFile) -> io::Result<u64> {
        let next = log.generation + 1;
        let path = self.path.join(format!("log.{next}"));
        let new_log = match LogFile::create(&path, next, log.preallocate) {
            Ok(new_log) => new_log,
            Err(e) => {
                // Writes go on in the current log; a later compaction tries again.
                let _ = fs::remove_file(&path);
                return Err(e);
            }
        };
        sync_dir(&self.path)?;
        *log = new_log;
        Ok(next)
    }
}

/// Writes the state as of revision `at` as snapshot `generation` of the store in `dir` and
/// deletes the files it supersedes. Runs beside the writer: it reads the index in chunks
/// under the read lock, which is consistent as long as no compaction runs meanwhile.
pub(crate) fn write_snapshot(
    dir: &Path,
    index: &RwLock<Index>,
    generation: u64,
    at: i64,
) -> io::Result<()> {
    let read = || index.read().unwrap_or_else(PoisonError::into_inner);
    let compacted = read().compacted();
    let tmp = dir.join(SNAP_TMP);
    let out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    let mut snapshot = SnapshotWriter::begin(out, generation, compacted, at)?;
    let mut after: Option<String> = None;
    loop {
        let (chunk, last) = read().chunk_at(after.as_deref(), at, 4096);
        for (key, versions) in &chunk {
            snapshot.key(key, versions)?;
        }
        match last {
            Some(last) => after = Some(last),
            None => break,
        }
    }
    snapshot.finish()?.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    fs::rename(&tmp, dir.join(format!("snap.{generation}")))?;
    sync_dir(dir)?;
    // Superseded files; whatever is left here is removed by the next open.
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        let old = generation_of(&name, "snap.").or_else(|| generation_of(&name, "log."));
        if old.is_some_and(|g| g < generation) {
            fs::remove_file(dir.join(&*name))?;
        }
    }
    Ok(())
}

/// Takes the directory lock of an existing data directory, so nothing opens it meanwhile;
/// [`Error::Unavailable`] if a running process holds it.
pub(crate) fn lock_existing(path: &Path) -> Result<File> {
    lock(path)
}

/// Creates a data directory at `path` (which must not exist) whose state is exactly
/// `entries` (in key order) as of revision `revision`, compacted at `revision`: a snapshot
/// of generation 1 plus an empty `log.1`, as a compaction would have left them.
pub(crate) fn create_restored(path: &Path, revision: i64, entries: &[crate::Entry]) -> Result<()> {
    fs::create_dir(path)?;
    check_format(path, false)?;
    let tmp = path.join(SNAP_TMP);
    let out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    let mut snapshot = SnapshotWriter::begin(out, 1, revision, revision)?;
    for e in entries {
        let version = super::index::Version {
            rev: e.mod_revision.0,
            create: e.create_revision.0,
            version: e.version,
            value: Some(e.value.clone()),
        };
        snapshot.key(&e.key, std::slice::from_ref(&version))?;
    }
    snapshot.finish()?.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    fs::rename(&tmp, path.join("snap.1"))?;
    LogFile::create(&path.join("log.1"), 1, 64 << 10)?;
    sync_dir(path)?;
    Ok(())
}

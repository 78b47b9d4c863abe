//! The write-ahead log: a header, then one CRC-framed batch per group commit.
//!
//! ```text
//! header  := "RKLOG\0\0\x01" generation:u64le                       (16 bytes)
//! frame   := FRAME_MAGIC:u32le len:u32le crc:u32le payload[len]
//!            crc = crc32(len bytes ++ payload)
//! payload := count:u32le record{count}
//! record  := op:u8 (1 put, 2 delete) revision:i64le key_len:u32le key
//!            [value_len:u32le value]                                (put only)
//! ```
//!
//! The file is preallocated with zeros ahead of the write position, so a zero word where a
//! frame magic should be marks the end of the data. The writer appends the frame of batch
//! N+1 only after batch N was synced, so a torn write can only ever damage the *last* frame:
//! recovery truncates at the first bad frame when nothing valid follows it, and reports
//! [`Error::Corrupt`](crate::Error::Corrupt) when a valid later frame proves the damage is in
//! the middle.

use bytes::Bytes;

use super::index::Op;

pub(crate) const LOG_MAGIC: &[u8; 8] = b"RKLOG\0\0\x01";
pub(crate) const HEADER_LEN: usize = 16;
const FRAME_MAGIC: u32 = 0x3142_4b52; // "RKB1" little-endian
const FRAME_HEADER: usize = 12;
const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;

/// The 16-byte log header for `generation`.
pub(crate) fn header(generation: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(LOG_MAGIC);
    h[8..].copy_from_slice(&generation.to_le_bytes());
    h
}

/// Appends the frame holding `ops` to `out`.
pub(crate) fn encode_frame(ops: &[Op], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&FRAME_MAGIC.to_le_bytes());
    out.extend_from_slice(&[0; 8]); // len and crc, filled below
    out.extend_from_slice(&(ops.len() as u32).to_le_bytes());
    for op in ops {
        out.push(if op.value.is_some() { OP_PUT } else { OP_DELETE });
        out.extend_from_slice(&op.rev.to_le_bytes());
        out.extend_from_slice(&(op.key.len() as u32).to_le_bytes());
        out.extend_from_slice(op.key.as_bytes());
        if let Some(value) = &op.value {
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
            out.extend_from_slice(value);
        }
    }
    let len = (out.len() - start - FRAME_HEADER) as u32;
    out[start + 4..start + 8].copy_from_slice(&len.to_le_bytes());
    let crc = frame_crc(&out[start + 4..start + 8], &out[start + FRAME_HEADER..]);
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}

fn frame_crc(len: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len);
    hasher.update(payload);
    hasher.finalize()
}

/// What recovery found in a log body.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// The writes of every intact frame, in order.
    pub ops: Vec<Op>,
    /// Offset just past the last intact frame: where the next frame goes.
    pub end: usize,
    /// Offset past the last non-zero byte; bytes in `end..dirty_end` are a torn tail.
    pub dirty_end: usize,
}

/// Why a log could not be recovered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Damage(pub String);

/// Reads every frame of a log file's bytes (header included).
pub(crate) fn scan(buf: &[u8], generation: u64) -> Result<Scan, Damage> {
    if buf.len() < HEADER_LEN || buf[..HEADER_LEN] != header(generation) {
        return Err(Damage(format!("bad log header (expected generation {generation})")));
    }
    let mut scan = Scan { end: HEADER_LEN, ..Default::default() };
    let mut last_rev = None;
    let mut at = HEADER_LEN;
    while let Some(frame) = read_frame(buf, at) {
        let ops = frame.map_err(|reason| Damage(format!("frame at offset {at}: {reason}")))?;
        if let (Some(last), Some(first)) = (last_rev, ops.first()) {
            if first.rev <= last {
                return Err(Damage(format!("frame at offset {at} goes back to {}", first.rev)));
            }
        }
        last_rev = ops.last().map(|op| op.rev).or(last_rev);
        at += FRAME_HEADER + u32_at(buf, at + 4) as usize;
        scan.ops.extend(ops);
    }
    scan.end = at;
    scan.dirty_end = buf.iter().rposition(|b| *b != 0).map_or(at, |p| (p + 1).max(at));
    if scan.dirty_end > at {
        // Something other than preallocated zeros follows: a torn last frame, or damage in
        // the middle if an intact frame with newer writes lies beyond it.
        for candidate in at + 1..scan.dirty_end {
            if let Some(Ok(ops)) = read_frame(buf, candidate) {
                let newer = ops.first().is_some_and(|op| last_rev.is_none_or(|l| op.rev > l));
                if newer {
                    return Err(Damage(format!(
                        "damaged frame at offset {at} is followed by an intact frame at {candidate}"
                    )));
                }
            }
        }
    }
    Ok(scan)
}

/// The frame at `at`: `None` at the end of the data (zeros, a short tail or no magic),
/// `Some(Err)` when a complete, checksummed frame does not decode.
fn read_frame(buf: &[u8], at: usize) -> Option<Result<Vec<Op>, String>> {
    let head = buf.get(at..at + FRAME_HEADER)?;
    if u32_at(head, 0) != FRAME_MAGIC {
        return None;
    }
    let len = u32_at(head, 4) as usize;
    let payload = buf.get(at + FRAME_HEADER..at + FRAME_HEADER + len)?;
    if frame_crc(&head[4..8], payload) != u32_at(head, 8) {
        return None;
    }
    Some(decode_payload(payload))
}

fn decode_payload(payload: &[u8]) -> Result<Vec<Op>, String> {
    let mut r = Reader { buf: payload, at: 0 };
    let count = r.u32()? as usize;
    let mut ops = Vec::with_capacity(count.min(payload.len()));
    for _ in 0..count {
        let kind = r.bytes(1)?[0];
        let rev = i64::from_le_bytes(r.array()?);
        let key_len = r.u32()? as usize;
        let key = std::str::from_utf8(r.bytes(key_len)?).map_err(|_| "key is not UTF-8")?;
        let value = match kind {
            OP_PUT => {
                let len = r.u32()? as usize;
                Some(Bytes::copy_from_slice(r.bytes(len)?))
            }
            OP_DELETE => None,
            other => return Err(format!("unknown record type {other}")),
        };
        if let Some(last) = ops.last().map(|op: &Op| op.rev) {
            if rev != last + 1 {
                return Err(format!("revision {rev} follows {last} in one frame"));
            }
        }
        ops.push(Op { rev, key: key.to_string(), value });
    }
    if r.at != payload.len() {
        return Err("trailing bytes in frame".into());
    }
    Ok(ops)
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(word)
}

/// A bounds-checked little-endian reader.
pub(crate) struct Reader<'a> {
    pub buf: &'a [u8],
    pub at: usize,
}

impl<'a> Reader<'a> {
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.buf.len());
        let end = end.ok_or_else(|| format!("record cut short at byte {}", self.at))?;
        let out = &self.buf[self.at..end];
        self.at = end;
        Ok(out)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(from: i64, n: i64) -> Vec<Op> {
        (from..from + n)
            .map(|rev| Op {
                rev,
                key: format!("/k/{rev}"),
                value: (rev % 3 != 0).then(|| Bytes::from(vec![rev as u8; 40])),
            })
            .collect()
    }

    /// A log of three frames followed by `zeros` bytes of preallocated space.
    fn log(zeros: usize) -> (Vec<u8>, Vec<usize>) {
        let mut buf = header(7).to_vec();
        let mut starts = vec![];
        for (from, n) in [(1, 3), (4, 2), (6, 4)] {
            starts.push(buf.len());
            encode_frame(&ops(from, n), &mut buf);
        }
        buf.resize(buf.len() + zeros, 0);
        (buf, starts)
    }

    #[test]
    fn round_trips_every_frame() {
        let (buf, _) = log(100);
        let scan = scan(&buf, 7).unwrap();
        assert_eq!(scan.ops, ops(1, 9));
        assert_eq!(scan.end, buf.len() - 100);
        assert_eq!(scan.dirty_end, scan.end);
    }

    #[test]
    fn wrong_generation_is_damage() {
        let (buf, _) = log(0);
        assert!(scan(&buf, 8).is_err());
    }

    #[test]
    fn torn_last_frame_is_cut_at_every_length() {
        let (full, starts) = log(0);
        for cut in starts[2] + 1..full.len() {
            let mut buf = full[..cut].to_vec();
            buf.resize(full.len() + 64, 0);
            let scan = scan(&buf, 7).unwrap();
            assert_eq!(scan.ops, ops(1, 5), "cut at {cut}");
            assert_eq!(scan.end, starts[2]);
            assert!(scan.dirty_end > scan.end && scan.dirty_end <= cut, "cut at {cut}");
        }
    }

    #[test]
    fn flipped_byte_in_last_frame_is_a_torn_tail() {
        let (mut buf, starts) = log(10);
        buf[starts[2] + 20] ^= 0xff;
        let scan = scan(&buf, 7).unwrap();
        assert_eq!(scan.ops.len(), 5);
        assert_eq!(scan.end, starts[2]);
    }

    #[test]
    fn garbage_after_the_data_is_a_torn_tail() {
        let (mut buf, _) = log(0);
        let end = buf.len();
        buf.extend((0..300u32).map(|i| (i * 7 + 1) as u8));
        let scan = scan(&buf, 7).unwrap();
        assert_eq!(scan.ops.len(), 9);
        assert_eq!(scan.end, end);
    }

    #[test]
    fn damage_before_an_intact_frame_is_corruption() {
        let (mut buf, starts) = log(10);
        buf[starts[1] + 15] ^= 0x01;
        assert!(scan(&buf, 7).unwrap_err().0.contains("followed by an intact frame"));
    }
}

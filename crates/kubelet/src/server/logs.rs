//! Container logs: the CRI log file format, upstream's `PodLogOptions` query parameters, and
//! reading a file once or following it until its container exits.
//!
//! containerd writes one entry per line: `<RFC3339Nano> <stdout|stderr> <F|P> <text>`, where
//! `P` marks a partial line the runtime split (the text continues in the next entry) and `F`
//! a full one. As upstream's kubelet (`pkg/kubelet/kuberuntime/logs`), partial entries are
//! joined into one logical line, `tailLines` counts logical lines, `sinceSeconds`/`sinceTime`
//! drop lines older than the bound, `limitBytes` caps the bytes written, and `timestamps`
//! prefixes each line with its timestamp and a space.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

/// How often a followed log file is polled for new entries.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// How often, while at the end of a followed file, the container's state is checked.
const FOLLOW_STATE_CHECK: Duration = Duration::from_millis(500);
/// Bytes read from the file at a time.
const READ_CHUNK: usize = 64 * 1024;

/// The query parameters of `/containerLogs/...` (upstream's `v1.PodLogOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    /// Only the last this many lines.
    pub tail_lines: Option<u64>,
    /// Stop after this many bytes.
    pub limit_bytes: Option<u64>,
    /// Only lines at or after this instant.
    pub since: Option<jiff::Timestamp>,
}

/// A query parameter that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid value {value:?} for query parameter {name}")]
pub struct InvalidParameter {
    pub name: &'static str,
    pub value: String,
}

/// Go's `strconv.ParseBool`, which the kubelet's query decoding uses.
pub fn parse_bool(name: &'static str, value: &str) -> Result<bool, InvalidParameter> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" | "" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(InvalidParameter { name, value: value.to_owned() }),
    }
}

impl LogOptions {
    /// Parses the query pairs; `now` anchors `sinceSeconds`. Negative counts mean "no
    /// limit" (kubectl's `--tail=-1`).
    pub fn from_query(pairs: &[(String, String)], now: jiff::Timestamp) -> Result<LogOptions, InvalidParameter> {
        let mut o = LogOptions::default();
        let int = |name: &'static str, v: &str| -> Result<i64, InvalidParameter> {
            v.parse::<i64>().map_err(|_| InvalidParameter { name, value: v.to_owned() })
        };
        for (k, v) in pairs {
            match k.as_str() {
                "follow" => o.follow = parse_bool("follow", v)?,
                "previous" => o.previous = parse_bool("previous", v)?,
                "timestamps" => o.timestamps = parse_bool("timestamps", v)?,
                "tailLines" => o.tail_lines = u64::try_from(int("tailLines", v)?).ok(),
                "limitBytes" => o.limit_bytes = u64::try_from(int("limitBytes", v)?).ok().filter(|b| *b > 0),
                "sinceSeconds" => {
                    let secs = int("sinceSeconds", v)?.max(0);
                    o.since = Some(now - jiff::SignedDuration::from_secs(secs));
                }
                "sinceTime" => {
                    let t = v
                        .parse::<jiff::Timestamp>()
                        .map_err(|_| InvalidParameter { name: "sinceTime", value: v.clone() })?;
                    o.since = Some(t);
                }
                _ => {}
            }
        }
        Ok(o)
    }
}

/// One entry of a CRI log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The timestamp as written (RFC 3339 with nanoseconds).
    pub timestamp: &'a str,
    pub stream: &'a str,
    /// `false` for a `P` (partial) entry.
    pub full: bool,
    pub text: &'a [u8],
}

/// Parses one line of a CRI log file (without its newline). `None` for a malformed line,
/// which upstream skips too.
pub fn parse_entry(line: &[u8]) -> Option<Entry<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let timestamp = std::str::from_utf8(parts.next()?).ok()?;
    let stream = std::str::from_utf8(parts.next()?).ok()?;
    if stream != "stdout" && stream != "stderr" {
        return None;
    }
    let full = match parts.next()? {
        b"F" => true,
        b"P" => false,
        _ => return None,
    };
    Some(Entry { timestamp, stream, full, text: parts.next().unwrap_or_default() })
}

/// Turns CRI entries into the bytes `kubectl logs` prints, applying the options except
/// `tailLines` (which needs the whole file first: see [`tail_start`]). Keeps the state of a
/// logical line across calls, so a followed file can be fed in pieces.
#[derive(Debug)]
pub struct Renderer {
    timestamps: bool,
    since: Option<jiff::Timestamp>,
    remaining: Option<u64>,
    /// Inside a logical line (the previous entry was partial): whether it is being written.
    in_line: Option<bool>,
}

impl Renderer {
    pub fn new(options: &LogOptions) -> Renderer {
        Renderer { timestamps: options.timestamps, since: options.since, remaining: options.limit_bytes, in_line: None }
    }

    /// Whether `limitBytes` has been reached: nothing more will be written.
    pub fn done(&self) -> bool {
        self.remaining == Some(0)
    }

    /// Appends what `entry` contributes to `out`.
    pub fn render(&mut self, entry: &Entry<'_>, out: &mut Vec<u8>) {
        let keep = match self.in_line {
            Some(keep) => keep,
            None => self.since.is_none_or(|since| entry.timestamp.parse::<jiff::Timestamp>().is_ok_and(|t| t >= since)),
        };
        if keep {
            let mut piece = Vec::with_capacity(entry.text.len() + 40);
            if self.timestamps && self.in_line.is_none() {
                piece.extend_from_slice(entry.timestamp.as_bytes());
                piece.push(b' ');
            }
            piece.extend_from_slice(entry.text);
            if entry.full {
                piece.push(b'\n');
            }
            self.write(&piece, out);
        }
        self.in_line = if entry.full { None } else { Some(keep) };
    }

    fn write(&mut self, piece: &[u8], out: &mut Vec<u8>) {
        match &mut self.remaining {
            None => out.extend_from_slice(piece),
            Some(left) => {
                let n = piece.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                out.extend_from_slice(&piece[..n]);
                *left -= n as u64;
            }
        }
    }
}

/// The byte offset in `content` (a whole CRI log file) where its last `lines` logical lines
/// start. A trailing incomplete line (no newline yet) is left out of the count.
pub fn tail_start(content: &[u8], lines: u64) -> usize {
    if lines == 0 {
        return content.len();
    }
    // Offsets where each logical line begins: after every newline that ends an F entry.
    let mut starts = vec![0usize];
    let mut offset = 0usize;
    for raw in content.split_inclusive(|b| *b == b'\n') {
        offset += raw.len();
        if raw.ends_with(b"\n") && parse_entry(&raw[..raw.len() - 1]).is_none_or(|e| e.full) {
            starts.push(offset);
        }
    }
    // `starts` ends with the offset after the last complete line: the last N lines begin
    // N entries before that.
    let complete = starts.len() - 1;
    let n = usize::try_from(lines).unwrap_or(usize::MAX).min(complete);
    starts[complete - n]
}

/// Renders every complete line of `buf` into `out`; returns how many bytes were consumed
/// (an incomplete last line stays for the next call).
pub fn render_lines(renderer: &mut Renderer, buf: &[u8], out: &mut Vec<u8>) -> usize {
    let mut consumed = 0;
    for raw in buf.split_inclusive(|b| *b == b'\n') {
        if !raw.ends_with(b"\n") || renderer.done() {
            break;
        }
        consumed += raw.len();
        if let Some(entry) = parse_entry(&raw[..raw.len() - 1]) {
            renderer.render(&entry, out);
        }
    }
    consumed
}

/// What the follower asks about the container whose log it reads.
pub trait ContainerState: Send + 'static {
    /// Whether the container may still write to its log.
    fn running(&mut self) -> futures::future::BoxFuture<'_, bool>;
}

/// Streams the log at `path` into `tx` per `options`; with `follow`, keeps reading until the
/// container stops running (as `state` reports) or the receiver goes away.
pub async fn stream(path: PathBuf, options: LogOptions, mut state: Option<Box<dyn ContainerState>>, tx: mpsc::Sender<Bytes>) -> std::io::Result<()> {
    let mut file = tokio::fs::File::open(&path).await?;
    let mut renderer = Renderer::new(&options);
    let mut position = 0u64;
    if let Some(lines) = options.tail_lines {
        let mut content = Vec::new();
        file.read_to_end(&mut content).await?;
        position = tail_start(&content, lines) as u64;
        file.seek(SeekFrom::Start(position)).await?;
    }
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut last_check = tokio::time::Instant::now();
    loop {
        let n = file.read(&mut chunk).await?;
        if n > 0 {
            position += n as u64;
            pending.extend_from_slice(&chunk[..n]);
            let mut out = Vec::new();
            let used = render_lines(&mut renderer, &pending, &mut out);
            pending.drain(..used);
            if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
                return Ok(());
            }
            if renderer.done() {
                return Ok(());
            }
            continue;
        }
        // At the end of the file.
        let Some(container) = state.as_mut().filter(|_| options.follow) else {
            return Ok(());
        };
        if last_check.elapsed() >= FOLLOW_STATE_CHECK {
            last_check = tokio::time::Instant::now();
            if !container.running().await {
                // The container has exited: drain what it wrote last, then stop.
                state = None;
                continue;
            }
        }
        // A log rotated away (shorter file at the path) is reopened from its start.
        if tokio::fs::metadata(&path).await.is_ok_and(|m| m.len() < position) {
            file = tokio::fs::File::open(&path).await?;
            position = 0;
            pending.clear();
        }
        tokio::select! {
            _ = tx.closed() => return Ok(()),
            _ = tokio::time::sleep(FOLLOW_POLL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &[u8] = b"2026-11-25T04:20:37.1Z stdout F one\n\
2026-11-25T04:20:38.2Z stderr F two\n\
2026-11-25T04:20:39.3Z stdout P thr\n\
2026-11-25T04:20:39.4Z stdout F ee\n\
2026-11-25T04:20:40.5Z stdout F four\n";

    fn render(options: &LogOptions, content: &[u8]) -> String {
        let start = options.tail_lines.map(|n| tail_start(content, n)).unwrap_or(0);
        let mut out = Vec::new();
        render_lines(&mut Renderer::new(options), &content[start..], &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn entries_parse_and_malformed_lines_are_skipped() {
        let e = parse_entry(b"2026-11-25T04:20:37.93637131Z stdout F hi there").unwrap();
        assert_eq!((e.timestamp, e.stream, e.full, e.text), ("2026-11-25T04:20:37.93637131Z", "stdout", true, &b"hi there"[..]));
        assert_eq!(parse_entry(b"2026-11-25T04:20:37Z stderr P ").unwrap().text, b"");
        assert!(parse_entry(b"garbage").is_none());
        assert!(parse_entry(b"2026-11-25T04:20:37Z stdin F x").is_none());
        assert!(parse_entry(b"2026-11-25T04:20:37Z stdout X x").is_none());
        assert_eq!(render(&LogOptions::default(), b"junk\n2026-11-25T04:20:37Z stdout F ok\n"), "ok\n");
    }

    #[test]
    fn partial_entries_join_into_one_line() {
        assert_eq!(render(&LogOptions::default(), LOG), "one\ntwo\nthree\nfour\n");
    }

    #[test]
    fn tail_counts_logical_lines() {
        let tail = |n| render(&LogOptions { tail_lines: Some(n), ..Default::default() }, LOG);
        assert_eq!(tail(1), "four\n");
        assert_eq!(tail(2), "three\nfour\n");
        assert_eq!(tail(3), "two\nthree\nfour\n");
        assert_eq!(tail(10), "one\ntwo\nthree\nfour\n");
        assert_eq!(tail(0), "");
        // an entry still being written is not a line yet
        let mut growing = LOG.to_vec();
        growing.extend_from_slice(b"2026-11-25T04:20:41Z stdout F fi");
        assert_eq!(render(&LogOptions { tail_lines: Some(1), ..Default::default() }, &growing), "four\n");
    }

    #[test]
    fn timestamps_prefix_each_line_once() {
        let out = render(&LogOptions { timestamps: true, tail_lines: Some(2), ..Default::default() }, LOG);
        assert_eq!(out, "2026-11-25T04:20:39.3Z three\n2026-11-25T04:20:40.5Z four\n");
    }

    #[test]
    fn since_drops_older_lines_and_limit_bytes_truncates() {
        let since = "2026-11-25T04:20:39Z".parse().unwrap();
        assert_eq!(render(&LogOptions { since: Some(since), ..Default::default() }, LOG), "three\nfour\n");
        assert_eq!(render(&LogOptions { limit_bytes: Some(6), ..Default::default() }, LOG), "one\ntw");
    }

    #[test]
    fn query_parameters_parse_as_upstream() {
        let now: jiff::Timestamp = "2026-11-25T04:21:00Z".parse().unwrap();
        let q = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
            LogOptions::from_query(&pairs, now)
        };
        let o = q(&[("follow", "true"), ("tailLines", "5"), ("limitBytes", "100"), ("sinceSeconds", "60"), ("timestamps", "1")]).unwrap();
        assert!(o.follow && o.timestamps && !o.previous);
        assert_eq!((o.tail_lines, o.limit_bytes), (Some(5), Some(100)));
        assert_eq!(o.since, Some("2026-11-25T04:20:00Z".parse().unwrap()));
        assert_eq!(q(&[("tailLines", "-1")]).unwrap().tail_lines, None);
        assert!(q(&[("tailLines", "x")]).is_err());
        assert!(q(&[("previous", "maybe")]).is_err());
        assert!(q(&[("sinceTime", "2026-11-25T04:20:00Z")]).unwrap().since.is_some());
    }

    struct StopsAfter(usize);
    impl ContainerState for StopsAfter {
        fn running(&mut self) -> futures::future::BoxFuture<'_, bool> {
            Box::pin(async move {
                self.0 = self.0.saturating_sub(1);
                self.0 > 0
            })
        }
    }

    #[tokio::test]
    async fn follow_streams_appended_lines_and_stops_when_the_container_exits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, b"2026-11-25T04:20:37Z stdout F first\n").unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let options = LogOptions { follow: true, ..Default::default() };
        let task = tokio::spawn(stream(path.clone(), options, Some(Box::new(StopsAfter(3))), tx));
        assert_eq!(rx.recv().await.unwrap(), "first\n");
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut f, b"2026-11-25T04:20:38Z stdout P sec\n2026-11-25T04:20:38Z stdout F ond\n").unwrap();
        assert_eq!(rx.recv().await.unwrap(), "second\n");
        // the container stops running: the stream ends
        assert!(rx.recv().await.is_none());
        task.await.unwrap().unwrap();
    }
}

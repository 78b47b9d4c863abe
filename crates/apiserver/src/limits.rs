//! Protecting the server from overload and from requests that never end, as kube-apiserver's
//! generic filters do:
//!
//! - **max in-flight** (`--max-requests-inflight` 400 read-only, `--max-mutating-requests-inflight`
//!   200 mutating): a request over the limit gets 429 `TooManyRequests` with `Retry-After: 1`
//!   while the accepted ones complete; watches (long-running) are not counted;
//! - **request timeout**: a non-watch request gets at most 60 s, or less when its `timeout`
//!   query parameter (a Go duration, `30s`, `1m30s`) asks; past it, 504 `Timeout`;
//! - **watch duration**: `timeoutSeconds` when given (negative: 400), otherwise a random
//!   duration in [min-request-timeout, 2 × min-request-timeout) (1800 s by default) so that
//!   watches of many clients do not all end together.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, Response};
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::status::{ApiError, Result};

/// Upstream's `--request-timeout` default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Limits the API server enforces.
#[derive(Debug, Clone)]
pub struct Config {
    /// Concurrent non-mutating requests (GET, LIST; watches excluded). Upstream: 400.
    pub max_requests_inflight: usize,
    /// Concurrent mutating requests (POST, PUT, PATCH, DELETE). Upstream: 200.
    pub max_mutating_requests_inflight: usize,
    /// Lower bound of a watch without `timeoutSeconds`; the watch lasts a random time in
    /// [this, 2 × this). Upstream's `--min-request-timeout`: 1800 s.
    pub min_request_timeout: Duration,
    /// The most a non-watch request may take. Upstream's `--request-timeout`: 60 s.
    pub request_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_requests_inflight: 400,
            max_mutating_requests_inflight: 200,
            min_request_timeout: Duration::from_secs(1800),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// The in-flight counters.
pub struct Limits {
    pub config: Config,
    read_only: Arc<Semaphore>,
    mutating: Arc<Semaphore>,
}

impl Limits {
    pub fn new(config: Config) -> Self {
        Limits {
            read_only: Arc::new(Semaphore::new(config.max_requests_inflight.max(1))),
            mutating: Arc::new(Semaphore::new(config.max_mutating_requests_inflight.max(1))),
            config,
        }
    }

    /// A permit for one request, held until its answer is ready; `None` for requests that
    /// are not counted (watches). `Err`: answer [`too_many_requests`].
    pub fn admit(&self, method: &Method, long_running: bool) -> Result<Option<OwnedSemaphorePermit>, Overloaded> {
        if long_running {
            return Ok(None);
        }
        let pool = if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            &self.read_only
        } else {
            &self.mutating
        };
        pool.clone().try_acquire_owned().map(Some).map_err(|_| Overloaded)
    }
}

/// The request is over the in-flight limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded;

/// The 429 upstream's max-in-flight filter answers.
pub fn too_many_requests() -> Response<axum::body::Body> {
    let mut e = ApiError::new(
        http::StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        "Too many requests, please try again later.",
    );
    e.details = Some(Box::new(json!({"retryAfterSeconds": 1})));
    let mut r = crate::handlers::error_response(&e);
    r.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// The 504 of a request that ran past its deadline.
pub fn timed_out() -> ApiError {
    let mut e = ApiError::timeout("Timeout: request did not complete within the allotted timeout");
    e.details = Some(Box::new(json!({})));
    e
}

/// The deadline of a non-watch request: its `timeout` parameter, at most `max`.
pub fn request_timeout(param: Option<&str>, max: Duration) -> Result<Duration> {
    match param.filter(|p| !p.is_empty()) {
        None => Ok(max),
        Some(p) => {
            let d = parse_go_duration(p)
                .ok_or_else(|| ApiError::bad_request(format!("invalid timeout specified in the request URL: {p:?}")))?;
            Ok(d.min(max))
        }
    }
}

/// How long a watch lasts: `timeoutSeconds` (0 or absent: random in [min, 2 × min)).
/// `jitter` is a number in [0, 1) from the caller's randomness.
pub fn watch_timeout(param: Option<&str>, min: Duration, jitter: f64) -> Result<Duration> {
    let given = match param.filter(|p| !p.is_empty()) {
        None => 0,
        Some(p) => p
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds {p:?}: must be an integer")))?,
    };
    if given < 0 {
        return Err(ApiError::bad_request(format!("invalid timeoutSeconds {given}: must not be negative")));
    }
    if given > 0 {
        return Ok(Duration::from_secs(given as u64));
    }
    Ok(min.mul_f64(1.0 + jitter.clamp(0.0, 0.999_999)))
}

/// Parses a Go `time.Duration` string: `300ms`, `1.5h`, `2h45m`, `10s` (no sign, at most
/// a day, which is far beyond any deadline the server honours).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if num_end == 0 {
            return None;
        }
        let value: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += value * scale;
    }
    (total.is_finite() && total <= 86_400.0).then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        for bad in ["", "s", "10", "-1s", "1x", "1e9h", "9999999h", "1..5s"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn request_timeouts_are_capped() {
        let max = Duration::from_secs(60);
        assert_eq!(request_timeout(None, max).unwrap(), max);
        assert_eq!(request_timeout(Some("5s"), max).unwrap(), Duration::from_secs(5));
        assert_eq!(request_timeout(Some("5h"), max).unwrap(), max);
        assert_eq!(request_timeout(Some("soon"), max).unwrap_err().code, http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn watch_timeouts_have_jitter_and_reject_negatives() {
        let min = Duration::from_secs(1800);
        assert_eq!(watch_timeout(None, min, 0.0).unwrap(), min);
        let long = watch_timeout(None, min, 0.5).unwrap();
        assert_eq!(long, Duration::from_secs(2700));
        assert!(watch_timeout(Some("0"), min, 0.99).unwrap() < min * 2);
        assert_eq!(watch_timeout(Some("7"), min, 0.5).unwrap(), Duration::from_secs(7));
        assert_eq!(watch_timeout(Some("-1"), min, 0.0).unwrap_err().code, http::StatusCode::BAD_REQUEST);
        assert!(watch_timeout(Some("x"), min, 0.0).is_err());
    }

    #[test]
    fn in_flight_limits_count_reads_and_writes_apart_and_not_watches() {
        let limits = Limits::new(Config { max_requests_inflight: 1, max_mutating_requests_inflight: 1, ..Config::default() });
        let read = limits.admit(&Method::GET, false).unwrap();
        assert!(read.is_some());
        assert_eq!(limits.admit(&Method::GET, false).unwrap_err(), Overloaded);
        let refused = too_many_requests();
        assert_eq!(refused.status(), http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.headers()[http::header::RETRY_AFTER], "1");
        assert!(limits.admit(&Method::GET, true).unwrap().is_none(), "watches are not counted");
        let write = limits.admit(&Method::POST, false).unwrap();
        assert!(write.is_some());
        assert!(limits.admit(&Method::DELETE, false).is_err());
        drop(read);
        assert!(limits.admit(&Method::GET, false).is_ok(), "a finished request frees its slot");
    }
}

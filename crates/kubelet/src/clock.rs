//! The wall clock, in one place (STYLE.md: no wall-clock reads elsewhere).

/// Now, as a timestamp.
pub fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

/// Now in nanoseconds since the epoch (the unit of CRI timestamps).
pub fn now_nanos() -> i64 {
    now().as_nanosecond() as i64
}

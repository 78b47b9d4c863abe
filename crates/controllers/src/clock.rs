//! The wall clock, in one place: object timestamps (conditions, readiness, deadlines) are
//! wall-clock times by definition.

pub fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

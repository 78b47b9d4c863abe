//! Table printing as kube-apiserver does it (being written).
//!
//! Contract:
//! - `columns(info: &ResourceInfo) -> Vec<Column>` (name, type, format, description, priority;
//!   priority 1 columns are the `-o wide` ones)
//! - `cells(info: &ResourceInfo, obj: &serde_json::Value, now: jiff::Timestamp) -> Vec<serde_json::Value>`
//! Resources without a printer get upstream's default: NAME, CREATED AT (or AGE).

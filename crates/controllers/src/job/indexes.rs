//! Completion index sets of Indexed Jobs, written as upstream writes `status.completedIndexes`
//! (`"0-2,4,6,7"`: ascending, every run of three or more consecutive indexes as `a-b`, as
//! upstream's `orderedIntervals.String`).

use std::collections::BTreeSet;
use std::fmt;

use k8s_openapi::api::batch::v1::SuccessPolicy;

/// A set of completion indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Indexes(BTreeSet<i32>);

impl Indexes {
    /// Parses `"1,3-5"`, keeping only indexes below `completions` (upstream
    /// `parseIndexesFromString`); malformed parts are skipped, as upstream logs and skips them.
    pub fn parse(s: &str, completions: i32) -> Indexes {
        let mut set = BTreeSet::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => match (a.parse::<i32>(), b.parse::<i32>()) {
                    (Ok(a), Ok(b)) => (a, b),
                    _ => continue,
                },
                None => match part.parse::<i32>() {
                    Ok(v) => (v, v),
                    Err(_) => continue,
                },
            };
            for i in lo.max(0)..=hi.min(completions - 1) {
                set.insert(i);
            }
        }
        Indexes(set)
    }

    pub fn insert(&mut self, index: i32) {
        self.0.insert(index);
    }

    pub fn contains(&self, index: i32) -> bool {
        self.0.contains(&index)
    }

    pub fn total(&self) -> usize {
        self.0.len()
    }

    /// The first `count` indexes below `completions` in neither `self` nor `busy`
    /// (upstream `firstPendingIndexes`).
    pub fn first_pending(&self, busy: &BTreeSet<i32>, count: usize, completions: i32) -> Vec<i32> {
        (0..completions).filter(|i| !self.contains(*i) && !busy.contains(i)).take(count).collect()
    }
}

/// Upstream `matchSuccessPolicy`: the message of the first rule the succeeded indexes meet
/// (`succeededIndexes`: all of them, or `succeededCount` of them; `succeededCount` alone:
/// that many indexes).
pub fn match_success_policy(policy: Option<&SuccessPolicy>, completions: i32, succeeded: &Indexes) -> Option<String> {
    let policy = policy?;
    if succeeded.total() == 0 {
        return None;
    }
    policy.rules.iter().enumerate().find_map(|(index, rule)| {
        let met = match (&rule.succeeded_indexes, rule.succeeded_count) {
            (Some(text), count) => {
                let required = Indexes::parse(text, completions);
                let done = required.0.iter().filter(|i| succeeded.contains(**i)).count();
                required.total() > 0 && done >= count.map_or(required.total(), |c| c.max(0) as usize)
            }
            (None, Some(count)) => succeeded.total() >= count.max(0) as usize,
            (None, None) => false,
        };
        met.then(|| format!("Matched rules at index {index}"))
    })
}

impl fmt::Display for Indexes {
    /// Ascending, runs of consecutive indexes as `first-last`, comma-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut runs: Vec<(i32, i32)> = Vec::new();
        for &i in &self.0 {
            match runs.last_mut() {
                Some((_, last)) if *last + 1 == i => *last = i,
                _ => runs.push((i, i)),
            }
        }
        let parts: Vec<String> = runs
            .iter()
            .map(|(a, b)| match b - a {
                0 => a.to_string(),
                1 => format!("{a},{b}"),
                _ => format!("{a}-{b}"),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_sets_round_trip_in_upstream_notation() {
        let cases = [("", ""), ("0", "0"), ("0-2,4", "0-2,4"), ("4,0,1,2", "0-2,4"), ("1,2", "1,2"), ("1-2", "1,2"), ("0-3,5-6,9", "0-3,5,6,9")];
        for (input, want) in cases {
            assert_eq!(Indexes::parse(input, 10).to_string(), want, "{input}");
        }
        assert_eq!(Indexes::parse("2-12,x,7-", 5).to_string(), "2-4", "clipped to completions, junk skipped");
        assert_eq!(Indexes::parse("0-2,4", 10).total(), 4);
    }

    #[test]
    fn success_policies_match_required_indexes_or_counts() {
        use k8s_openapi::api::batch::v1::SuccessPolicyRule;
        let rule = |ix: Option<&str>, count: Option<i32>| SuccessPolicyRule { succeeded_indexes: ix.map(Into::into), succeeded_count: count };
        let policy = SuccessPolicy { rules: vec![rule(Some("0"), None), rule(Some("2-5"), Some(2)), rule(None, Some(3))] };
        let done = |s: &str| Indexes::parse(s, 10);
        assert_eq!(match_success_policy(Some(&policy), 10, &done("0")), Some("Matched rules at index 0".into()));
        assert_eq!(match_success_policy(Some(&policy), 10, &done("3,5")), Some("Matched rules at index 1".into()));
        assert_eq!(match_success_policy(Some(&policy), 10, &done("1,3,8")), Some("Matched rules at index 2".into()));
        assert_eq!(match_success_policy(Some(&policy), 10, &done("1,3")), None);
        assert_eq!(match_success_policy(None, 10, &done("0-9")), None);
    }

    #[test]
    fn pending_indexes_skip_succeeded_and_running_ones() {
        let done = Indexes::parse("0,2", 6);
        let busy: BTreeSet<i32> = [1, 4].into();
        assert_eq!(done.first_pending(&busy, 5, 6), vec![3, 5]);
        assert_eq!(done.first_pending(&busy, 1, 6), vec![3]);
        assert!(Indexes::parse("0-5", 6).first_pending(&BTreeSet::new(), 3, 6).is_empty());
    }
}

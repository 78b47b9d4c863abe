//! Scheduler settings and the KubeSchedulerConfiguration file (`--config`,
//! `kubescheduler.config.k8s.io/v1`): profiles, enabled/disabled plugins per extension
//! point, score weights, NodeResourcesFit's scoring strategy, backoff and leader election.
//! Unknown fields are rejected as upstream's strict decoding does; every error names the
//! field (`profiles[0].plugins.score.enabled[1].name: unknown plugin "Foo"`).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::framework::{FilterPlugin, PreFilterPlugin, PreScorePlugin, WeightedScore};
use crate::plugins::{self, node_resources_fit, Instances, PluginArgs, Point, KNOWN};

/// The default profile's name.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// A configuration that could not be loaded; the message names the file and field.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read scheduler config {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid scheduler config {path}: {field}: {message}")]
    Invalid { path: String, field: String, message: String },
}

pub use rkube_api::leader::LeaderElection;

/// One scheduling profile, selected by `spec.schedulerName`.
#[derive(Clone)]
pub struct Profile {
    pub scheduler_name: String,
    pub pre_filter: Vec<Arc<dyn PreFilterPlugin>>,
    pub filter: Vec<Arc<dyn FilterPlugin>>,
    pub pre_score: Vec<Arc<dyn PreScorePlugin>>,
    pub score: Vec<WeightedScore>,
    /// DefaultPreemption enabled at PostFilter.
    pub preemption: bool,
    /// SchedulingGates enabled at PreEnqueue.
    pub scheduling_gates: bool,
    /// Per-profile override of the global percentage.
    pub percentage_of_nodes_to_score: Option<u32>,
}

/// Scheduler settings.
#[derive(Clone)]
pub struct Config {
    pub profiles: Vec<Profile>,
    /// 0 = upstream's adaptive percentage.
    pub percentage_of_nodes_to_score: u32,
    pub pod_initial_backoff: Duration,
    pub pod_max_backoff: Duration,
    /// Unschedulable pods are retried at least this often (upstream 5 min).
    pub pod_max_in_unschedulable: Duration,
    pub leader_election: LeaderElection,
    /// Binding requests in flight at once.
    pub bind_concurrency: usize,
    /// Identity written into the lease and events (`<hostname>_<uuid>` upstream).
    pub identity: String,
}

impl Default for Config {
    /// Upstream defaults: one `default-scheduler` profile with the default plugins and weights.
    fn default() -> Self {
        Config {
            profiles: vec![build_profile(&FileProfile::default(), "profiles[0]", "").expect("the default profile is valid")],
            percentage_of_nodes_to_score: 0,
            pod_initial_backoff: Duration::from_secs(1),
            pod_max_backoff: Duration::from_secs(10),
            pod_max_in_unschedulable: Duration::from_secs(300),
            leader_election: LeaderElection::default(),
            bind_concurrency: 64,
            identity: format!("rkube-scheduler_{}", uuid::Uuid::new_v4()),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileConfig {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    profiles: Vec<FileProfile>,
    percentage_of_nodes_to_score: Option<i64>,
    pod_initial_backoff_seconds: Option<i64>,
    pod_max_backoff_seconds: Option<i64>,
    leader_election: Option<FileLeaderElection>,
    parallelism: Option<i64>,
    #[allow(dead_code)] // accepted for compatibility, unused
    client_connection: Option<serde_json::Value>,
    #[allow(dead_code)] // accepted for compatibility, unused
    enable_profiling: Option<bool>,
    #[allow(dead_code)] // accepted for compatibility, unused
    enable_contention_profiling: Option<bool>,
    #[allow(dead_code)] // accepted for compatibility, unused
    extenders: Option<Vec<serde_json::Value>>,
    #[allow(dead_code)] // accepted for compatibility, unused
    delay_cache_until_active: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileLeaderElection {
    leader_elect: Option<bool>,
    lease_duration: Option<String>,
    renew_deadline: Option<String>,
    retry_period: Option<String>,
    resource_lock: Option<String>,
    resource_name: Option<String>,
    resource_namespace: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileProfile {
    scheduler_name: Option<String>,
    percentage_of_nodes_to_score: Option<i64>,
    plugins: Option<FilePlugins>,
    #[serde(default)]
    plugin_config: Vec<FilePluginConfig>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FilePlugins {
    multi_point: Option<FilePluginSet>,
    pre_enqueue: Option<FilePluginSet>,
    queue_sort: Option<FilePluginSet>,
    pre_filter: Option<FilePluginSet>,
    filter: Option<FilePluginSet>,
    post_filter: Option<FilePluginSet>,
    pre_score: Option<FilePluginSet>,
    score: Option<FilePluginSet>,
    reserve: Option<FilePluginSet>,
    permit: Option<FilePluginSet>,
    pre_bind: Option<FilePluginSet>,
    bind: Option<FilePluginSet>,
    post_bind: Option<FilePluginSet>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FilePluginSet {
    #[serde(default)]
    enabled: Vec<FilePlugin>,
    #[serde(default)]
    disabled: Vec<FilePlugin>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FilePlugin {
    name: String,
    weight: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FilePluginConfig {
    name: String,
    #[serde(default)]
    args: serde_json::Value,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct FitArgs {
    scoring_strategy: Option<FitStrategy>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct FitStrategy {
    #[serde(rename = "type")]
    type_: Option<String>,
    resources: Option<Vec<FitResource>>,
}

#[derive(Deserialize)]
struct FitResource {
    name: String,
    weight: Option<i64>,
}

fn invalid(path: &str, field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Invalid { path: path.to_owned(), field: field.into(), message: message.into() }
}

/// Parses a Go duration such as `15s`, `1m30s`, `500ms`.
fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..end].parse().ok()?;
        rest = &rest[end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let secs = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += Duration::from_secs_f64(n * secs);
        rest = &rest[unit_end..];
    }
    Some(total)
}

impl Config {
    /// Loads a KubeSchedulerConfiguration file over the defaults.
    pub fn from_file(path: &Path) -> Result<Config, Error> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: p.clone(), source })?;
        Config::from_yaml(&text, &p)
    }

    /// Parses and validates a KubeSchedulerConfiguration document; `path` is for messages.
    pub fn from_yaml(text: &str, path: &str) -> Result<Config, Error> {
        let value: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| invalid(path, "(document)", first_line(&e.to_string())))?;
        let value = if value.is_null() { serde_json::json!({}) } else { value };
        let file: FileConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            let field = e.path().to_string();
            invalid(path, if field == "." { "(document)".into() } else { field }, first_line(&e.inner().to_string()))
        })?;
        let mut config = Config::default();
        if let Some(v) = &file.api_version {
            if v != "kubescheduler.config.k8s.io/v1" {
                return Err(invalid(path, "apiVersion", format!("unsupported version {v:?}; expected \"kubescheduler.config.k8s.io/v1\"")));
            }
        }
        if let Some(k) = &file.kind {
            if k != "KubeSchedulerConfiguration" {
                return Err(invalid(path, "kind", format!("unsupported kind {k:?}; expected \"KubeSchedulerConfiguration\"")));
            }
        }
        if let Some(p) = file.percentage_of_nodes_to_score {
            if !(0..=100).contains(&p) {
                return Err(invalid(path, "percentageOfNodesToScore", format!("Invalid value: {p}: not in valid range [0-100]")));
            }
            config.percentage_of_nodes_to_score = p as u32;
        }
        if let Some(s) = file.pod_initial_backoff_seconds {
            if s <= 0 {
                return Err(invalid(path, "podInitialBackoffSeconds", format!("Invalid value: {s}: must be greater than 0")));
            }
            config.pod_initial_backoff = Duration::from_secs(s as u64);
        }
        if let Some(s) = file.pod_max_backoff_seconds {
            if s < config.pod_initial_backoff.as_secs() as i64 {
                return Err(invalid(path, "podMaxBackoffSeconds", format!("Invalid value: {s}: must be greater than or equal to PodInitialBackoffSeconds")));
            }
            config.pod_max_backoff = Duration::from_secs(s as u64);
        }
        if let Some(p) = file.parallelism {
            if p <= 0 {
                return Err(invalid(path, "parallelism", format!("Invalid value: {p}: should be an integer value greater than zero")));
            }
        }
        if let Some(le) = &file.leader_election {
            apply_leader_election(&mut config.leader_election, le, path)?;
        }
        if !file.profiles.is_empty() {
            let mut names = HashSet::new();
            config.profiles = Vec::new();
            for (i, fp) in file.profiles.iter().enumerate() {
                let field = format!("profiles[{i}]");
                let profile = build_profile(fp, &field, path)?;
                if !names.insert(profile.scheduler_name.clone()) {
                    return Err(invalid(path, format!("{field}.schedulerName"), format!("Duplicate value: {:?}", profile.scheduler_name)));
                }
                config.profiles.push(profile);
            }
        }
        Ok(config)
    }

    /// The profile for a pod's `spec.schedulerName` (empty = default-scheduler).
    pub fn profile(&self, scheduler_name: &str) -> Option<&Profile> {
        let name = if scheduler_name.is_empty() { DEFAULT_SCHEDULER_NAME } else { scheduler_name };
        self.profiles.iter().find(|p| p.scheduler_name == name)
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_owned()
}

fn apply_leader_election(le: &mut LeaderElection, f: &FileLeaderElection, path: &str) -> Result<(), Error> {
    if let Some(v) = f.leader_elect {
        le.enabled = v;
    }
    for (field, value, slot) in [
        ("leaderElection.leaseDuration", &f.lease_duration, &mut le.lease_duration),
        ("leaderElection.renewDeadline", &f.renew_deadline, &mut le.renew_deadline),
        ("leaderElection.retryPeriod", &f.retry_period, &mut le.retry_period),
    ] {
        if let Some(v) = value {
            *slot = parse_duration(v).filter(|d| !d.is_zero()).ok_or_else(|| invalid(path, field, format!("Invalid value: {v:?}: must be a positive duration such as \"15s\"")))?;
        }
    }
    if le.enabled && le.renew_deadline >= le.lease_duration {
        return Err(invalid(path, "leaderElection.leaseDuration", "Invalid value: must be greater than renewDeadline"));
    }
    if let Some(lock) = &f.resource_lock {
        if lock != "leases" {
            return Err(invalid(path, "leaderElection.resourceLock", format!("Unsupported value: {lock:?}: supported values: \"leases\"")));
        }
    }
    if let Some(n) = &f.resource_name {
        le.name = n.clone();
    }
    if let Some(n) = &f.resource_namespace {
        le.namespace = n.clone();
    }
    Ok(())
}

/// The enabled plugins (name, weight) of one extension point after applying `set`.
fn apply_set(mut list: Vec<(String, i64)>, set: Option<&FilePluginSet>, point: Point, field: &str, path: &str) -> Result<Vec<(String, i64)>, Error> {
    let Some(set) = set else { return Ok(list) };
    for (i, d) in set.disabled.iter().enumerate() {
        if d.name == "*" {
            list.clear();
        } else if !KNOWN.iter().any(|(n, ..)| *n == d.name) {
            return Err(invalid(path, format!("{field}.disabled[{i}].name"), format!("unknown plugin {:?}", d.name)));
        } else {
            list.retain(|(n, _)| *n != d.name);
        }
    }
    for (i, e) in set.enabled.iter().enumerate() {
        let Some((_, points, default_weight)) = KNOWN.iter().find(|(n, ..)| *n == e.name) else {
            return Err(invalid(path, format!("{field}.enabled[{i}].name"), format!("unknown plugin {:?}", e.name)));
        };
        if !points.contains(&point) {
            return Err(invalid(path, format!("{field}.enabled[{i}].name"), format!("plugin {:?} does not extend {point:?}", e.name)));
        }
        if let Some(w) = e.weight {
            if !(1..=100).contains(&w) {
                return Err(invalid(path, format!("{field}.enabled[{i}].weight"), format!("Invalid value: {w}: must be in the range [1, 100]")));
            }
        }
        let weight = e.weight.unwrap_or((*default_weight).max(1));
        list.retain(|(n, _)| *n != e.name);
        list.push((e.name.clone(), weight));
    }
    Ok(list)
}

fn defaults_for(point: Point) -> Vec<(String, i64)> {
    KNOWN.iter().filter(|(_, pts, _)| pts.contains(&point)).map(|(n, _, w)| (n.to_string(), *w)).collect()
}

fn build_profile(fp: &FileProfile, field: &str, path: &str) -> Result<Profile, Error> {
    let name = fp.scheduler_name.clone().unwrap_or_else(|| DEFAULT_SCHEDULER_NAME.into());
    if name.is_empty() {
        return Err(invalid(path, format!("{field}.schedulerName"), "Required value"));
    }
    let mut args = PluginArgs::default();
    for (i, pc) in fp.plugin_config.iter().enumerate() {
        let pfield = format!("{field}.pluginConfig[{i}]");
        if !KNOWN.iter().any(|(n, ..)| *n == pc.name) {
            return Err(invalid(path, format!("{pfield}.name"), format!("unknown plugin {:?}", pc.name)));
        }
        if pc.name == node_resources_fit::NAME {
            args.fit = fit_args(&pc.args, &format!("{pfield}.args"), path)?;
        }
    }
    let plugins = fp.plugins.as_ref();
    let multi = plugins.and_then(|p| p.multi_point.as_ref());
    let point_list = |point: Point, set: Option<&FilePluginSet>, sub: &str| -> Result<Vec<(String, i64)>, Error> {
        // multiPoint first (applies to every point the plugin implements), then the point's own set.
        let mut list = defaults_for(point);
        if let Some(m) = multi {
            let filtered = FilePluginSet {
                enabled: m.enabled.iter().filter(|e| KNOWN.iter().any(|(n, pts, _)| *n == e.name && pts.contains(&point))).cloned().collect(),
                disabled: m.disabled.clone(),
            };
            for (i, e) in m.enabled.iter().enumerate() {
                if !KNOWN.iter().any(|(n, ..)| *n == e.name) {
                    return Err(invalid(path, format!("{field}.plugins.multiPoint.enabled[{i}].name"), format!("unknown plugin {:?}", e.name)));
                }
            }
            list = apply_set(list, Some(&filtered), point, &format!("{field}.plugins.multiPoint"), path)?;
        }
        apply_set(list, set, point, &format!("{field}.plugins.{sub}"), path)
    };
    let p = |f: fn(&FilePlugins) -> &Option<FilePluginSet>| plugins.and_then(|ps| f(ps).as_ref());
    let filter_names = point_list(Point::Filter, p(|x| &x.filter), "filter")?;
    let pre_filter_names = point_list(Point::PreFilter, p(|x| &x.pre_filter), "preFilter")?;
    let score_names = point_list(Point::Score, p(|x| &x.score), "score")?;
    let pre_score_names = point_list(Point::PreScore, p(|x| &x.pre_score), "preScore")?;
    let post_filter = point_list(Point::PostFilter, p(|x| &x.post_filter), "postFilter")?;
    let pre_enqueue = point_list(Point::PreEnqueue, p(|x| &x.pre_enqueue), "preEnqueue")?;
    for (sub, point, set) in [
        ("queueSort", Point::QueueSort, p(|x| &x.queue_sort)),
        ("reserve", Point::Reserve, p(|x| &x.reserve)),
        ("permit", Point::Permit, p(|x| &x.permit)),
        ("preBind", Point::PreBind, p(|x| &x.pre_bind)),
        ("bind", Point::Bind, p(|x| &x.bind)),
        ("postBind", Point::Bind, p(|x| &x.post_bind)),
    ] {
        point_list(point, set, sub)?;
    }
    let instances = Instances { args };
    // PreFilter and PreScore state belongs to the filter/score plugin of the same name, so a
    // plugin runs its PreFilter when enabled at Filter unless PreFilter disables it.
    let pre_filter_enabled = |n: &str| pre_filter_names.iter().any(|(m, _)| m == n) || !KNOWN.iter().any(|(k, pts, _)| *k == n && pts.contains(&Point::PreFilter));
    let pre_score_enabled = |n: &str| pre_score_names.iter().any(|(m, _)| m == n) || !KNOWN.iter().any(|(k, pts, _)| *k == n && pts.contains(&Point::PreScore));
    Ok(Profile {
        scheduler_name: name,
        pre_filter: filter_names.iter().filter(|(n, _)| pre_filter_enabled(n)).filter_map(|(n, _)| instances.pre_filter(n)).collect(),
        filter: filter_names.iter().filter_map(|(n, _)| instances.filter(n)).collect(),
        pre_score: score_names.iter().filter(|(n, _)| pre_score_enabled(n)).filter_map(|(n, _)| instances.pre_score(n)).collect(),
        score: score_names.iter().filter_map(|(n, w)| instances.score(n, *w)).collect(),
        preemption: post_filter.iter().any(|(n, _)| n == plugins::DEFAULT_PREEMPTION),
        scheduling_gates: pre_enqueue.iter().any(|(n, _)| n == plugins::SCHEDULING_GATES),
        percentage_of_nodes_to_score: match fp.percentage_of_nodes_to_score {
            Some(v) if !(0..=100).contains(&v) => {
                return Err(invalid(path, format!("{field}.percentageOfNodesToScore"), format!("Invalid value: {v}: not in valid range [0-100]")))
            }
            v => v.map(|v| v as u32),
        },
    })
}

fn fit_args(args: &serde_json::Value, field: &str, path: &str) -> Result<node_resources_fit::NodeResourcesFit, Error> {
    let parsed: FitArgs = serde_path_to_error::deserialize(args.clone()).map_err(|e| invalid(path, format!("{field}.{}", e.path()), first_line(&e.inner().to_string())))?;
    let mut fit = node_resources_fit::NodeResourcesFit::default();
    if let Some(s) = parsed.scoring_strategy {
        fit.strategy = match s.type_.as_deref() {
            None | Some("LeastAllocated") => node_resources_fit::Strategy::LeastAllocated,
            Some("MostAllocated") => node_resources_fit::Strategy::MostAllocated,
            Some(other) => {
                return Err(invalid(path, format!("{field}.scoringStrategy.type"), format!("Unsupported value: {other:?}: supported values: \"LeastAllocated\", \"MostAllocated\"")))
            }
        };
        if let Some(rs) = s.resources {
            fit.resources = Vec::new();
            for (i, r) in rs.into_iter().enumerate() {
                let w = r.weight.unwrap_or(1);
                if !(1..=100).contains(&w) {
                    return Err(invalid(path, format!("{field}.scoringStrategy.resources[{i}].weight"), format!("Invalid value: {w}: resource weight of {} should be in range [1, 100]", r.name)));
                }
                fit.resources.push((r.name, w));
            }
        }
    }
    Ok(fit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &Profile) -> Vec<(&'static str, i64)> {
        p.score.iter().map(|s| (s.plugin.name(), s.weight)).collect()
    }

    #[test]
    fn default_profile_has_upstream_weights() {
        let c = Config::default();
        let p = c.profile("").unwrap();
        assert_eq!(p.scheduler_name, "default-scheduler");
        assert_eq!(
            names(p),
            [
                ("TaintToleration", 3),
                ("NodeAffinity", 2),
                ("NodeResourcesFit", 1),
                ("PodTopologySpread", 2),
                ("InterPodAffinity", 2),
                ("NodeResourcesBalancedAllocation", 1),
                ("ImageLocality", 1)
            ]
        );
        assert_eq!(p.filter.len(), 9);
        assert!(p.preemption);
        assert!(c.profile("other").is_none());
    }

    #[test]
    fn profiles_disable_plugins_and_set_weights() {
        let yaml = r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection: {leaderElect: false}
profiles:
- schedulerName: default-scheduler
- schedulerName: bin-packing
  plugins:
    score:
      disabled: [{name: "*"}]
      enabled: [{name: NodeResourcesFit, weight: 5}]
    postFilter:
      disabled: [{name: DefaultPreemption}]
  pluginConfig:
  - name: NodeResourcesFit
    args: {scoringStrategy: {type: MostAllocated, resources: [{name: cpu, weight: 1}]}}
"#;
        let c = Config::from_yaml(yaml, "c.yaml").unwrap();
        assert!(!c.leader_election.enabled);
        let p = c.profile("bin-packing").unwrap();
        assert_eq!(names(p), [("NodeResourcesFit", 5)]);
        assert!(!p.preemption);
        assert!(c.profile("default-scheduler").unwrap().preemption);
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let cases = [
            ("profiles: [{schedulerName: a, plugins: {score: {enabled: [{name: Foo}]}}}]", "profiles[0].plugins.score.enabled[0].name"),
            ("profiles: [{schedulerName: a, plugins: {score: {enabled: [{name: ImageLocality, weight: 0}]}}}]", "profiles[0].plugins.score.enabled[0].weight"),
            ("percentageOfNodesToScore: 150", "percentageOfNodesToScore"),
            ("profiles: [{schedulerName: a}, {schedulerName: a}]", "profiles[1].schedulerName"),
            ("profiles: [{schedulerName: a, plugin: {}}]", "profiles[0]"),
            ("apiVersion: kubescheduler.config.k8s.io/v1beta1", "apiVersion"),
            ("leaderElection: {leaseDuration: forever}", "leaderElection.leaseDuration"),
            ("podMaxBackoffSeconds: 0", "podMaxBackoffSeconds"),
        ];
        for (yaml, field) in cases {
            match Config::from_yaml(yaml, "c.yaml") {
                Err(Error::Invalid { field: f, message, .. }) => assert!(f.starts_with(field), "{yaml}: got field {f}: {message}"),
                Err(e) => panic!("{yaml}: {e}"),
                Ok(_) => panic!("{yaml}: accepted"),
            }
        }
        let e = Config::from_yaml("profiles: [{schedulerName: a, plugins: {score: {enabled: [{name: Foo}]}}}]", "c.yaml").err().unwrap();
        assert_eq!(e.to_string().lines().count(), 1);
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_duration("15s"), Some(Duration::from_secs(15)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("15"), None);
    }
}

//! Jobs, CronJobs and TTL-after-finished through kubectl, on simulated nodes whose pods end
//! as their `rkube.io/sim-run-seconds` / `rkube.io/sim-exit-code` annotations say.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::Proc;
use crate::harness::{eventually, json, Cluster};

const WAIT: Duration = Duration::from_secs(90);

/// A child process killed on drop.
/// A server (no agent) with a short pod failure back-off, and two Ready simulated nodes.
fn cluster() -> (Cluster, Proc) {
    let c = Cluster::start_with(&["--job-pod-failure-backoff", "1s"]);
    let nodes = crate::harness::sim_nodes(&c, "sim-", 2, &[]);
    (c, nodes)
}

fn job_json(c: &Cluster, ns: &str, name: &str) -> serde_json::Value {
    json(&c.k(&["get", "job", name, "-n", ns, "-o", "json"]))
}

fn condition<'a>(job: &'a serde_json::Value, type_: &str) -> Option<&'a serde_json::Value> {
    job["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_ && c["status"] == "True")
}

fn pods_of(c: &Cluster, ns: &str, job: &str) -> Vec<serde_json::Value> {
    let out = c.k(&["get", "pods", "-n", ns, "-l", &format!("batch.kubernetes.io/job-name={job}"), "-o", "json"]);
    json(&out)["items"].as_array().cloned().unwrap_or_default()
}

fn event_reasons(c: &Cluster, ns: &str, name: &str) -> Vec<String> {
    let out = c.k(&["get", "events", "-n", ns, "--field-selector", &format!("involvedObject.name={name}"), "-o", "json"]);
    json(&out)["items"].as_array().into_iter().flatten().map(|e| e["reason"].as_str().unwrap_or("").to_owned()).collect()
}

/// The most pods of `job` that were active (neither finished nor deleted) at once, from a
/// `kubectl get pods --watch` stream.
fn max_active(watch_output: &str) -> usize {
    let mut state: BTreeMap<String, bool> = BTreeMap::new();
    let mut max = 0;
    // The watch was killed, so the last object may be cut short.
    for pod in serde_json::Deserializer::from_str(watch_output).into_iter::<serde_json::Value>().map_while(Result::ok) {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let phase = pod["status"]["phase"].as_str().unwrap_or("Pending");
        let active = !matches!(phase, "Succeeded" | "Failed") && pod["metadata"]["deletionTimestamp"].is_null();
        state.insert(name, active);
        max = max.max(state.values().filter(|a| **a).count());
    }
    max
}

#[test]
fn job_with_completions_5_and_parallelism_2_completes_with_at_most_2_active() {
    let (c, _nodes) = cluster();
    c.k(&["create", "namespace", "jobs"]);
    let mut watch = Command::new("kubectl")
        .args(["get", "pods", "-n", "jobs", "-l", "batch.kubernetes.io/job-name=work", "--watch", "-o", "json"])
        .env("KUBECONFIG", c.kubeconfig())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl watch");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stdout = watch.stdout.take().expect("watch stdout");
    let sink = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let _watch = Proc(watch);
    std::thread::sleep(Duration::from_millis(500)); // let the watch open before the first pod
    c.apply(
        "apiVersion: batch/v1
kind: Job
metadata: {name: work, namespace: jobs}
spec:
  completions: 5
  parallelism: 2
  template:
    metadata:
      annotations: {rkube.io/sim-run-seconds: \"1\"}
    spec:
      restartPolicy: Never
      containers: [{name: w, image: busybox}]
",
    );
    let waited = c.kubectl(&["wait", "-n", "jobs", "--for=condition=complete", "job/work", "--timeout=120s"]);
    assert!(waited.ok, "job did not complete: {}{}\n{}", waited.stdout, waited.stderr, c.kubectl(&["get", "pods", "-n", "jobs", "-o", "wide"]).stdout);
    let job = job_json(&c, "jobs", "work");
    assert_eq!(job["status"]["succeeded"], 5, "{job}");
    assert!(job["status"]["failed"].is_null(), "no failures: {job}");
    assert!(job["status"]["active"].is_null(), "{job}");
    assert!(job["status"]["completionTime"].is_string() && job["status"]["startTime"].is_string());
    assert!(condition(&job, "SuccessCriteriaMet").is_some(), "1.31+ interim condition: {job}");
    assert_eq!(condition(&job, "Complete").unwrap()["reason"], "CompletionsReached");
    let pods = pods_of(&c, "jobs", "work");
    assert_eq!(pods.len(), 5, "one pod per completion, none replaced");
    for p in &pods {
        assert_eq!(p["status"]["phase"], "Succeeded");
        let finalizers = p["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
        assert!(finalizers.is_empty(), "tracking finalizer removed once counted: {p}");
        assert_eq!(p["metadata"]["labels"]["job-name"], "work");
        assert_eq!(p["metadata"]["labels"]["batch.kubernetes.io/controller-uid"], job["metadata"]["uid"]);
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "Job");
        assert_eq!(p["metadata"]["ownerReferences"][0]["controller"], true);
    }
    // kubectl get jobs: STATUS, COMPLETIONS, DURATION, AGE.
    let table = c.k(&["get", "jobs", "-n", "jobs"]);
    let row = table.lines().nth(1).unwrap_or_default().split_whitespace().collect::<Vec<_>>();
    assert_eq!(&row[..3], ["work", "Complete", "5/5"], "{table}");
    let reasons = event_reasons(&c, "jobs", "work");
    assert_eq!(reasons.iter().filter(|r| *r == "SuccessfulCreate").count(), 5, "{reasons:?}");
    assert!(reasons.iter().any(|r| r == "Completed"), "{reasons:?}");
    let finished = |out: &str| {
        let stream = serde_json::Deserializer::from_str(out).into_iter::<serde_json::Value>().map_while(Result::ok);
        stream.filter(|p| p["status"]["phase"] == "Succeeded").map(|p| p["metadata"]["name"].to_string()).collect::<std::collections::BTreeSet<_>>().len()
    };
    assert!(eventually(WAIT, || finished(&seen.lock().unwrap()) == 5), "the watch saw the 5 pods finish");
    let out = seen.lock().unwrap().clone();
    let seen = max_active(&out);
    assert_eq!(seen, 2, "parallelism 2 means 2 active pods at most (and at some point 2)");
}

#[test]
fn indexed_job_completes_every_index() {
    let (c, _nodes) = cluster();
    c.apply(
        "apiVersion: batch/v1
kind: Job
metadata: {name: idx, namespace: default}
spec:
  completions: 4
  parallelism: 2
  completionMode: Indexed
  template:
    metadata:
      annotations: {rkube.io/sim-run-seconds: \"1\"}
    spec:
      subdomain: idx
      restartPolicy: Never
      containers: [{name: w, image: busybox}]
",
    );
    let waited = c.kubectl(&["wait", "--for=condition=complete", "job/idx", "--timeout=120s"]);
    assert!(waited.ok, "indexed job did not complete: {}{}", waited.stdout, waited.stderr);
    let job = job_json(&c, "default", "idx");
    assert_eq!(job["status"]["completedIndexes"], "0-3", "{job}");
    assert_eq!(job["status"]["succeeded"], 4);
    let pods = pods_of(&c, "default", "idx");
    let mut indexes: Vec<String> = Vec::new();
    for p in &pods {
        let ix = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"].as_str().expect("index annotation").to_owned();
        assert_eq!(p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"], ix.as_str());
        assert_eq!(p["spec"]["hostname"], format!("idx-{ix}"));
        assert!(p["metadata"]["name"].as_str().unwrap().starts_with(&format!("idx-{ix}-")));
        let env = &p["spec"]["containers"][0]["env"][0];
        assert_eq!(env["name"], "JOB_COMPLETION_INDEX");
        assert_eq!(env["valueFrom"]["fieldRef"]["fieldPath"], "metadata.labels['batch.kubernetes.io/job-completion-index']");
        indexes.push(ix);
    }
    indexes.sort();
    assert_eq!(indexes, ["0", "1", "2", "3"], "one pod per index");

    // A success policy ends the Job when index 0 succeeded.
    c.apply(
        "apiVersion: batch/v1
kind: Job
metadata: {name: leader, namespace: default}
spec:
  completions: 5
  parallelism: 1
  completionMode: Indexed
  successPolicy:
    rules: [{succeededIndexes: \"0\"}]
  template:
    metadata:
      annotations: {rkube.io/sim-run-seconds: \"1\"}
    spec:
      restartPolicy: Never
      containers: [{name: w, image: busybox}]
",
    );
    let waited = c.kubectl(&["wait", "--for=condition=complete", "job/leader", "--timeout=120s"]);
    assert!(waited.ok, "success policy did not complete the job: {}{}", waited.stdout, waited.stderr);
    let job = job_json(&c, "default", "leader");
    assert_eq!(condition(&job, "Complete").unwrap()["reason"], "SuccessPolicy", "{job}");
    assert_eq!(condition(&job, "SuccessCriteriaMet").unwrap()["message"], "Matched rules at index 0");
    assert_eq!(job["status"]["completedIndexes"], "0");
    assert_eq!(job["status"]["succeeded"], 1);
}

#[test]
fn failing_job_hits_its_backoff_limit_and_a_deadline_fails_a_job() {
    let (c, _nodes) = cluster();
    c.apply(
        "apiVersion: batch/v1
kind: Job
metadata: {name: fails, namespace: default}
spec:
  backoffLimit: 2
  template:
    metadata:
      annotations: {rkube.io/sim-run-seconds: \"1\", rkube.io/sim-exit-code: \"1\"}
    spec:
      restartPolicy: Never
      containers: [{name: w, image: busybox}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: slow, namespace: default}
spec:
  activeDeadlineSeconds: 4
  parallelism: 2
  completions: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: w, image: busybox}]
",
    );
    let waited = c.kubectl(&["wait", "--for=condition=failed", "job/fails", "--timeout=120s"]);
    assert!(waited.ok, "job did not fail: {}{}\n{}", waited.stdout, waited.stderr, c.kubectl(&["get", "job", "fails", "-o", "yaml"]).stdout);
    let job = job_json(&c, "default", "fails");
    assert_eq!(condition(&job, "Failed").unwrap()["reason"], "BackoffLimitExceeded", "{job}");
    assert_eq!(condition(&job, "FailureTarget").unwrap()["reason"], "BackoffLimitExceeded");
    assert_eq!(job["status"]["failed"], 3, "backoffLimit 2: the third failure fails the Job");
    assert!(job["status"]["succeeded"].is_null());
    assert_eq!(pods_of(&c, "default", "fails").len(), 3, "no pod after the limit");
    assert!(event_reasons(&c, "default", "fails").iter().any(|r| r == "BackoffLimitExceeded"));
    let table = c.k(&["get", "job", "fails"]);
    assert!(table.lines().nth(1).unwrap_or_default().contains("Failed"), "{table}");

    // With restartPolicy OnFailure, container restarts count against the limit.
    c.apply(
        "apiVersion: batch/v1
kind: Job
metadata: {name: restarts, namespace: default}
spec:
  backoffLimit: 2
  template:
    metadata:
      annotations: {rkube.io/sim-run-seconds: \"1\", rkube.io/sim-exit-code: \"3\"}
    spec:
      restartPolicy: OnFailure
      containers: [{name: w, image: busybox}]
",
    );
    let waited = c.kubectl(&["wait", "--for=condition=failed", "job/restarts", "--timeout=120s"]);
    assert!(waited.ok, "restarts did not fail the job: {}{}", waited.stdout, waited.stderr);
    let job = job_json(&c, "default", "restarts");
    assert_eq!(condition(&job, "Failed").unwrap()["reason"], "BackoffLimitExceeded", "{job}");
    assert!(eventually(WAIT, || pods_of(&c, "default", "restarts").is_empty()), "the restarting pod is deleted");

    // A FailJob rule of the pod failure policy fails the Job at its first matching exit.
    c.apply(
        "apiVersion: batch/v1
kind: Job
metadata: {name: fatal, namespace: default}
spec:
  backoffLimit: 6
  podFailurePolicy:
    rules:
    - action: FailJob
      onExitCodes: {containerName: w, operator: In, values: [42]}
  template:
    metadata:
      annotations: {rkube.io/sim-run-seconds: \"1\", rkube.io/sim-exit-code: \"42\"}
    spec:
      restartPolicy: Never
      containers: [{name: w, image: busybox}]
",
    );
    let waited = c.kubectl(&["wait", "--for=condition=failed", "job/fatal", "--timeout=120s"]);
    assert!(waited.ok, "FailJob rule did not fail the job: {}{}", waited.stdout, waited.stderr);
    let job = job_json(&c, "default", "fatal");
    let failed = condition(&job, "Failed").unwrap();
    assert_eq!(failed["reason"], "PodFailurePolicy", "{job}");
    assert!(failed["message"].as_str().unwrap().contains("failed with exit code 42 matching FailJob rule at index 0"), "{job}");
    assert_eq!(job["status"]["failed"], 1);
    assert_eq!(pods_of(&c, "default", "fatal").len(), 1, "no retry after a FailJob match");

    let waited = c.kubectl(&["wait", "--for=condition=failed", "job/slow", "--timeout=120s"]);
    assert!(waited.ok, "deadline did not fail the job: {}{}", waited.stdout, waited.stderr);
    let job = job_json(&c, "default", "slow");
    assert_eq!(condition(&job, "Failed").unwrap()["reason"], "DeadlineExceeded", "{job}");
    assert_eq!(job["status"]["failed"], 2, "the two running pods were deleted and count as failed");
    assert!(job["status"]["active"].is_null());
    let gone = eventually(WAIT, || pods_of(&c, "default", "slow").is_empty());
    assert!(gone, "active pods of a failed job are deleted");
    let reasons = event_reasons(&c, "default", "slow");
    assert!(reasons.iter().any(|r| r == "DeadlineExceeded") && reasons.iter().any(|r| r == "SuccessfulDelete"), "{reasons:?}");
}

#[test]
fn finished_job_with_ttl_is_deleted_with_its_pods() {
    let (c, _nodes) = cluster();
    c.apply(
        "apiVersion: batch/v1
kind: Job
metadata: {name: brief, namespace: default}
spec:
  ttlSecondsAfterFinished: 3
  template:
    metadata:
      annotations: {rkube.io/sim-run-seconds: \"1\"}
    spec:
      restartPolicy: Never
      containers: [{name: w, image: busybox}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: kept, namespace: default}
spec:
  template:
    metadata:
      annotations: {rkube.io/sim-run-seconds: \"1\"}
    spec:
      restartPolicy: Never
      containers: [{name: w, image: busybox}]
",
    );
    let waited = c.kubectl(&["wait", "--for=condition=complete", "job/brief", "job/kept", "--timeout=120s"]);
    assert!(waited.ok, "jobs did not complete: {}{}", waited.stdout, waited.stderr);
    assert_eq!(pods_of(&c, "default", "brief").len(), 1, "the pod stays until the ttl passes");
    let gone = eventually(WAIT, || {
        let r = c.kubectl(&["get", "job", "brief"]);
        !r.ok && r.stderr.contains("NotFound")
    });
    assert!(gone, "a job with ttlSecondsAfterFinished is deleted once finished");
    assert!(eventually(WAIT, || pods_of(&c, "default", "brief").is_empty()), "its pods are deleted with it (background)");
    assert!(c.kubectl(&["get", "job", "kept"]).ok, "a job without ttl stays");
    assert_eq!(pods_of(&c, "default", "kept").len(), 1);
}

/// The one long test: a CronJob every minute (about two and a half minutes).
#[test]
fn cronjob_every_minute_creates_jobs_and_keeps_its_history_limit() {
    let (c, _nodes) = cluster();
    c.apply(
        "apiVersion: batch/v1
kind: CronJob
metadata: {name: tick, namespace: default}
spec:
  schedule: \"* * * * *\"
  successfulJobsHistoryLimit: 1
  jobTemplate:
    metadata:
      labels: {app: tick}
    spec:
      template:
        metadata:
          annotations: {rkube.io/sim-run-seconds: \"1\"}
        spec:
          restartPolicy: Never
          containers: [{name: w, image: busybox}]
",
    );
    // A manual run from the template, as kubectl does it (owned by the CronJob).
    c.k(&["create", "job", "--from=cronjob/tick", "manual"]);
    let waited = c.kubectl(&["wait", "--for=condition=complete", "job/manual", "--timeout=60s"]);
    assert!(waited.ok, "manual job did not complete: {}{}", waited.stdout, waited.stderr);

    let scheduled = |c: &Cluster| -> Vec<serde_json::Value> {
        let out = c.k(&["get", "jobs", "-l", "app=tick", "-o", "json"]);
        json(&out)["items"].as_array().cloned().unwrap_or_default().into_iter().filter(|j| j["metadata"]["name"] != "manual").collect()
    };
    // Two scheduled runs: the second one's completion pushes the first out of the history.
    let ok = eventually(Duration::from_secs(200), || {
        let reasons = event_reasons(&c, "default", "tick");
        reasons.iter().filter(|r| *r == "SuccessfulCreate").count() >= 2 && reasons.iter().any(|r| r == "SuccessfulDelete")
    });
    assert!(ok, "no two runs with a history cleanup: {:?}\n{}", event_reasons(&c, "default", "tick"), c.kubectl(&["get", "jobs"]).stdout);
    let ok = eventually(WAIT, || {
        let jobs = scheduled(&c);
        let complete = jobs.iter().filter(|j| condition(j, "Complete").is_some()).count();
        complete <= 1 && !jobs.is_empty()
    });
    assert!(ok, "successfulJobsHistoryLimit 1 keeps one finished job: {}", c.kubectl(&["get", "jobs"]).stdout);
    for j in scheduled(&c) {
        let name = j["metadata"]["name"].as_str().unwrap();
        let stamp = j["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"].as_str().expect("scheduled timestamp");
        let at: jiff::Timestamp = stamp.parse().expect("RFC 3339 timestamp");
        assert_eq!(at.as_second() % 60, 0, "scheduled on the minute");
        assert_eq!(name, format!("tick-{}", at.as_second() / 60), "named by its scheduled minute");
        assert_eq!(j["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    }
    let cj = json(&c.k(&["get", "cronjob", "tick", "-o", "json"]));
    assert!(cj["status"]["lastScheduleTime"].is_string(), "{cj}");
    assert!(cj["status"]["lastSuccessfulTime"].is_string(), "{cj}");
    let reasons = event_reasons(&c, "default", "tick");
    assert!(reasons.iter().any(|r| r == "SawCompletedJob"), "{reasons:?}");
    let table = c.k(&["get", "cronjob", "tick"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap_or_default().split_whitespace().collect();
    assert_eq!(&row[..2], ["tick", "*"], "{table}");
}

#[test]
fn suspended_job_runs_once_resumed_and_a_deleted_job_takes_its_pods() {
    let (c, _nodes) = cluster();
    c.apply(
        "apiVersion: batch/v1
kind: Job
metadata: {name: later, namespace: default}
spec:
  suspend: true
  completions: 2
  parallelism: 2
  template:
    metadata:
      annotations: {rkube.io/sim-run-seconds: \"1\"}
    spec:
      restartPolicy: Never
      containers: [{name: w, image: busybox}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: forever, namespace: default}
spec:
  parallelism: 3
  completions: 3
  template:
    spec:
      restartPolicy: Never
      containers: [{name: w, image: busybox}]
",
    );
    let suspended = eventually(WAIT, || condition(&job_json(&c, "default", "later"), "Suspended").is_some());
    assert!(suspended, "Suspended condition: {}", job_json(&c, "default", "later"));
    let job = job_json(&c, "default", "later");
    assert!(job["status"]["startTime"].is_null(), "a suspended job has not started: {job}");
    assert!(pods_of(&c, "default", "later").is_empty(), "no pods while suspended");
    assert!(c.k(&["get", "job", "later"]).contains("Suspended"));
    c.k(&["patch", "job", "later", "--type=merge", "-p", "{\"spec\":{\"suspend\":false}}"]);
    let waited = c.kubectl(&["wait", "--for=condition=complete", "job/later", "--timeout=120s"]);
    assert!(waited.ok, "resumed job did not complete: {}{}", waited.stdout, waited.stderr);
    let job = job_json(&c, "default", "later");
    let cond = job["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Suspended").cloned().unwrap();
    assert_eq!((cond["status"].as_str(), cond["reason"].as_str()), (Some("False"), Some("JobResumed")));
    let reasons = event_reasons(&c, "default", "later");
    assert!(reasons.iter().any(|r| r == "Suspended") && reasons.iter().any(|r| r == "Resumed"), "{reasons:?}");

    // Running pods hold the tracking finalizer; deleting their Job must still remove them.
    let running = eventually(WAIT, || {
        let pods = pods_of(&c, "default", "forever");
        pods.len() == 3 && pods.iter().all(|p| p["status"]["phase"] == "Running")
    });
    assert!(running, "3 running pods");
    assert!(pods_of(&c, "default", "forever").iter().all(|p| p["metadata"]["finalizers"][0] == "batch.kubernetes.io/job-tracking"));
    let ready = eventually(WAIT, || job_json(&c, "default", "forever")["status"]["ready"] == 3);
    assert!(ready, "status.ready counts ready pods: {}", job_json(&c, "default", "forever"));
    c.k(&["delete", "job", "forever", "--wait=false"]);
    let gone = eventually(WAIT, || pods_of(&c, "default", "forever").is_empty());
    assert!(gone, "pods of a deleted job are removed: {}", c.kubectl(&["get", "pods", "-o", "yaml"]).stdout);

    // Foreground deletion waits for the pods, which the Job controller lets go.
    c.apply(
        "apiVersion: batch/v1
kind: Job
metadata: {name: fg, namespace: default}
spec:
  parallelism: 2
  completions: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: w, image: busybox}]
",
    );
    assert!(eventually(WAIT, || pods_of(&c, "default", "fg").len() == 2), "2 pods");
    let deleted = c.kubectl(&["delete", "job", "fg", "--cascade=foreground", "--timeout=60s"]);
    assert!(deleted.ok, "foreground delete: {}{}", deleted.stdout, deleted.stderr);
    assert!(eventually(WAIT, || !c.kubectl(&["get", "job", "fg"]).ok), "the job is gone");
    assert!(pods_of(&c, "default", "fg").is_empty(), "its pods went first");
}

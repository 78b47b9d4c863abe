//! The batch group (`pkg/apis/batch/validation`): Jobs and CronJobs.

use serde_json::Value;

use super::names::{self, max_len_error};
use super::pod;
use super::{meta, nonnegative, str_of, Errors, FieldError, Path, IMMUTABLE};
use crate::ResourceInfo;

/// CronJob names leave room for the 11-character suffix of the Jobs they create.
const CRONJOB_NAME_MAX: usize = 52;

pub(super) fn validate(info: &ResourceInfo, new: &Value, old: Option<&Value>) -> Errors {
    let mut errs = meta::object_meta_for(info, new, old, names::dns_subdomain_name);
    let path = Path::new("spec");
    match info.kind {
        "Job" => {
            errs.extend(job_spec(&new["spec"], &path));
            if let Some(old) = old {
                errs.extend(job_update(&new["spec"], &old["spec"], &path));
            }
        }
        "CronJob" => {
            let name = str_of(&new["metadata"], "name");
            if name.len() > CRONJOB_NAME_MAX {
                errs.push(FieldError::invalid(
                    &Path::new("metadata").child("name"),
                    name,
                    max_len_error(CRONJOB_NAME_MAX),
                ));
            }
            errs.extend(cron_job_spec(&new["spec"], &path));
        }
        _ => {}
    }
    errs
}

/// The JobSpec checks without the selector (`validateJobSpec`).
fn job_spec_common(spec: &Value, path: &Path) -> Errors {
    let mut errs = Errors::new();
    for f in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ] {
        nonnegative(&mut errs, spec, f, path);
    }
    if let Some(mode) = spec["completionMode"].as_str() {
        if !matches!(mode, "NonIndexed" | "Indexed") {
            errs.push(FieldError::not_supported(
                &path.child("completionMode"),
                mode,
                &["NonIndexed", "Indexed"],
            ));
        }
    }
    if let Some(p) = spec["podReplacementPolicy"].as_str() {
        if !matches!(p, "TerminatingOrFailed" | "Failed") {
            errs.push(FieldError::not_supported(
                &path.child("podReplacementPolicy"),
                p,
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    errs
}

/// The job's pod template: a valid pod template whose restart policy is OnFailure or Never.
fn job_template(template: &Value, path: &Path) -> Errors {
    let mut errs = pod::pod_template_spec(template, path);
    let restart = str_of(&template["spec"], "restartPolicy");
    if !matches!(restart, "OnFailure" | "Never") {
        errs.push(FieldError::not_supported(
            &path.child("spec").child("restartPolicy"),
            restart,
            &["OnFailure", "Never"],
        ));
    }
    errs
}

/// `ValidateJobSpec`.
fn job_spec(spec: &Value, path: &Path) -> Errors {
    let mut errs = job_spec_common(spec, path);
    let sel = &spec["selector"];
    if sel.is_null() {
        errs.push(FieldError::required(&path.child("selector"), ""));
    } else {
        errs.extend(meta::label_selector(sel, &path.child("selector")));
    }
    let labels = &spec["template"]["metadata"]["labels"];
    if sel.is_null() || !meta::selector_matches(sel, labels) {
        errs.push(FieldError::invalid_go(
            &path.child("template").child("metadata").child("labels"),
            meta::go_string_map(labels),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(job_template(&spec["template"], &path.child("template")));
    errs
}

/// `ValidateJobSpecUpdate`: the selector, completions (unless Indexed) and the pod
/// template (unless a suspended job's scheduling directives) are immutable.
fn job_update(new: &Value, old: &Value, path: &Path) -> Errors {
    let mut errs = Errors::new();
    if new["completions"] != old["completions"] && str_of(new, "completionMode") != "Indexed" {
        errs.push(FieldError::immutable(
            &path.child("completions"),
            &new["completions"],
        ));
    }
    if new["selector"] != old["selector"] {
        errs.push(FieldError::invalid_go(
            &path.child("selector"),
            meta::go_label_selector(&new["selector"]),
            IMMUTABLE,
        ));
    }
    let mut old_template = old["template"].clone();
    let suspended =
        new["suspend"].as_bool() == Some(true) && old["suspend"].as_bool() == Some(true);
    if suspended {
        // a suspended job may still change where its pods run
        for (section, field) in [
            ("spec", "nodeSelector"),
            ("spec", "tolerations"),
            ("spec", "schedulingGates"),
            ("spec", "affinity"),
        ] {
            old_template[section][field] = new["template"][section][field].clone();
        }
        for field in ["annotations", "labels"] {
            old_template["metadata"][field] = new["template"]["metadata"][field].clone();
        }
    }
    strip_nulls(&mut old_template);
    let mut new_template = new["template"].clone();
    strip_nulls(&mut new_template);
    if new_template != old_template {
        errs.push(FieldError::invalid_go(
            &path.child("template"),
            "core.PodTemplateSpec{...}",
            IMMUTABLE,
        ));
    }
    for f in ["completionMode", "podFailurePolicy", "backoffLimitPerIndex"] {
        if new[f] != old[f] {
            errs.push(FieldError::immutable(&path.child(f), &new[f]));
        }
    }
    errs
}

fn strip_nulls(v: &mut Value) {
    if let Some(m) = v.as_object_mut() {
        m.retain(|_, v| !v.is_null());
        for v in m.values_mut() {
            strip_nulls(v);
        }
    }
}

/// `ValidateCronJobSpec`.
fn cron_job_spec(spec: &Value, path: &Path) -> Errors {
    let mut errs = Errors::new();
    let schedule = str_of(spec, "schedule");
    if schedule.is_empty() {
        errs.push(FieldError::required(&path.child("schedule"), ""));
    } else if let Err(why) = check_schedule(schedule) {
        errs.push(FieldError::invalid(&path.child("schedule"), schedule, why));
    }
    nonnegative(&mut errs, spec, "startingDeadlineSeconds", path);
    let policy = str_of(spec, "concurrencyPolicy");
    match policy {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(FieldError::required(&path.child("concurrencyPolicy"), "")),
        _ => errs.push(FieldError::not_supported(
            &path.child("concurrencyPolicy"),
            policy,
            &["Allow", "Forbid", "Replace"],
        )),
    }
    let jt = &spec["jobTemplate"];
    let jt_path = path.child("jobTemplate");
    errs.extend(meta::labels(
        &jt["metadata"]["labels"],
        &jt_path.child("metadata").child("labels"),
    ));
    errs.extend(meta::annotations(
        &jt["metadata"]["annotations"],
        &jt_path.child("metadata").child("annotations"),
    ));
    errs.extend(job_spec_common(&jt["spec"], &jt_path.child("spec")));
    errs.extend(job_template(
        &jt["spec"]["template"],
        &jt_path.child("spec").child("template"),
    ));
    nonnegative(&mut errs, spec, "successfulJobsHistoryLimit", path);
    nonnegative(&mut errs, spec, "failedJobsHistoryLimit", path);
    errs
}

/// A standard five-field cron expression or one of the `@` macros robfig/cron accepts.
fn check_schedule(schedule: &str) -> Result<(), String> {
    let s = schedule.trim();
    let s = s
        .strip_prefix("TZ=")
        .or_else(|| s.strip_prefix("CRON_TZ="))
        .map_or(s, |rest| rest.split_once(' ').map_or("", |(_, r)| r));
    if s.starts_with('@') {
        return match s {
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight"
            | "@hourly" => Ok(()),
            _ if s.starts_with("@every ") => Ok(()),
            _ => Err(format!("unrecognized descriptor: {s}")),
        };
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: {s}",
            fields.len()
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '*' | '/' | ',' | '-' | '?');
    match fields.iter().find(|f| !f.chars().all(allowed)) {
        Some(f) => Err(format!(
            "failed to parse int from {f}: strconv.Atoi: parsing {}: invalid syntax",
            names::go_quote(f)
        )),
        None => Ok(()),
    }
}

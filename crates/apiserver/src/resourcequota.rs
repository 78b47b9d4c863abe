//! The ResourceQuota admission plugin (upstream
//! `staging/src/k8s.io/apiserver/pkg/admission/plugin/resourcequota`): a create in a
//! namespace with quotas is checked against each matching quota's `status.hard` and
//! `status.used` ([`rkube_api::quota::check_create`]) and refused with 403 Forbidden when it
//! would exceed one; otherwise its usage is charged to those quotas before the object is
//! stored, by a compare-and-swap on each quota's resourceVersion, so that concurrent creates
//! cannot together overshoot. The resourcequota controller later recomputes `status.used`
//! from the objects themselves (releasing what deletions and failed creates freed).

use std::time::Duration;

use http::StatusCode;
use rkube_api::quota;
use rkube_api::resources::{self, ResourceInfo};
use serde_json::{json, Value};

use crate::registry::{ListQuery, Registry, WriteOptions};
use crate::request::ResourcePath;
use crate::status::{qualified, ApiError, Result};

/// Attempts when another writer changed a quota between our read and our charge.
const RETRIES: usize = 20;
const RETRY_DELAY: Duration = Duration::from_millis(20);

/// Upstream `admission.NewForbidden`: `pods "web-1" is forbidden: <why>`.
fn forbidden(info: &ResourceInfo, name: &str, why: &str) -> ApiError {
    let mut e = ApiError::forbidden(format!("{} \"{name}\" is forbidden: {why}", qualified(info.group, info.plural)));
    let mut details = json!({"name": name, "kind": info.plural});
    if !info.group.is_empty() {
        details["group"] = info.group.into();
    }
    e.details = Some(Box::new(details));
    e
}

/// Admits the creation of `obj` in namespace `ns` against the namespace's quotas, charging
/// its usage. Under a quota the object is first prepared as the registry would store it (a
/// dry-run create: defaulted, validated, named), so that quota sees defaulted requests, an
/// invalid object is refused before it is charged, and a `generateName` object is named in
/// refusals as upstream names it (upstream admits after validation and name generation).
pub async fn admit_create(reg: &Registry, info: &'static ResourceInfo, ns: &str, obj: &mut Value, opts: &WriteOptions) -> Result<()> {
    let Some(quota_info) = resources::find("", "v1", "resourcequotas") else { return Ok(()) };
    let mut prepared: Option<Value> = None;
    let now = jiff::Timestamp::now();
    for attempt in 0..RETRIES {
        let page = reg.list(quota_info, Some(ns), &ListQuery::default()).await?;
        if page.items.is_empty() {
            return Ok(());
        }
        let candidate = match &prepared {
            Some(p) => p.clone(),
            None => {
                let dry = WriteOptions { dry_run: true, ..opts.clone() };
                let p = reg.create(info, Some(ns), obj.clone(), &dry).await?;
                obj["metadata"]["name"] = p["metadata"]["name"].clone();
                prepared = Some(p.clone());
                p
            }
        };
        let quotas: Vec<Value> = page.items.iter().map(|q| (**q).clone()).collect();
        let name = candidate["metadata"]["name"].as_str().unwrap_or("").to_owned();
        let charges = quota::check_create(&quotas, info.group, info.plural, &candidate, now).map_err(|why| forbidden(info, &name, &why))?;
        if charges.is_empty() || opts.dry_run {
            return Ok(());
        }
        match charge(reg, quota_info, &quotas, &charges, opts).await {
            Ok(()) => return Ok(()),
            Err(e) if e.code == StatusCode::CONFLICT && attempt + 1 < RETRIES => tokio::time::sleep(RETRY_DELAY).await,
            Err(e) if e.code == StatusCode::CONFLICT => break,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::internal("resource quota evaluation timed out"))
}

/// Writes each quota's new `status.used`, conditional on the version that was read.
async fn charge(
    reg: &Registry,
    info: &'static ResourceInfo,
    quotas: &[Value],
    charges: &[(usize, quota::ResourceList)],
    opts: &WriteOptions,
) -> Result<()> {
    for (i, used) in charges {
        let mut q = quotas[*i].clone();
        q["status"]["used"] = quota::list_to_value(used);
        let rp = ResourcePath {
            info,
            namespace: q["metadata"]["namespace"].as_str().map(str::to_owned),
            name: q["metadata"]["name"].as_str().map(str::to_owned),
            subresource: Some("status".into()),
        };
        let opts = WriteOptions { field_manager: "resourcequota-admission".into(), ..opts.clone() };
        reg.update(&rp, q, &opts).await?;
    }
    Ok(())
}

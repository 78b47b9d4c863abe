//! Server-side apply and managedFields in the registry, over [`rkube_api::fieldmanager`].
//!
//! - Every create, update and non-apply patch records the request's field manager
//!   ([`track_update`]), after defaulting and before server-allocated fields (a Service's
//!   ClusterIP), as kube-apiserver's handlers do.
//! - `PATCH` with `application/apply-patch+yaml` ([`Registry::server_side_apply`]) merges the
//!   configuration into the live object, or creates the object when it does not exist.

use rkube_api::fieldmanager::{self, Context};
use rkube_api::resources::ResourceInfo;
use serde_json::{json, Value};

use super::{now, PatchType, Registry, WriteOptions};
use crate::request::ResourcePath;
use crate::status::{ApiError, Cause, Result};

/// Fields a write to `subresource` can never own (upstream's per-strategy reset fields): the
/// main resource does not own `status` when status is a subresource, a status write owns only
/// status.
fn reset_fields(
    info: &ResourceInfo,
    subresource: Option<&str>,
) -> &'static [&'static [&'static str]] {
    match subresource {
        Some("status") => &[&["spec"]],
        None if info.has_subresource("status") => &[&["status"]],
        _ => &[],
    }
}

fn context<'a>(
    info: &'a ResourceInfo,
    subresource: Option<&'a str>,
    names: &'a (String, String),
    opts: &'a WriteOptions,
    now: &'a str,
) -> Context<'a> {
    Context {
        defs: rkube_api::schema::definitions(),
        type_name: &names.0,
        api_version: &names.1,
        kind: info.kind,
        manager: &opts.field_manager,
        subresource,
        now,
        reset_fields: reset_fields(info, subresource),
    }
}

fn names(info: &ResourceInfo) -> (String, String) {
    (rkube_api::schema::definition_name(info), info.api_version())
}

/// Records what a create (`old: None`), update or non-apply patch changed in `new`'s
/// managedFields. Subresources other than `status` and `scale` (binding) are not tracked.
pub(super) fn track_update(
    info: &ResourceInfo,
    subresource: Option<&str>,
    old: Option<&Value>,
    new: &mut Value,
    opts: &WriteOptions,
) {
    if matches!(subresource, Some(s) if s != "status" && s != "scale") {
        return;
    }
    let names = names(info);
    let time = now();
    fieldmanager::update(&context(info, subresource, &names, opts, &time), old, new);
}

/// Upstream's PatchOptions validation: an apply needs a field manager, `force` is only for
/// apply.
pub(super) fn check_patch_options(kind: PatchType, opts: &WriteOptions) -> Result<()> {
    let cause = match kind {
        PatchType::Apply if !opts.explicit_field_manager => Cause {
            reason: "FieldValueRequired",
            field: "fieldManager".into(),
            message: "Required value: is required for apply patch".into(),
        },
        PatchType::Apply => return Ok(()),
        _ if opts.force => Cause {
            reason: "FieldValueForbidden",
            field: "force".into(),
            message: "Forbidden: may not be specified for non-apply patch".into(),
        },
        _ => return Ok(()),
    };
    Err(ApiError::invalid(
        "meta.k8s.io",
        "PatchOptions",
        "",
        vec![cause],
    ))
}

fn to_api_error(e: fieldmanager::Error) -> ApiError {
    match &e {
        fieldmanager::Error::Conflicts(conflicts) => {
            let mut err = ApiError::new(http::StatusCode::CONFLICT, "Conflict", e.to_string());
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| {
                    json!({"reason": "FieldManagerConflict",
                           "message": format!("conflict with {}", c.manager), "field": c.field})
                })
                .collect();
            err.details = Some(Box::new(json!({ "causes": causes })));
            err
        }
        fieldmanager::Error::BadRequest(m) => ApiError::bad_request(m.clone()),
        fieldmanager::Error::Internal(m) => ApiError::internal(m.clone()),
    }
}

/// Decodes an apply body: YAML (JSON is YAML too) holding one object.
fn decode_apply_body(body: &[u8]) -> Result<Value> {
    let value: Value = serde_json::from_slice(body)
        .or_else(|_| serde_saphyr::from_slice(body))
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "error decoding YAML: the apply patch must be an object",
        ));
    }
    Ok(value)
}

impl Registry {
    /// `PATCH` with `application/apply-patch+yaml`: the resulting object, and whether apply
    /// created it (answered 201 as upstream).
    pub async fn server_side_apply(
        &self,
        rp: &ResourcePath,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<(Value, bool)> {
        check_patch_options(PatchType::Apply, opts)?;
        let info = rp.info;
        let sub = rp.subresource.as_deref();
        if matches!(sub, Some(s) if s != "status") {
            return Err(ApiError::bad_request(format!(
                "server-side apply is not supported for the {} subresource",
                sub.unwrap_or_default()
            )));
        }
        let config = decode_apply_body(body)?;
        let name = rp.name.clone().unwrap_or_default();
        let config_name = config["metadata"]["name"].as_str().unwrap_or_default();
        if config_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({config_name}) does not match the name on the URL ({name})"
            )));
        }
        let precondition = match config["metadata"]["resourceVersion"].as_str() {
            Some(s) if !s.is_empty() => Some(super::parse_rv(s)?),
            _ => None,
        };
        let names = names(info);
        let mut opts = opts.clone();
        opts.managed_by_apply = true;
        for _ in 0..2 {
            let time = now();
            let cx = context(info, sub, &names, &opts, &time);
            let exists = match self.get_entry(info, rp.namespace.as_deref(), &name).await {
                Ok(_) => true,
                Err(e) if e.code == http::StatusCode::NOT_FOUND => false,
                Err(e) => return Err(e),
            };
            if !exists {
                if sub.is_some() || precondition.is_some() {
                    return Err(ApiError::not_found(info.group, info.plural, &name));
                }
                let created =
                    fieldmanager::apply(&cx, None, &config, opts.force).map_err(to_api_error)?;
                match self
                    .create(info, rp.namespace.as_deref(), created, &opts)
                    .await
                {
                    Err(e)
                        if e.code == http::StatusCode::CONFLICT && e.reason == "AlreadyExists" =>
                    {
                        continue
                    }
                    other => return other.map(|v| (v, true)),
                }
            }
            let result = self
                .write_loop(rp, &opts, precondition, |old| {
                    fieldmanager::apply(&cx, Some(old), &config, opts.force).map_err(to_api_error)
                })
                .await;
            match result {
                Err(e) if e.code == http::StatusCode::NOT_FOUND && precondition.is_none() => {
                    continue
                }
                other => return other.map(|v| (v, false)),
            }
        }
        Err(ApiError::conflict(
            info.group,
            info.plural,
            &name,
            "too many concurrent writers; please retry",
        ))
    }
}

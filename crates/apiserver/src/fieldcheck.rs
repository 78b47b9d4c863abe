//! `fieldValidation` on create, update and patch: runs [`rkube_api::fieldvalidation`] over the
//! raw body and turns its findings into upstream's answers.
//!
//! - `Strict`: create/update fail with 400 `BadRequest`
//!   (`Deployment in version "v1" cannot be handled as a Deployment: strict decoding error:
//!   unknown field "spec.replicass"`); a patch fails with 422 `Invalid` on the field `patch`,
//!   as upstream's patch handler reports it.
//! - `Warn` (the default when the parameter is absent): one `Warning: 299 - "..."` header per
//!   finding; the request goes on.
//! - `Ignore`: nothing.
//!
//! What is checked follows upstream (`k8s.io/apiserver/pkg/endpoints/handlers`): a JSON or
//! YAML create/update body against the kind's schema; a protobuf body not at all (upstream's
//! protobuf decoder has no strict mode); a merge or strategic patch body for duplicate keys,
//! and the patched object for unknown fields; a JSON patch body for duplicate keys.

use http::{HeaderValue, Response};
use rkube_api::fieldvalidation::{self, Directive, Issue};
use rkube_api::resources::ResourceInfo;
use serde_json::Value;

use crate::registry::{apply_patch, PatchType};
use crate::status::{ApiError, Cause, Result};

/// Reads the `fieldValidation` query parameter.
pub fn directive(value: Option<&str>) -> Result<Directive> {
    Directive::parse(value).map_err(ApiError::bad_request)
}

/// Warnings to send with a successful answer.
#[derive(Debug, Default)]
pub struct Warnings(Vec<String>);

impl Warnings {
    /// Adds each warning as a `Warning: 299 - "<text>"` header, as upstream's warning recorder.
    pub fn attach<B>(self, mut response: Response<B>) -> Response<B> {
        for text in self.0 {
            let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
            if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
                response.headers_mut().append(http::header::WARNING, v);
            }
        }
        response
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The definition a body sent to a resource (or subresource) must match; `None` where the
/// body is not the kind itself (`scale` takes a Scale, `binding` a Binding).
pub fn body_definition(info: &ResourceInfo, subresource: Option<&str>) -> Option<String> {
    match subresource {
        None | Some("status") => Some(rkube_api::schema::definition_name(info)),
        Some("scale") => Some(rkube_api::schema::scale_definition_name()),
        _ => None,
    }
}

/// Checks a create/update body. `Err` (400) under `Strict` when anything was found.
pub fn check_body(
    info: &ResourceInfo,
    definition: &str,
    directive: Directive,
    body: &[u8],
    content_type: &str,
) -> Result<Warnings> {
    if !directive.checks() {
        return Ok(Warnings::default());
    }
    let mt = content_type.split(';').next().unwrap_or("").trim();
    let issues = match mt {
        "application/json" | "" | "*/*" => fieldvalidation::check_json(body, definition).ok(),
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            fieldvalidation::check_yaml(body, definition).ok()
        }
        // protobuf has no strict mode upstream; a body that does not parse is reported by
        // the decoder proper
        _ => None,
    }
    .unwrap_or_default();
    decide(directive, issues, |text| {
        ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {text}",
            kind = info.kind,
            version = info.version
        ))
    })
}

/// Checks a patch: its body for duplicate keys and the patch applied to `current` for unknown
/// fields. `Err` (422 `Invalid` on `patch`) under `Strict` when anything was found.
pub fn check_patch(
    kind: PatchType,
    definition: &str,
    directive: Directive,
    body: &[u8],
    current: &Value,
) -> Result<Warnings> {
    if !directive.checks() {
        return Ok(Warnings::default());
    }
    // Duplicates only: no definition has this name, so every key is "known".
    let mut issues = fieldvalidation::check_json(body, "").unwrap_or_default();
    if kind == PatchType::Json {
        // upstream prefixes the findings in a JSON patch document
        issues = issues
            .into_iter()
            .map(|i| match i {
                Issue::Duplicate(p) => Issue::Duplicate(format!("json patch {p}")),
                other => other,
            })
            .collect();
    }
    let patched = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|p| apply_patch(kind, current, &p, definition).ok());
    if let Some(patched) = &patched {
        issues.extend(fieldvalidation::check_value(patched, definition));
    }
    let shown = patched.map(|p| p.to_string()).unwrap_or_default();
    decide(directive, issues, |text| {
        ApiError::invalid("", "", "", vec![Cause::invalid("patch", &shown, &text)])
    })
}

fn decide(directive: Directive, issues: Vec<Issue>, fail: impl FnOnce(String) -> ApiError) -> Result<Warnings> {
    if issues.is_empty() {
        return Ok(Warnings::default());
    }
    match directive {
        Directive::Strict => Err(fail(fieldvalidation::strict_error(&issues))),
        Directive::Warn => Ok(Warnings(issues.iter().map(Issue::to_string).collect())),
        Directive::Ignore => Ok(Warnings::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use serde_json::json;

    fn deployment() -> &'static ResourceInfo {
        rkube_api::resources::find("apps", "v1", "deployments").unwrap()
    }

    #[test]
    fn strict_create_is_a_bad_request_with_upstreams_message() {
        let info = deployment();
        let def = body_definition(info, None).unwrap();
        let body = br#"{"spec": {"replicass": 1}}"#;
        let e = check_body(info, &def, Directive::Strict, body, "application/json").unwrap_err();
        assert_eq!(e.code, StatusCode::BAD_REQUEST);
        assert_eq!(
            e.message,
            "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.replicass\""
        );
        let w = check_body(info, &def, Directive::Warn, body, "application/json").unwrap();
        let r = w.attach(Response::new(()));
        let headers: Vec<_> = r.headers().get_all(http::header::WARNING).iter().collect();
        assert_eq!(headers, [r#"299 - "unknown field \"spec.replicass\"""#]);
        assert!(check_body(info, &def, Directive::Ignore, body, "application/json").unwrap().is_empty());
        // protobuf bodies are not checked, as upstream
        assert!(check_body(info, &def, Directive::Strict, b"k8s\0garbage", "application/vnd.kubernetes.protobuf").unwrap().is_empty());
    }

    #[test]
    fn strict_patch_reports_the_patched_objects_unknown_fields() {
        let info = deployment();
        let def = body_definition(info, None).unwrap();
        let current = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 1}});
        let body = br#"{"spec": {"replicass": 3, "paused": null}}"#;
        let e = check_patch(PatchType::Merge, &def, Directive::Strict, body, &current).unwrap_err();
        assert_eq!(e.code, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.message.ends_with("strict decoding error: unknown field \"spec.replicass\""), "{}", e.message);
        assert!(e.message.starts_with(" \"\" is invalid: patch: Invalid value: "), "{}", e.message);
        // a null for an unknown field deletes nothing and adds nothing: not reported
        let ok = check_patch(PatchType::Merge, &def, Directive::Strict, br#"{"spec": {"bogus": null}}"#, &current).unwrap();
        assert!(ok.is_empty());
        let json_patch = br#"[{"op": "add", "path": "/spec/bogus", "value": 1}]"#;
        let e = check_patch(PatchType::Json, &def, Directive::Strict, json_patch, &current).unwrap_err();
        assert!(e.message.ends_with("unknown field \"spec.bogus\""), "{}", e.message);
        let dup = br#"{"spec": {"replicas": 2, "replicas": 3}}"#;
        let e = check_patch(PatchType::Strategic, &def, Directive::Strict, dup, &current).unwrap_err();
        assert!(e.message.ends_with("strict decoding error: duplicate field \"spec.replicas\""), "{}", e.message);
    }
}

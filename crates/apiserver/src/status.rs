//! API errors and their `metav1.Status` bodies, shaped as kube-apiserver writes them.

use http::StatusCode;
use serde_json::{json, Value};

/// One cause of an `Invalid` error: the field path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueDuplicate`, ...
    pub reason: &'static str,
    pub field: String,
    pub message: String,
}

impl Cause {
    pub fn invalid(field: impl Into<String>, value: &str, detail: &str) -> Self {
        Cause {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: {}: {detail}", Value::String(value.to_owned())),
        }
    }

    pub fn required(field: impl Into<String>) -> Self {
        Cause { reason: "FieldValueRequired", field: field.into(), message: "Required value".to_owned() }
    }

    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        Cause { reason: "FieldValueForbidden", field: field.into(), message: format!("Forbidden: {detail}") }
    }
}

/// An error the API answers with a `Status` body.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: StatusCode,
    /// metav1.StatusReason: `NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, ...
    pub reason: &'static str,
    pub message: String,
    /// `details` of the Status, when upstream sends one.
    pub details: Option<Box<Value>>,
    /// `metadata.continue` (an expired continue token gets a fresh one).
    pub continue_token: Option<String>,
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// `kind` in `details` is the resource (plural) for most errors, as upstream writes it;
/// `group` is left out for the core group.
fn details(group: &str, kind: &str, name: &str) -> Value {
    let mut d = serde_json::Map::new();
    if !name.is_empty() {
        d.insert("name".into(), name.into());
    }
    if !group.is_empty() {
        d.insert("group".into(), group.into());
    }
    d.insert("kind".into(), kind.into());
    Value::Object(d)
}

/// `deployments.apps` or `pods`: how upstream names a resource in messages.
pub fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_owned()
    } else {
        format!("{plural}.{group}")
    }
}

impl ApiError {
    pub fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError { code, reason, message: message.into(), details: None, continue_token: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        let mut e = Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(group, plural)),
        );
        e.details = Some(Box::new(details(group, plural, name)));
        e
    }

    /// The bare 404 for a path that names no resource.
    pub fn no_route() -> Self {
        let mut e = Self::new(StatusCode::NOT_FOUND, "NotFound", "the server could not find the requested resource");
        e.details = Some(Box::new(json!({})));
        e
    }

    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        let mut e = Self::new(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(group, plural)),
        );
        e.details = Some(Box::new(details(group, plural, name)));
        e
    }

    pub fn conflict(group: &str, plural: &str, name: &str, why: &str) -> Self {
        let mut e = Self::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!("Operation cannot be fulfilled on {} \"{name}\": {why}", qualified(group, plural)),
        );
        e.details = Some(Box::new(details(group, plural, name)));
        e
    }

    pub fn stale(group: &str, plural: &str, name: &str) -> Self {
        Self::conflict(
            group,
            plural,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 Invalid listing every cause, as `field.ErrorList.ToAggregate` renders them.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let list: Vec<String> = causes.iter().map(|c| format!("{}: {}", c.field, c.message)).collect();
        let joined = if list.len() == 1 { list[0].clone() } else { format!("[{}]", list.join(", ")) };
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("{kind}{} \"{name}\" is invalid: {joined}", if group.is_empty() { String::new() } else { format!(".{group}") }),
        );
        let mut d = details(group, kind, name);
        d["causes"] = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        e.details = Some(Box::new(d));
        e
    }

    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "Expired", message)
    }

    pub fn method_not_allowed() -> Self {
        let mut e = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        );
        e.details = Some(Box::new(json!({})));
        e
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        let mut e = Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {content_type:?})"),
        );
        e.details = Some(Box::new(json!({})));
        e
    }

    pub fn not_acceptable() -> Self {
        Self::new(
            StatusCode::NOT_ACCEPTABLE,
            "NotAcceptable",
            "only the following media types are accepted: application/json, application/yaml",
        )
    }

    pub fn too_large() -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message)
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, "Timeout", message)
    }

    /// The `metav1.Status` body.
    pub fn body(&self) -> Value {
        let mut metadata = serde_json::Map::new();
        if let Some(c) = &self.continue_token {
            metadata.insert("continue".into(), c.clone().into());
        }
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": metadata,
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        });
        if let Some(d) = &self.details {
            s["details"] = (**d).clone();
        }
        s["code"] = self.code.as_u16().into();
        s
    }
}

impl From<rkube_store::Error> for ApiError {
    fn from(e: rkube_store::Error) -> Self {
        use rkube_store::Error as S;
        match e {
            S::Compacted { .. } => ApiError::expired("The resourceVersion for the provided list is too old."),
            S::FutureRevision { .. } => ApiError::timeout("Too large resource version"),
            other => {
                tracing::error!(error = %other, source = ?std::error::Error::source(&other), "datastore request failed");
                ApiError::internal(format!("datastore request failed: {other}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_message_names_every_cause() {
        let e = ApiError::invalid(
            "",
            "Pod",
            "x",
            vec![Cause::required("spec.containers"), Cause::invalid("metadata.name", "X", "bad")],
        );
        assert_eq!(e.code, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            e.message,
            "Pod \"x\" is invalid: [spec.containers: Required value, metadata.name: Invalid value: \"X\": bad]"
        );
        assert_eq!(e.body()["details"]["causes"][1]["field"], "metadata.name");
    }

    #[test]
    fn not_found_uses_the_qualified_resource() {
        let e = ApiError::not_found("apps", "deployments", "web");
        assert_eq!(e.message, "deployments.apps \"web\" not found");
        assert_eq!(e.body()["details"], json!({"name": "web", "group": "apps", "kind": "deployments"}));
    }
}

//! Renders [`PathItem`]s as OpenAPI v3 and swagger 2.0, and component schemas as swagger 2.0
//! definitions.

use serde_json::{json, Map, Value};

use super::paths::{query_param, Body, Operation, PathItem, PATCH_TYPES};
use crate::schema::REF_PREFIX;

const V2_PREFIX: &str = "#/definitions/";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        401 => "Unauthorized",
        _ => "",
    }
}

fn gvk_extension(op: &Operation, object: &mut Map<String, Value>) {
    if let Some(action) = op.action {
        object.insert("x-kubernetes-action".into(), action.into());
    }
    if let Some((group, version, kind)) = &op.gvk {
        object.insert(
            "x-kubernetes-group-version-kind".into(),
            json!({ "group": group, "version": version, "kind": kind }),
        );
    }
}

fn v3_ref(definition: &str) -> Value {
    json!({ "$ref": format!("{REF_PREFIX}{definition}") })
}

fn v3_query(name: &str) -> Value {
    let (description, kind) = query_param(name);
    json!({
        "name": name,
        "in": "query",
        "description": description,
        "schema": { "type": kind, "uniqueItems": true },
    })
}

fn v3_path_param(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "description": description,
        "required": true,
        "schema": { "type": "string", "uniqueItems": true },
    })
}

fn v3_operation(op: &Operation) -> Value {
    let mut out = Map::new();
    out.insert("tags".into(), json!([op.tag]));
    out.insert("description".into(), op.description.clone().into());
    out.insert("operationId".into(), op.id.clone().into());
    if !op.query.is_empty() {
        out.insert(
            "parameters".into(),
            op.query.iter().map(|q| v3_query(q)).collect(),
        );
    }
    match &op.body {
        Some(Body::Definition(definition)) => {
            out.insert(
                "requestBody".into(),
                json!({ "content": { "*/*": { "schema": v3_ref(definition) } } }),
            );
        }
        Some(Body::Patch) => {
            let content: Map<String, Value> = PATCH_TYPES
                .iter()
                .map(|t| (t.to_string(), json!({ "schema": v3_ref(PATCH) })))
                .collect();
            out.insert("requestBody".into(), json!({ "content": content }));
        }
        None => {}
    }
    let responses: Map<String, Value> = op
        .responses
        .iter()
        .map(|(code, definition)| {
            let mut response = json!({ "description": reason(*code) });
            if let Some(definition) = definition {
                let content: Map<String, Value> = op
                    .produces
                    .iter()
                    .map(|t| (t.to_string(), json!({ "schema": v3_ref(definition) })))
                    .collect();
                response["content"] = Value::Object(content);
            }
            (code.to_string(), response)
        })
        .collect();
    out.insert("responses".into(), Value::Object(responses));
    gvk_extension(op, &mut out);
    Value::Object(out)
}

/// One path of a v3 document.
pub(super) fn v3_path(item: &PathItem) -> Value {
    let mut out = Map::new();
    for op in &item.operations {
        out.insert(op.method.into(), v3_operation(op));
    }
    let mut parameters: Vec<Value> = item
        .path_params
        .iter()
        .map(|(name, text)| v3_path_param(name, text))
        .collect();
    parameters.extend(item.query.iter().map(|q| v3_query(q)));
    if !parameters.is_empty() {
        out.insert("parameters".into(), parameters.into());
    }
    Value::Object(out)
}

fn v2_ref(definition: &str) -> Value {
    json!({ "$ref": format!("{V2_PREFIX}{definition}") })
}

fn v2_query(name: &str) -> Value {
    let (description, kind) = query_param(name);
    json!({
        "uniqueItems": true,
        "type": kind,
        "description": description,
        "name": name,
        "in": "query",
    })
}

fn v2_operation(op: &Operation) -> Value {
    let mut out = Map::new();
    out.insert("description".into(), op.description.clone().into());
    let consumes: Vec<&str> = match op.body {
        Some(Body::Patch) => PATCH_TYPES.to_vec(),
        _ => vec!["*/*"],
    };
    out.insert("consumes".into(), consumes.into());
    out.insert("produces".into(), op.produces.to_vec().into());
    out.insert("schemes".into(), json!(["https"]));
    out.insert("tags".into(), json!([op.tag]));
    out.insert("operationId".into(), op.id.clone().into());
    let mut parameters = Vec::new();
    let body = match &op.body {
        Some(Body::Definition(definition)) => Some(v2_ref(definition)),
        Some(Body::Patch) => Some(v2_ref(PATCH)),
        None => None,
    };
    if let Some(schema) = body {
        parameters
            .push(json!({ "name": "body", "in": "body", "required": true, "schema": schema }));
    }
    parameters.extend(op.query.iter().map(|q| v2_query(q)));
    if !parameters.is_empty() {
        out.insert("parameters".into(), parameters.into());
    }
    let responses: Map<String, Value> = op
        .responses
        .iter()
        .map(|(code, definition)| {
            let mut response = json!({ "description": reason(*code) });
            if let Some(definition) = definition {
                response["schema"] = v2_ref(definition);
            }
            (code.to_string(), response)
        })
        .collect();
    out.insert("responses".into(), Value::Object(responses));
    gvk_extension(op, &mut out);
    Value::Object(out)
}

/// One path of the swagger 2.0 document.
pub(super) fn v2_path(item: &PathItem) -> Value {
    let mut out = Map::new();
    for op in &item.operations {
        out.insert(op.method.into(), v2_operation(op));
    }
    let mut parameters: Vec<Value> = item
        .path_params
        .iter()
        .map(|(name, text)| {
            json!({
                "uniqueItems": true,
                "type": "string",
                "description": text,
                "name": name,
                "in": "path",
                "required": true,
            })
        })
        .collect();
    parameters.extend(item.query.iter().map(|q| v2_query(q)));
    if !parameters.is_empty() {
        out.insert("parameters".into(), parameters.into());
    }
    Value::Object(out)
}

/// A component schema as a swagger 2.0 definition: `#/definitions/` references, a described
/// reference written `{"$ref", "description"}` as upstream's v2 does (swagger 2.0 has no
/// `oneOf`, so `IntOrString` and `Quantity` become upstream's v2 string forms).
pub(super) fn v2_schema(name: &str, schema: &Value) -> Value {
    let mut out = v2_value(schema);
    if let Some(object) = out.as_object_mut() {
        if object.remove("oneOf").is_some() {
            object.insert("type".into(), "string".into());
        }
        if name == "io.k8s.apimachinery.pkg.util.intstr.IntOrString" {
            object.insert("format".into(), "int-or-string".into());
        }
    }
    out
}

fn v2_value(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let single_ref = map
                .get("allOf")
                .and_then(Value::as_array)
                .filter(|all| all.len() == 1)
                .and_then(|all| all[0].get("$ref"))
                .and_then(Value::as_str);
            let mut out = Map::new();
            if let Some(reference) = single_ref {
                out.insert(
                    "$ref".into(),
                    reference.replacen(REF_PREFIX, V2_PREFIX, 1).into(),
                );
            }
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("allOf", _) if single_ref.is_some() => {}
                    ("$ref", Value::String(r)) => {
                        out.insert(key.clone(), r.replacen(REF_PREFIX, V2_PREFIX, 1).into());
                    }
                    _ => {
                        out.insert(key.clone(), v2_value(child));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => items.iter().map(v2_value).collect(),
        other => other.clone(),
    }
}

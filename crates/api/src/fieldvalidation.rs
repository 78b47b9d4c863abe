//! Server-side field validation (`fieldValidation=Strict|Warn|Ignore`).
//!
//! k8s-openapi's types drop unknown fields silently and `serde_json::Value` keeps only the
//! last of two equal keys, so neither can tell a client about a misspelt field. This module
//! walks the **raw request bytes** with a serde visitor that follows the kind's OpenAPI schema
//! ([`crate::schema::definitions`]) and records what upstream's strict decoder
//! (`sigs.k8s.io/json.UnmarshalStrict`) records:
//!
//! - `unknown field "spec.template.spec.containers[0].imagee"`: a key the schema of a struct
//!   does not declare;
//! - `duplicate field "metadata.name"`: a key that appears twice in one JSON object (maps
//!   included: `metadata.labels.app`).
//!
//! Paths are written as upstream prints them: field names joined with `.`, array indices as
//! `[i]`, map keys as a further `.key`. Values of untyped schemas (`RawExtension`, the CRD
//! `JSON` types, anything without `properties`) are not checked for unknown fields, only for
//! duplicates, as upstream decodes them into `interface{}`.
//!
//! Depth is bounded by the decoders themselves (serde_json stops at 128 levels, serde-saphyr's
//! budget at 64), and [`check_value`] stops at [`MAX_DEPTH`], so no input overflows the stack.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::schema::{definitions, ref_target};

/// How deep [`check_value`] follows a `Value` (bodies parsed from bytes are already bounded
/// by their parser).
pub const MAX_DEPTH: usize = 256;

/// The `fieldValidation` directive of a create, update or patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Directive {
    /// Unknown and duplicate fields are dropped silently.
    Ignore,
    /// Each unknown or duplicate field becomes a `Warning: 299` response header. Upstream's
    /// default when the parameter is absent (kubectl always sends `Strict` unless told).
    #[default]
    Warn,
    /// The request fails with 400 `BadRequest` listing every unknown and duplicate field.
    Strict,
}

impl Directive {
    /// Parses the query parameter; absent or empty gives the default, [`Directive::Warn`].
    /// `Err` carries upstream's message for an invalid value.
    pub fn parse(value: Option<&str>) -> Result<Directive, String> {
        match value.unwrap_or("") {
            "" | "Warn" => Ok(Directive::Warn),
            "Ignore" => Ok(Directive::Ignore),
            "Strict" => Ok(Directive::Strict),
            other => Err(format!(
                "fieldValidation {other:?} is invalid, must be one of: Ignore, Warn, Strict"
            )),
        }
    }

    /// Whether the body must be checked at all.
    pub fn checks(self) -> bool {
        self != Directive::Ignore
    }
}

/// One finding of the strict decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issue {
    Unknown(String),
    Duplicate(String),
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Issue::Unknown(path) => write!(f, "unknown field {path:?}"),
            Issue::Duplicate(path) => write!(f, "duplicate field {path:?}"),
        }
    }
}

/// `strict decoding error: unknown field "a", duplicate field "b"`: upstream's
/// `runtime.StrictDecodingError` text.
pub fn strict_error(issues: &[Issue]) -> String {
    let list: Vec<String> = issues.iter().map(Issue::to_string).collect();
    format!("strict decoding error: {}", list.join(", "))
}

/// Checks a JSON body against the schema of `definition` (`io.k8s.api.apps.v1.Deployment`).
/// `Err` when the body is not JSON (the caller's own decode reports that better).
pub fn check_json(body: &[u8], definition: &str) -> Result<Vec<Issue>, serde_json::Error> {
    let mut issues = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    Walk { schema: lookup(definition), path: String::new(), out: &mut issues }.deserialize(&mut de)?;
    de.end()?;
    Ok(issues)
}

/// Checks a YAML body against the schema of `definition`, duplicate keys included.
pub fn check_yaml(body: &[u8], definition: &str) -> Result<Vec<Issue>, serde_saphyr::Error> {
    let mut issues = Vec::new();
    let mut options = serde_saphyr::Options::default();
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::PassThrough;
    let schema = lookup(definition);
    serde_saphyr::with_deserializer_from_slice_with_options(body, options, |de| {
        Walk { schema, path: String::new(), out: &mut issues }.deserialize(de)
    })?;
    Ok(issues)
}

/// Unknown fields of an already decoded value (a patched object): duplicates cannot exist
/// in a `Value`. Stops descending at [`MAX_DEPTH`].
pub fn check_value(value: &Value, definition: &str) -> Vec<Issue> {
    let mut issues = Vec::new();
    walk_value(value, lookup(definition), &mut String::new(), 0, &mut issues);
    issues
}

fn walk_value(value: &Value, schema: Node, path: &mut String, depth: usize, out: &mut Vec<Issue>) {
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let len = path.len();
                push_key(path, key);
                match field(schema, key) {
                    Field::Unknown => out.push(Issue::Unknown(path.clone())),
                    Field::Known(next) => walk_value(child, next, path, depth + 1, out),
                }
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            let next = items_of(schema);
            for (i, child) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk_value(child, next, path, depth + 1, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// A schema with its `$ref`/`allOf` resolved; `None` means "anything goes".
type Node = Option<&'static Value>;

enum Field {
    Unknown,
    Known(Node),
}

fn lookup(definition: &str) -> Node {
    definitions().get(definition)
}

/// Follows a schema's reference (bounded: definitions refer to definitions a few times).
fn resolve(schema: &'static Value) -> Node {
    let mut current = schema;
    for _ in 0..8 {
        match ref_target(current) {
            Some(name) => current = definitions().get(name)?,
            None => return Some(current),
        }
    }
    None
}

fn field(schema: Node, key: &str) -> Field {
    let Some(schema) = schema.and_then(resolve) else {
        return Field::Known(None);
    };
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        return match props.get(key) {
            Some(p) => Field::Known(Some(p)),
            None => Field::Unknown,
        };
    }
    match schema.get("additionalProperties") {
        Some(v) if v.is_object() => Field::Known(Some(v)),
        _ => Field::Known(None),
    }
}

fn items_of(schema: Node) -> Node {
    schema.and_then(resolve)?.get("items")
}

fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

/// The serde visitor: walks any self-describing input, recording issues.
struct Walk<'a> {
    schema: Node,
    path: String,
    out: &'a mut Vec<Issue>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let mut path = self.path.clone();
            push_key(&mut path, &key);
            let duplicate = !seen.insert(key.clone());
            if duplicate {
                self.out.push(Issue::Duplicate(path.clone()));
            }
            let next = match field(self.schema, &key) {
                Field::Known(next) => next,
                Field::Unknown => {
                    if !duplicate {
                        self.out.push(Issue::Unknown(path.clone()));
                    }
                    None
                }
            };
            map.next_value_seed(Walk { schema: next, path, out: &mut *self.out })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let next = items_of(self.schema);
        let mut i = 0usize;
        loop {
            let path = format!("{}[{i}]", self.path);
            if seq.next_element_seed(Walk { schema: next, path, out: &mut *self.out })?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_i128<E>(self, _: i128) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u128<E>(self, _: u128) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_bytes<E>(self, _: &[u8]) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;

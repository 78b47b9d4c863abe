//! Decodes Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) into
//! the JSON the same object encodes to, so the API server can store and handle them like
//! JSON bodies. kubectl's typed commands (`create deployment`, `run`, `create token`, ...)
//! send their bodies this way.
//!
//! The wire format is the magic prefix `k8s\0` followed by a `runtime.Unknown` envelope
//! (`typeMeta` {apiVersion, kind}, `raw` object bytes, `contentEncoding`, `contentType`);
//! `raw` is the gogo-protobuf (proto2) encoding of the Go type.
//!
//! - `wire`: a generic protobuf wire reader (varint, fixed64, length-delimited,
//!   fixed32, packed repeated).
//! - `table`: one entry per Go struct — field number, JSON name, `omitempty`, pointer,
//!   embedded-inline, type — generated from upstream's struct tags by `gen_table.py`
//!   (kubernetes/api, apimachinery and apiextensions-apiserver v0.33.9) into `table.txt`.
//! - `object`: walks the bytes with the table and writes the JSON Go's `encoding/json`
//!   writes for the decoded Go value, including the hand-written encodings of `Time`,
//!   `MicroTime`, `Duration`, `Quantity`, `IntOrString`, `RawExtension`, `FieldsV1` and the
//!   apiextensions `JSON`/`JSONSchemaPropsOr*` types.
//!
//! Like upstream, fields unknown to the table are skipped.

mod format;
mod object;
mod table;
mod wire;

use serde_json::{Map, Value};

use wire::{Reader, Wire};

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Kinds of `meta.k8s.io/v1` that upstream registers in every group-version
/// (`metav1.AddToGroupVersion`), so a body may name them with any apiVersion.
const META_KINDS: &[&str] = &[
    "DeleteOptions",
    "CreateOptions",
    "UpdateOptions",
    "PatchOptions",
    "GetOptions",
    "ListOptions",
];

/// Why a protobuf body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    #[error("protobuf body does not start with the prefix \"k8s\\x00\"")]
    MissingMagic,
    #[error("unsupported contentEncoding {0:?} in the protobuf envelope")]
    UnsupportedEncoding(String),
    #[error("the protobuf envelope names no apiVersion and kind")]
    MissingTypeMeta,
    #[error("no protobuf decoding is known for kind {kind:?} in {api_version:?}")]
    UnknownKind { api_version: String, kind: String },
    #[error("malformed protobuf at {path:?}: {reason}")]
    Malformed { path: String, reason: String },
    #[error("field {path:?} does not hold valid JSON")]
    InvalidJson {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

impl ProtobufError {
    fn malformed(reason: impl Into<String>) -> Self {
        ProtobufError::Malformed { path: String::new(), reason: reason.into() }
    }

    /// Prefixes the error's field path with the enclosing field's JSON name.
    fn within(mut self, field: &str) -> Self {
        if let ProtobufError::Malformed { path, .. } | ProtobufError::InvalidJson { path, .. } =
            &mut self
        {
            if field != "_" {
                *path = if path.is_empty() { field.to_owned() } else { format!("{field}.{path}") };
            }
        }
        self
    }
}

/// Whether [`decode`] knows the kind `kind` of `api_version` (`v1`, `apps/v1`).
pub fn supports(api_version: &str, kind: &str) -> bool {
    lookup(api_version, kind).is_some()
}

fn lookup(api_version: &str, kind: &str) -> Option<usize> {
    let table = &*table::TABLE;
    table
        .kind(api_version, kind)
        .or_else(|| META_KINDS.contains(&kind).then(|| table.kind("meta.k8s.io/v1", kind))?)
}

/// Decodes a Kubernetes protobuf body into the object's JSON: `kind` and `apiVersion` from
/// the envelope first, then the object's fields with their JSON names, in the order and
/// with the zero-value rules of Go's `encoding/json` over the same Go value.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let envelope = body.strip_prefix(MAGIC).ok_or(ProtobufError::MissingMagic)?;
    let unknown = Unknown::parse(envelope)?;
    if !unknown.content_encoding.is_empty() {
        return Err(ProtobufError::UnsupportedEncoding(unknown.content_encoding));
    }
    if unknown.api_version.is_empty() || unknown.kind.is_empty() {
        return Err(ProtobufError::MissingTypeMeta);
    }
    let index =
        lookup(&unknown.api_version, &unknown.kind).ok_or_else(|| ProtobufError::UnknownKind {
            api_version: unknown.api_version.clone(),
            kind: unknown.kind.clone(),
        })?;
    let decoder = object::Decoder { table: &table::TABLE };
    let fields = decoder.message(index, unknown.raw, 0)?;
    let mut out = Map::with_capacity(fields.len() + 2);
    // metav1.TypeMeta declares Kind before APIVersion, so Go writes `kind` first.
    out.insert("kind".to_owned(), Value::String(unknown.kind));
    out.insert("apiVersion".to_owned(), Value::String(unknown.api_version));
    out.extend(fields);
    Ok(Value::Object(out))
}

/// Every `(apiVersion, kind)` that [`decode`] knows, besides the `meta.k8s.io/v1` option
/// kinds accepted under any apiVersion.
pub fn known_kinds() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        table::TABLE.kinds().map(|(v, k)| (v.to_owned(), k.to_owned())).collect();
    out.sort();
    out
}

/// The `runtime.Unknown` envelope.
struct Unknown<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
}

impl<'a> Unknown<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, ProtobufError> {
        let mut out = Unknown {
            api_version: String::new(),
            kind: String::new(),
            raw: &[],
            content_encoding: String::new(),
        };
        let mut reader = Reader::new(bytes);
        while let Some((number, value)) = reader.next_field()? {
            let Wire::Bytes(b) = value else {
                return Err(ProtobufError::malformed("runtime.Unknown holds only bytes fields"));
            };
            match number {
                1 => {
                    let mut meta = Reader::new(b);
                    while let Some((n, v)) = meta.next_field()? {
                        match (n, v) {
                            (1, Wire::Bytes(s)) => out.api_version = text(s)?,
                            (2, Wire::Bytes(s)) => out.kind = text(s)?,
                            _ => {}
                        }
                    }
                }
                2 => out.raw = b,
                3 => out.content_encoding = text(b)?,
                _ => {} // 4 contentType: always the protobuf type for the raw bytes
            }
        }
        Ok(out)
    }
}

fn text(bytes: &[u8]) -> Result<String, ProtobufError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtobufError::malformed("invalid UTF-8"))
}

#[cfg(test)]
mod tests;

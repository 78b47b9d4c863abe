//! Decodes one message of the table into the JSON Go's encoding/json writes for the same
//! Go value: fields in declaration order, `omitempty` on zero scalars, slices and maps,
//! `null` for nil slices, maps and pointers without `omitempty`, structs always present.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::format::{go_duration, go_float, rfc3339, GO_ZERO_TIME_SECONDS};
use super::table::{Field, Special, Table, Ty};
use super::wire::{Reader, Wire};
use super::ProtobufError;

/// Nesting beyond this is refused (recursive JSONSchemaProps could nest without end).
const MAX_DEPTH: usize = 100;

pub(super) struct Decoder<'t> {
    pub(super) table: &'t Table,
}

/// The occurrences of each field number in one message, in wire order.
type Occurrences<'a> = BTreeMap<u32, Vec<Wire<'a>>>;

fn collect(bytes: &[u8]) -> Result<Occurrences<'_>, ProtobufError> {
    let mut out: Occurrences = BTreeMap::new();
    let mut reader = Reader::new(bytes);
    while let Some((number, value)) = reader.next_field()? {
        out.entry(number).or_default().push(value);
    }
    Ok(out)
}

/// A non-repeated embedded message may be split over several occurrences; protobuf merges
/// them, which is the same as decoding their concatenation.
fn merged<'a>(values: &[Wire<'a>]) -> Result<std::borrow::Cow<'a, [u8]>, ProtobufError> {
    let mut parts = Vec::with_capacity(values.len());
    for v in values {
        match v {
            Wire::Bytes(b) => parts.push(*b),
            other => return Err(wrong_wire("message", other)),
        }
    }
    Ok(match parts.as_slice() {
        [] => std::borrow::Cow::Borrowed(&[][..]),
        [one] => std::borrow::Cow::Borrowed(*one),
        many => std::borrow::Cow::Owned(many.concat()),
    })
}

fn wrong_wire(expected: &str, got: &Wire<'_>) -> ProtobufError {
    ProtobufError::malformed(format!("expected {expected}, found wire type {}", got.type_name()))
}

fn is_scalar_number(ty: &Ty) -> bool {
    matches!(
        ty,
        Ty::Bool | Ty::Int32 | Ty::Int64 | Ty::Uint32 | Ty::Uint64 | Ty::Float32 | Ty::Float64
    )
}

/// The JSON Go writes for the zero value of a scalar.
fn zero_scalar(ty: &Ty) -> Value {
    match ty {
        Ty::String => Value::String(String::new()),
        Ty::Bool => Value::Bool(false),
        _ => Value::from(0),
    }
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

impl Decoder<'_> {
    /// Decodes the message at `index` into a JSON object.
    pub(super) fn message(
        &self,
        index: usize,
        bytes: &[u8],
        depth: usize,
    ) -> Result<Map<String, Value>, ProtobufError> {
        let message = &self.table.messages[index];
        if depth > MAX_DEPTH {
            return Err(ProtobufError::malformed(format!("{} nested too deeply", message.name)));
        }
        let occurrences = collect(bytes)?;
        let mut out = Map::new();
        for field in &message.fields {
            let values = occurrences.get(&field.number).map(Vec::as_slice).unwrap_or(&[]);
            let result = self.field(field, values, depth);
            let value = result.map_err(|e| e.within(&field.json))?;
            if field.inline {
                if let Some(Value::Object(inner)) = value {
                    out.extend(inner);
                }
            } else if let Some(value) = value {
                out.insert(field.json.clone(), value);
            }
        }
        Ok(out)
    }

    /// The JSON of one field, `None` when Go omits it.
    fn field(
        &self,
        field: &Field,
        values: &[Wire<'_>],
        depth: usize,
    ) -> Result<Option<Value>, ProtobufError> {
        let absent = || if field.omitempty { None } else { Some(Value::Null) };
        match &field.ty {
            Ty::Repeated(elem) => {
                let items = self.repeated(elem, values, depth)?;
                Ok(if items.is_empty() { absent() } else { Some(Value::Array(items)) })
            }
            Ty::Map(key, value) => {
                let map = self.map(key, value, values, depth)?;
                Ok(if map.is_empty() { absent() } else { Some(Value::Object(map)) })
            }
            ty @ (Ty::Message(_) | Ty::Special(_) | Ty::Wrapper(_)) => {
                if values.is_empty() && field.pointer {
                    return Ok(absent());
                }
                // A non-pointer struct is always encoded by Go, even with omitempty.
                let bytes = merged(values)?;
                self.embedded(ty, &bytes, depth).map(Some)
            }
            Ty::Bytes => match values.last() {
                None => Ok(absent()),
                Some(Wire::Bytes(b)) if b.is_empty() && field.omitempty => Ok(None),
                Some(v) => self.scalar(&field.ty, v).map(Some),
            },
            ty => match values.last() {
                None if field.pointer || field.omitempty => Ok(absent()),
                None => Ok(Some(zero_scalar(ty))),
                Some(v) => {
                    let value = self.scalar(ty, v)?;
                    let omit = field.omitempty && !field.pointer && is_zero(&value);
                    Ok(if omit { None } else { Some(value) })
                }
            },
        }
    }

    fn repeated(
        &self,
        elem: &Ty,
        values: &[Wire<'_>],
        depth: usize,
    ) -> Result<Vec<Value>, ProtobufError> {
        let mut items = Vec::with_capacity(values.len());
        for v in values {
            match v {
                // packed repeated scalars: one length-delimited run of values
                Wire::Bytes(run) if is_scalar_number(elem) => {
                    let mut reader = Reader::new(run);
                    while !reader.is_empty() {
                        let wire = match elem {
                            Ty::Float64 => Wire::Fixed64(reader.fixed64()?),
                            Ty::Float32 => Wire::Fixed32(reader.fixed32()?),
                            _ => Wire::Varint(reader.varint()?),
                        };
                        items.push(self.scalar(elem, &wire)?);
                    }
                }
                v => items.push(self.element(elem, v, depth)?),
            }
        }
        Ok(items)
    }

    fn map(
        &self,
        key: &Ty,
        value: &Ty,
        entries: &[Wire<'_>],
        depth: usize,
    ) -> Result<Map<String, Value>, ProtobufError> {
        // Go's encoder sorts map keys; a repeated key keeps the last value, as in Go.
        let mut sorted: BTreeMap<String, Value> = BTreeMap::new();
        for entry in entries {
            let Wire::Bytes(entry) = entry else { return Err(wrong_wire("map entry", entry)) };
            let fields = collect(entry)?;
            let k = match fields.get(&1).and_then(|v| v.last()) {
                Some(w) => self.scalar(key, w)?,
                None => zero_scalar(key),
            };
            let k = match k {
                Value::String(s) => s,
                other => other.to_string(),
            };
            let v = match fields.get(&2) {
                Some(values)
                    if !matches!(value, Ty::Message(_) | Ty::Special(_) | Ty::Wrapper(_)) =>
                {
                    let last = values.last().expect("an entry in the map has at least one value");
                    self.element(value, last, depth)?
                }
                Some(values) => self.embedded(value, &merged(values)?, depth)?,
                None => match value {
                    Ty::Bytes => Value::String(String::new()),
                    Ty::Message(_) | Ty::Special(_) | Ty::Wrapper(_) => {
                        self.embedded(value, &[], depth)?
                    }
                    scalar => zero_scalar(scalar),
                },
            };
            sorted.insert(k, v);
        }
        Ok(sorted.into_iter().collect())
    }

    /// One list element or map value.
    fn element(&self, ty: &Ty, v: &Wire<'_>, depth: usize) -> Result<Value, ProtobufError> {
        match (ty, v) {
            (Ty::Message(_) | Ty::Special(_) | Ty::Wrapper(_), Wire::Bytes(b)) => {
                self.embedded(ty, b, depth)
            }
            (Ty::Message(_) | Ty::Special(_) | Ty::Wrapper(_), other) => {
                Err(wrong_wire("message", other))
            }
            (Ty::Repeated(_) | Ty::Map(..), _) => Err(ProtobufError::malformed(
                "nested lists are not part of the Kubernetes protobuf encoding",
            )),
            (scalar, v) => self.scalar(scalar, v),
        }
    }

    /// An embedded message, special type or slice wrapper.
    fn embedded(&self, ty: &Ty, bytes: &[u8], depth: usize) -> Result<Value, ProtobufError> {
        match ty {
            Ty::Message(index) => self.message(*index, bytes, depth + 1).map(Value::Object),
            Ty::Special(special) => self.special(*special, bytes, depth + 1),
            Ty::Wrapper(elem) => {
                let fields = collect(bytes)?;
                let values = fields.get(&1).map(Vec::as_slice).unwrap_or(&[]);
                let items = self.repeated(elem, values, depth + 1)?;
                // a nil named slice is `null` in Go's JSON
                Ok(if items.is_empty() { Value::Null } else { Value::Array(items) })
            }
            _ => Err(ProtobufError::malformed("expected an embedded message")),
        }
    }

    fn scalar(&self, ty: &Ty, v: &Wire<'_>) -> Result<Value, ProtobufError> {
        // Truncating casts below are protobuf's own rules for narrowing a varint.
        #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
        let value = match (ty, *v) {
            (Ty::String, Wire::Bytes(b)) => Value::String(String::from_utf8_lossy(b).into_owned()),
            (Ty::Bytes, Wire::Bytes(b)) => {
                Value::String(base64::engine::general_purpose::STANDARD.encode(b))
            }
            (Ty::Bool, Wire::Varint(n)) => Value::Bool(n != 0),
            (Ty::Int32, Wire::Varint(n)) => Value::from(n as i64 as i32),
            (Ty::Int64, Wire::Varint(n)) => Value::from(n as i64),
            (Ty::Uint32, Wire::Varint(n)) => Value::from(n as u32),
            (Ty::Uint64, Wire::Varint(n)) => Value::from(n),
            (Ty::Float64, Wire::Fixed64(bits)) => go_float(f64::from_bits(bits))
                .ok_or_else(|| ProtobufError::malformed("NaN or infinite number"))?,
            (Ty::Float32, Wire::Fixed32(bits)) => go_float(f64::from(f32::from_bits(bits)))
                .ok_or_else(|| ProtobufError::malformed("NaN or infinite number"))?,
            (ty, other) => return Err(wrong_wire(&format!("{ty:?}"), &other)),
        };
        Ok(value)
    }

    fn special(
        &self,
        special: Special,
        bytes: &[u8],
        depth: usize,
    ) -> Result<Value, ProtobufError> {
        let fields = collect(bytes)?;
        let int = |n: u32| -> Result<i64, ProtobufError> {
            match fields.get(&n).and_then(|v| v.last()) {
                None => Ok(0),
                #[allow(clippy::cast_possible_wrap)] // protobuf int64 is two's complement
                Some(Wire::Varint(v)) => Ok(*v as i64),
                Some(other) => Err(wrong_wire("varint", other)),
            }
        };
        let raw = |n: u32| -> Result<Option<&[u8]>, ProtobufError> {
            match fields.get(&n).and_then(|v| v.last()) {
                None => Ok(None),
                Some(Wire::Bytes(b)) => Ok(Some(*b)),
                Some(other) => Err(wrong_wire("bytes", other)),
            }
        };
        let schema = || -> Result<usize, ProtobufError> {
            self.table
                .message("apiextensions/v1.JSONSchemaProps")
                .ok_or_else(|| ProtobufError::malformed("JSONSchemaProps missing from the table"))
        };
        match special {
            Special::Time | Special::MicroTime => {
                // upstream decodes an empty message as the zero time, which Go writes as null
                let seconds = int(1)?;
                let micros = (special == Special::MicroTime).then(|| {
                    let nanos = int(2).unwrap_or(0);
                    u32::try_from(nanos.rem_euclid(1_000_000_000) / 1_000).unwrap_or(0)
                });
                if bytes.is_empty() || (seconds == GO_ZERO_TIME_SECONDS && micros.unwrap_or(0) == 0)
                {
                    return Ok(Value::Null);
                }
                rfc3339(seconds, micros).map(Value::String).ok_or_else(|| {
                    ProtobufError::malformed(format!("time {seconds}s is outside years 0-9999"))
                })
            }
            Special::Duration => Ok(Value::String(go_duration(int(1)?))),
            // the string is written by upstream's Quantity.String(), already canonical
            Special::Quantity => Ok(Value::String(match raw(1)? {
                Some(s) if !s.is_empty() => String::from_utf8_lossy(s).into_owned(),
                _ => "0".to_owned(),
            })),
            Special::IntOrString => Ok(if int(1)? == 1 {
                Value::String(String::from_utf8_lossy(raw(3)?.unwrap_or_default()).into_owned())
            } else {
                #[allow(clippy::cast_possible_truncation)] // intVal is an int32
                Value::from(int(2)? as i32)
            }),
            Special::RawExtension | Special::FieldsV1 | Special::Json => match raw(1)? {
                None | Some([]) => Ok(Value::Null),
                Some(json) => serde_json::from_slice(json)
                    .map_err(|source| ProtobufError::InvalidJson { path: String::new(), source }),
            },
            Special::PropsOrArray => {
                let index = schema()?;
                let many = fields.get(&2).map(Vec::as_slice).unwrap_or(&[]);
                let items = self.repeated(&Ty::Message(index), many, depth)?;
                if !items.is_empty() {
                    return Ok(Value::Array(items));
                }
                self.optional_schema(index, fields.get(&1), depth)
            }
            Special::PropsOrBool => {
                let index = schema()?;
                if fields.contains_key(&2) {
                    return self.optional_schema(index, fields.get(&2), depth);
                }
                Ok(Value::Bool(int(1)? != 0))
            }
            Special::PropsOrStringArray => {
                let index = schema()?;
                let names = fields.get(&2).map(Vec::as_slice).unwrap_or(&[]);
                let names = self.repeated(&Ty::String, names, depth)?;
                if !names.is_empty() {
                    return Ok(Value::Array(names));
                }
                self.optional_schema(index, fields.get(&1), depth)
            }
        }
    }

    fn optional_schema(
        &self,
        index: usize,
        values: Option<&Vec<Wire<'_>>>,
        depth: usize,
    ) -> Result<Value, ProtobufError> {
        match values {
            None => Ok(Value::Null),
            Some(values) => self.message(index, &merged(values)?, depth + 1).map(Value::Object),
        }
    }
}

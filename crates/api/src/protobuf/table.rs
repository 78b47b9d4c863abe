//! The field table generated from upstream's Go struct tags by `gen_table.py`, parsed once.

use std::collections::HashMap;
use std::sync::LazyLock;

/// Types whose protobuf and JSON encodings are hand-written upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Special {
    Time,
    MicroTime,
    Duration,
    Quantity,
    IntOrString,
    RawExtension,
    FieldsV1,
    Json,
    PropsOrArray,
    PropsOrBool,
    PropsOrStringArray,
}

/// The type of a field (or of a list element or map key/value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ty {
    String,
    Bool,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Float32,
    Float64,
    Bytes,
    Special(Special),
    /// Index into [`Table::messages`].
    Message(usize),
    /// A named Go slice wrapped in a message whose field 1 holds the items.
    Wrapper(Box<Ty>),
    Repeated(Box<Ty>),
    Map(Box<Ty>, Box<Ty>),
}

#[derive(Debug, Clone)]
pub(super) struct Field {
    pub(super) number: u32,
    /// The JSON name; unused for inline fields.
    pub(super) json: String,
    pub(super) omitempty: bool,
    pub(super) pointer: bool,
    /// An embedded struct whose fields Go's JSON encoder flattens into the parent.
    pub(super) inline: bool,
    pub(super) ty: Ty,
}

#[derive(Debug, Clone)]
pub(super) struct Message {
    pub(super) name: String,
    /// In Go declaration order, which is the order of Go's JSON output.
    pub(super) fields: Vec<Field>,
}

#[derive(Debug)]
pub(super) struct Table {
    pub(super) messages: Vec<Message>,
    by_name: HashMap<String, usize>,
    kinds: HashMap<(String, String), usize>,
}

impl Table {
    /// The message of a top-level kind.
    pub(super) fn kind(&self, api_version: &str, kind: &str) -> Option<usize> {
        self.kinds.get(&(api_version.to_owned(), kind.to_owned())).copied()
    }

    pub(super) fn message(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// Every `(apiVersion, kind)` the table decodes.
    pub(super) fn kinds(&self) -> impl Iterator<Item = (&str, &str)> {
        self.kinds.keys().map(|(v, k)| (v.as_str(), k.as_str()))
    }
}

const TABLE_TEXT: &str = include_str!("table.txt");

/// The parsed table. The text is generated and committed with the code, and a unit test
/// parses it, so a parse failure is a build defect.
pub(super) static TABLE: LazyLock<Table> =
    LazyLock::new(|| parse(TABLE_TEXT).expect("the generated protobuf table parses"));

/// Parses the table text (format documented in `gen_table.py`).
pub(super) fn parse(text: &str) -> Result<Table, String> {
    let mut by_name = HashMap::new();
    let mut names = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("M ") {
            by_name.insert(name.to_owned(), names.len());
            names.push(name.to_owned());
        }
    }
    let mut messages: Vec<Message> =
        names.into_iter().map(|name| Message { name, fields: Vec::new() }).collect();
    let mut kinds = HashMap::new();
    let mut current: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let words: Vec<&str> = line.split(' ').collect();
        let bad = || format!("line {}: cannot parse {line:?}", n + 1);
        match words.as_slice() {
            ["#", ..] | [""] => {}
            ["K", api_version, kind, message] => {
                let index = *by_name.get(*message).ok_or_else(bad)?;
                kinds.insert(((*api_version).to_owned(), (*kind).to_owned()), index);
            }
            ["M", name] => current = by_name.get(*name).copied(),
            ["F", number, json, flags, ty] => {
                let message = current.ok_or_else(bad)?;
                let field = Field {
                    number: number.parse().map_err(|_| bad())?,
                    json: (*json).to_owned(),
                    omitempty: flags.contains('o'),
                    pointer: flags.contains('p'),
                    inline: flags.contains('i'),
                    ty: parse_ty(ty, &by_name).ok_or_else(bad)?,
                };
                messages[message].fields.push(field);
            }
            _ => return Err(bad()),
        }
    }
    Ok(Table { messages, by_name, kinds })
}

fn parse_ty(text: &str, by_name: &HashMap<String, usize>) -> Option<Ty> {
    if let Some(elem) = text.strip_prefix("[]") {
        return Some(Ty::Repeated(Box::new(parse_ty(elem, by_name)?)));
    }
    if let Some(elem) = text.strip_prefix('~') {
        return Some(Ty::Wrapper(Box::new(parse_ty(elem, by_name)?)));
    }
    if let Some(rest) = text.strip_prefix("map[") {
        let (key, value) = rest.split_once(']')?;
        return Some(Ty::Map(
            Box::new(parse_ty(key, by_name)?),
            Box::new(parse_ty(value, by_name)?),
        ));
    }
    let ty = match text {
        "string" => Ty::String,
        "bool" => Ty::Bool,
        "int32" => Ty::Int32,
        "int64" => Ty::Int64,
        "uint32" => Ty::Uint32,
        "uint64" => Ty::Uint64,
        "float32" => Ty::Float32,
        "float64" => Ty::Float64,
        "bytes" => Ty::Bytes,
        "@Time" => Ty::Special(Special::Time),
        "@MicroTime" => Ty::Special(Special::MicroTime),
        "@Duration" => Ty::Special(Special::Duration),
        "@Quantity" => Ty::Special(Special::Quantity),
        "@IntOrString" => Ty::Special(Special::IntOrString),
        "@RawExtension" => Ty::Special(Special::RawExtension),
        "@FieldsV1" => Ty::Special(Special::FieldsV1),
        "@JSON" => Ty::Special(Special::Json),
        "@PropsOrArray" => Ty::Special(Special::PropsOrArray),
        "@PropsOrBool" => Ty::Special(Special::PropsOrBool),
        "@PropsOrStringArray" => Ty::Special(Special::PropsOrStringArray),
        name => Ty::Message(*by_name.get(name)?),
    };
    Some(ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_table_parses_and_knows_the_served_kinds() {
        let table = parse(TABLE_TEXT).expect("table parses");
        for r in crate::resources::RESOURCES {
            assert!(
                table.kind(&r.api_version(), r.kind).is_some(),
                "no protobuf table entry for {} {}",
                r.api_version(),
                r.kind
            );
        }
        for (api_version, kind) in [
            ("meta.k8s.io/v1", "DeleteOptions"),
            ("autoscaling/v1", "Scale"),
            ("policy/v1", "Eviction"),
            ("authentication.k8s.io/v1", "TokenRequest"),
            ("v1", "Binding"),
        ] {
            assert!(table.kind(api_version, kind).is_some(), "{api_version} {kind}");
        }
    }

    #[test]
    fn fields_keep_go_declaration_order_and_flags() {
        let table = parse(TABLE_TEXT).expect("table parses");
        let spec = &table.messages[table.message("apps/v1.DeploymentSpec").expect("known")];
        let names: Vec<&str> = spec.fields.iter().map(|f| f.json.as_str()).collect();
        assert_eq!(&names[..4], ["replicas", "selector", "template", "strategy"]);
        let replicas = &spec.fields[0];
        assert_eq!((replicas.number, replicas.pointer, replicas.omitempty), (1, true, true));
        assert_eq!(replicas.ty, Ty::Int32);
    }

    #[test]
    fn rejects_dangling_message_references() {
        assert!(parse("M a.B\nF 1 x - a.Missing\n").is_err());
        assert!(parse("F 1 x - string\n").is_err(), "a field outside a message");
    }
}

//! Upstream's merge metadata for every definition property (patch strategy, merge key, list
//! type, list map keys, map type) and for every definition (required properties, map type).
//!
//! `k8s-openapi` drops these `x-kubernetes-*` extensions, so they come from a table
//! (`patch_meta.tsv`) that `gen_patch_meta.py` prints from kube-apiserver v1.33's swagger
//! document. The table is exactly upstream's: regenerate it rather than editing it.

use std::collections::HashMap;
use std::sync::LazyLock;

/// The generated table; see `gen_patch_meta.py` for its format.
const TABLE: &str = include_str!("patch_meta.tsv");

/// The `x-kubernetes-patch-strategy` of a field: any of `merge`, `retainKeys`, `replace`
/// (upstream writes combinations as `merge,retainKeys`). All false means "replace the whole
/// value", the default for fields without a strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PatchStrategy {
    pub merge: bool,
    pub retain_keys: bool,
    pub replace: bool,
}

impl PatchStrategy {
    fn parse(text: &str) -> PatchStrategy {
        let mut strategy = PatchStrategy::default();
        for part in text.split(',') {
            match part {
                "merge" => strategy.merge = true,
                "retainKeys" => strategy.retain_keys = true,
                "replace" => strategy.replace = true,
                _ => {}
            }
        }
        strategy
    }

    /// Whether no strategy is set.
    pub fn is_empty(&self) -> bool {
        *self == PatchStrategy::default()
    }

    /// The extension value upstream writes: `merge`, `retainKeys`, `merge,retainKeys`, ...
    pub fn as_extension(&self) -> String {
        let mut parts = Vec::new();
        if self.merge {
            parts.push("merge");
        }
        if self.retain_keys {
            parts.push("retainKeys");
        }
        if self.replace {
            parts.push("replace");
        }
        parts.join(",")
    }
}

/// `x-kubernetes-list-type`: how server-side apply treats a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    /// The list is one value, replaced whole.
    Atomic,
    /// Scalar items, each owned on its own.
    Set,
    /// Object items identified by their `list_map_keys`.
    Map,
}

impl ListType {
    pub fn as_str(&self) -> &'static str {
        match self {
            ListType::Atomic => "atomic",
            ListType::Set => "set",
            ListType::Map => "map",
        }
    }
}

/// `x-kubernetes-map-type`: whether a map or struct is merged key by key or replaced whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    Atomic,
    Granular,
}

impl MapType {
    pub fn as_str(&self) -> &'static str {
        match self {
            MapType::Atomic => "atomic",
            MapType::Granular => "granular",
        }
    }
}

/// The merge metadata of one property of one definition, as upstream declares it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldMeta {
    /// `x-kubernetes-patch-strategy` (strategic merge patch).
    pub patch_strategy: PatchStrategy,
    /// `x-kubernetes-patch-merge-key` (strategic merge patch), e.g. `name`, `containerPort`.
    pub patch_merge_key: Option<&'static str>,
    /// `x-kubernetes-list-type` (server-side apply).
    pub list_type: Option<ListType>,
    /// `x-kubernetes-list-map-keys` (server-side apply), empty unless `list_type` is `Map`.
    pub list_map_keys: Vec<&'static str>,
    /// `x-kubernetes-map-type` (server-side apply).
    pub map_type: Option<MapType>,
}

impl FieldMeta {
    /// The `x-kubernetes-*` extensions of this metadata, in the alphabetical order upstream
    /// serialises them.
    pub fn extensions(&self) -> Vec<(&'static str, serde_json::Value)> {
        let mut out = Vec::new();
        if !self.list_map_keys.is_empty() {
            out.push((
                "x-kubernetes-list-map-keys",
                self.list_map_keys.clone().into(),
            ));
        }
        if let Some(list_type) = self.list_type {
            out.push(("x-kubernetes-list-type", list_type.as_str().into()));
        }
        if let Some(map_type) = self.map_type {
            out.push(("x-kubernetes-map-type", map_type.as_str().into()));
        }
        if let Some(key) = self.patch_merge_key {
            out.push(("x-kubernetes-patch-merge-key", key.into()));
        }
        if !self.patch_strategy.is_empty() {
            out.push((
                "x-kubernetes-patch-strategy",
                self.patch_strategy.as_extension().into(),
            ));
        }
        out
    }
}

/// What upstream declares about a whole definition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DefinitionMeta {
    /// The required properties, in upstream's order.
    pub required: Vec<&'static str>,
    /// `x-kubernetes-map-type` of the struct itself (`atomic` on `LabelSelector`).
    pub map_type: Option<MapType>,
}

/// The property name under which a definition's own line is filed in the table.
const SELF: &str = ".";

/// definition -> property -> metadata, and definition -> its own metadata.
#[derive(Debug, Default)]
pub(crate) struct Table {
    pub properties: HashMap<&'static str, HashMap<&'static str, FieldMeta>>,
    pub definitions: HashMap<&'static str, DefinitionMeta>,
}

pub(crate) static META: LazyLock<Table> = LazyLock::new(|| parse(TABLE));

fn optional(cell: &'static str) -> Option<&'static str> {
    (cell != "-" && !cell.is_empty()).then_some(cell)
}

fn list(cell: &'static str) -> Vec<&'static str> {
    optional(cell)
        .map(|k| k.split(',').collect())
        .unwrap_or_default()
}

fn map_type(cell: &'static str) -> Option<MapType> {
    match optional(cell)? {
        "atomic" => Some(MapType::Atomic),
        "granular" => Some(MapType::Granular),
        _ => None,
    }
}

fn parse(text: &'static str) -> Table {
    let mut table = Table::default();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let cells: Vec<&'static str> = line.split('\t').collect();
        let [definition, property, strategy, merge_key, list_type, map_keys, map_type_cell] =
            cells[..]
        else {
            // The table is generated; a malformed line is skipped rather than trusted.
            continue;
        };
        if property == SELF {
            let meta = DefinitionMeta {
                required: list(map_keys),
                map_type: map_type(map_type_cell),
            };
            table.definitions.insert(definition, meta);
            continue;
        }
        let meta = FieldMeta {
            patch_strategy: optional(strategy)
                .map(PatchStrategy::parse)
                .unwrap_or_default(),
            patch_merge_key: optional(merge_key),
            list_type: optional(list_type).and_then(|t| match t {
                "atomic" => Some(ListType::Atomic),
                "set" => Some(ListType::Set),
                "map" => Some(ListType::Map),
                _ => None,
            }),
            list_map_keys: list(map_keys),
            map_type: map_type(map_type_cell),
        };
        table
            .properties
            .entry(definition)
            .or_default()
            .insert(property, meta);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_combined_strategies_and_key_lists() {
        let table = parse(
            "# header\nio.x.A\tvolumes\tmerge,retainKeys\tname\tmap\tname,protocol\t-\n\
             io.x.A\t.\t-\t-\t-\tname,kind\tatomic\n",
        );
        let volumes = &table.properties["io.x.A"]["volumes"];
        assert!(volumes.patch_strategy.merge && volumes.patch_strategy.retain_keys);
        assert!(!volumes.patch_strategy.replace);
        assert_eq!(volumes.patch_strategy.as_extension(), "merge,retainKeys");
        assert_eq!(volumes.patch_merge_key, Some("name"));
        assert_eq!(volumes.list_type, Some(ListType::Map));
        assert_eq!(volumes.list_map_keys, vec!["name", "protocol"]);
        let own = &table.definitions["io.x.A"];
        assert_eq!(own.map_type, Some(MapType::Atomic));
        assert_eq!(own.required, vec!["name", "kind"]);
    }

    #[test]
    fn the_committed_table_is_non_trivial_and_well_formed() {
        let rows: usize =
            META.properties.values().map(HashMap::len).sum::<usize>() + META.definitions.len();
        let lines = TABLE.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(
            rows, lines,
            "every line of patch_meta.tsv parses into one entry"
        );
        assert!(rows > 1000, "only {rows} rows");
    }
}

//! Label selector, node selector and toleration matching over k8s-openapi types, as
//! apimachinery's `LabelSelectorAsSelector` and component-helpers' `nodeaffinity` do.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, NodeSelectorTerm, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Labels of an object (empty when absent).
pub type Labels = BTreeMap<String, String>;

/// Whether `selector` selects `labels`. An empty selector selects everything; `None`
/// selects nothing (as `LabelSelectorAsSelector(nil)` = `labels.Nothing()`).
pub fn label_selector_matches(selector: Option<&LabelSelector>, labels: &Labels) -> bool {
    let Some(selector) = selector else { return false };
    if let Some(ml) = &selector.match_labels {
        if !ml.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return false;
        }
    }
    selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let got = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => got.is_some_and(|v| values.contains(v)),
            "NotIn" => got.is_none_or(|v| !values.contains(v)),
            "Exists" => got.is_some(),
            "DoesNotExist" => got.is_none(),
            _ => false,
        }
    })
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&String>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), [bound]) = (value, values) else { return false };
            match (v.parse::<i64>(), bound.parse::<i64>()) {
                (Ok(v), Ok(b)) => if r.operator == "Gt" { v > b } else { v < b },
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether one node selector term matches (all its expressions and fields). A term with
/// neither expressions nor fields matches nothing, as upstream.
pub fn node_selector_term_matches(term: &NodeSelectorTerm, node: &Node, labels: &Labels) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let name = node.metadata.name.clone();
    exprs.iter().all(|r| requirement_matches(r, labels.get(&r.key)))
        && fields.iter().all(|r| r.key == "metadata.name" && requirement_matches(r, name.as_ref()))
}

/// Terms are ORed.
pub fn node_selector_terms_match(terms: &[NodeSelectorTerm], node: &Node, labels: &Labels) -> bool {
    terms.iter().any(|t| node_selector_term_matches(t, node, labels))
}

/// `Toleration.ToleratesTaint` from k8s.io/api/core/v1.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    let key = t.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => t.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn label_selectors_match_labels_and_expressions() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        assert!(!label_selector_matches(None, &l));
        assert!(label_selector_matches(Some(&LabelSelector::default()), &l));
        let sel = LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "NotIn".into(),
                values: Some(vec!["back".into()]),
            }]),
        };
        assert!(label_selector_matches(Some(&sel), &l));
        assert!(!label_selector_matches(Some(&sel), &labels(&[("app", "web"), ("tier", "back")])));
    }

    #[test]
    fn node_selector_operators_gt_lt_and_fields() {
        let node = Node { metadata: kube::api::ObjectMeta { name: Some("n1".into()), ..Default::default() }, ..Default::default() };
        let l = labels(&[("cores", "8")]);
        let req = |op: &str, v: &[&str]| NodeSelectorRequirement {
            key: "cores".into(),
            operator: op.into(),
            values: Some(v.iter().map(|s| s.to_string()).collect()),
        };
        let term = |r: NodeSelectorRequirement| NodeSelectorTerm { match_expressions: Some(vec![r]), match_fields: None };
        assert!(node_selector_term_matches(&term(req("Gt", &["4"])), &node, &l));
        assert!(!node_selector_term_matches(&term(req("Lt", &["4"])), &node, &l));
        assert!(!node_selector_term_matches(&term(req("Gt", &["x"])), &node, &l));
        assert!(node_selector_term_matches(&term(req("DoesNotExist", &[])), &node, &Labels::new()));
        let by_name = NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![NodeSelectorRequirement { key: "metadata.name".into(), operator: "In".into(), values: Some(vec!["n1".into()]) }]),
        };
        assert!(node_selector_term_matches(&by_name, &node, &l));
        assert!(!node_selector_term_matches(&NodeSelectorTerm::default(), &node, &l));
    }

    #[test]
    fn tolerations_follow_upstream_rules() {
        let taint = Taint { key: "dedicated".into(), value: Some("gpu".into()), effect: "NoSchedule".into(), time_added: None };
        let t = |key: Option<&str>, op: Option<&str>, value: Option<&str>, effect: Option<&str>| Toleration {
            key: key.map(Into::into),
            operator: op.map(Into::into),
            value: value.map(Into::into),
            effect: effect.map(Into::into),
            toleration_seconds: None,
        };
        assert!(tolerates(&t(Some("dedicated"), None, Some("gpu"), None), &taint));
        assert!(!tolerates(&t(Some("dedicated"), None, Some("cpu"), None), &taint));
        assert!(tolerates(&t(None, Some("Exists"), None, None), &taint));
        assert!(!tolerates(&t(Some("dedicated"), Some("Exists"), None, Some("NoExecute")), &taint));
    }
}

//! Randomised hostile-input tests of every parser the API server feeds with client bytes:
//! label and field selectors, the three patch engines, the JSON / YAML / protobuf body
//! decoders, field validation and defaulting. Each input must give `Ok` or `Err`, never a
//! panic, a hang or a stack overflow.
//!
//! Inputs are mutations of a seed corpus (the same one `fuzz/corpus/` holds for cargo-fuzz)
//! and random JSON documents, from a seeded generator: a failure prints the seed and the
//! iteration, which replay it. `cargo test` runs a few hundred iterations per target;
//! `RKUBE_FUZZ_ITERS=200000 cargo test -p rkube-apiserver --test fuzz --release` runs longer,
//! and `RKUBE_FUZZ_SEED=<n>` picks the seed.

use rkube_api::{fieldvalidation, protobuf, resources, schema, selector, strategic};
use rkube_apiserver::registry::{apply_patch, PatchType};
use serde_json::{json, Map, Value};

/// xorshift64*: small, seeded, good enough to explore inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn iterations() -> usize {
    std::env::var("RKUBE_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
}

fn seed() -> u64 {
    std::env::var("RKUBE_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed_1234_abcd_0001)
}

/// Tokens that steer mutations toward interesting syntax.
const TOKENS: &[&str] = &[
    "[", "]", "{", "}", "\"", ",", ":", "null", "true", "-1", "1e999", "\\u0000", "in (", "notin (", ")", "!",
    "!=", "==", "=", "a/b", ".", "$patch", "\"$patch\":\"delete\"", "\"$retainKeys\":[]",
    "\"$setElementOrder/containers\":[{\"name\":\"a\"}]", "\"$deleteFromPrimitiveList/finalizers\":[\"x\"]",
    "---\n", "- ", ": ", "&a ", "*a", "!!binary ", "\t", "\n", "\u{feff}", "\u{10ffff}",
];

/// A random mutation of `input`: byte flips, token inserts, deletions and duplications.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(out.len() + 1);
        match rng.below(6) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => {
                let t = rng.pick(TOKENS).as_bytes().to_vec();
                out.splice(at..at, t);
            }
            2 if !out.is_empty() => {
                let end = (at + rng.below(16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            3 if !out.is_empty() => {
                let start = rng.below(out.len());
                let end = (start + rng.below(64)).min(out.len());
                let chunk = out[start..end].to_vec();
                out.splice(at..at, chunk);
            }
            4 => {
                let t = rng.pick(TOKENS).repeat(1 + rng.below(200));
                out.splice(at..at, t.into_bytes());
            }
            _ => out.push(rng.next() as u8),
        }
    }
    out.truncate(64 * 1024);
    out
}

/// A random JSON value, at most `depth` deep, with keys that exist in Kubernetes schemas.
fn random_value(rng: &mut Rng, depth: usize) -> Value {
    const KEYS: &[&str] = &[
        "metadata", "spec", "status", "name", "labels", "containers", "image", "ports", "containerPort",
        "env", "value", "template", "selector", "matchLabels", "replicas", "finalizers", "volumes",
        "$patch", "$retainKeys", "$setElementOrder/containers", "$deleteFromPrimitiveList/finalizers",
        "bogus", "data", "items", "key", "",
    ];
    let kind = if depth == 0 { rng.below(5) } else { rng.below(7) };
    match kind {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 1),
        2 => json!(rng.next() as i64 >> rng.below(64)),
        3 => json!(*rng.pick(&["", "a", "delete", "replace", "merge", "x/y", "10Gi", "25%"])),
        4 => json!(rng.below(100) as f64 / 7.0),
        5 => Value::Array((0..rng.below(4)).map(|_| random_value(rng, depth - 1)).collect()),
        _ => {
            let mut m = Map::new();
            for _ in 0..rng.below(5) {
                m.insert((*rng.pick(KEYS)).to_owned(), random_value(rng, depth - 1));
            }
            Value::Object(m)
        }
    }
}

const SELECTOR_SEEDS: &[&str] = &[
    "app=web", "app in (a,b),tier notin (x),!legacy", "env!=prod,app", "a.b/c==d", "x in ()",
    "metadata.name=web,status.phase!=Running", "spec.nodeName=", "a=b,c", "(", "!", "",
];

#[test]
fn label_and_field_selectors_never_panic() {
    let mut rng = Rng(seed());
    let labels = [("app".to_owned(), "web".to_owned())].into_iter().collect();
    for i in 0..iterations() * 10 {
        let base = *rng.pick(SELECTOR_SEEDS);
        let input = mutate(&mut rng, base.as_bytes());
        let text = String::from_utf8_lossy(&input);
        let label = std::panic::catch_unwind(|| {
            if let Ok(sel) = selector::LabelSelector::parse(&text) {
                sel.matches(&labels);
                // what we print, we parse again to the same selector
                let printed = sel.to_string();
                let again = selector::LabelSelector::parse(&printed)
                    .unwrap_or_else(|e| panic!("printed selector {printed:?} does not parse: {e}"));
                assert_eq!(again.to_string(), printed);
            }
            if let Ok(sel) = selector::FieldSelector::parse(&text) {
                let _ = sel.to_string();
                let _ = sel.fields();
            }
        });
        assert!(label.is_ok(), "seed {} iteration {i}: input {text:?}", seed());
    }
}

fn patch_targets() -> Vec<(Value, &'static str)> {
    vec![
        (
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"a": "b"}, "finalizers": ["x", "y"]},
                   "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a", "image": "i", "ports": [{"containerPort": 80}]}, {"name": "b"}]}}}}),
            "io.k8s.api.apps.v1.Deployment",
        ),
        (json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}), "io.k8s.api.core.v1.ConfigMap"),
    ]
}

#[test]
fn the_three_patch_engines_never_panic() {
    let mut rng = Rng(seed() ^ 1);
    let defs = schema::definitions();
    for i in 0..iterations() * 3 {
        for (target, def) in patch_targets() {
            let patch = random_value(&mut rng, 6);
            let merge = std::panic::catch_unwind(|| {
                let _ = strategic::json_merge(&target, &patch);
                let _ = strategic::strategic_merge(&target, &patch, defs, def);
                let _ = apply_patch(PatchType::Merge, &target, &patch, def);
                let _ = apply_patch(PatchType::Strategic, &target, &patch, def);
            });
            assert!(merge.is_ok(), "seed {} iteration {i}: patch {patch}", seed());
            // JSON patch operations over paths that exist and paths that do not
            let ops: Vec<Value> = (0..1 + rng.below(4))
                .map(|_| {
                    let path = rng.pick(&["", "/", "/metadata", "/metadata/labels/a", "/spec/template/spec/containers/0",
                                          "/spec/template/spec/containers/-", "/data/k", "/x/y/z", "/metadata/finalizers/1", "~1", "/spec/replicas/0"]);
                    let from = rng.pick(&["/metadata", "/spec", "/data", "/metadata/labels", "/nope", ""]);
                    json!({"op": rng.pick(&["add", "remove", "replace", "move", "copy", "test", "bogus"]),
                           "path": path, "from": from, "value": random_value(&mut rng, 3)})
                })
                .collect();
            let ops = Value::Array(ops);
            let jp = std::panic::catch_unwind(|| {
                let _ = apply_patch(PatchType::Json, &target, &ops, def);
            });
            assert!(jp.is_ok(), "seed {} iteration {i}: json patch {ops}", seed());
        }
    }
}

const BODY_SEEDS: &[&str] = &[
    r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","labels":{"x":"y"}},"data":{"k":"v"}}"#,
    r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"w"},"spec":{"replicas":2,"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i","resources":{"limits":{"cpu":"1"}}}]}}}}"#,
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: busybox\n",
];

#[test]
fn body_decoders_field_validation_and_defaulting_never_panic() {
    let mut rng = Rng(seed() ^ 2);
    let pods = resources::find("", "v1", "pods").expect("pods");
    let deployments = resources::find("apps", "v1", "deployments").expect("deployments");
    let protobuf_seeds: Vec<Vec<u8>> = {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/src/protobuf/testdata");
        std::fs::read_dir(&dir)
            .map(|rd| rd.filter_map(|e| e.ok()).filter(|e| e.path().extension().is_some_and(|x| x == "pb" || x == "bin")).filter_map(|e| std::fs::read(e.path()).ok()).collect())
            .unwrap_or_default()
    };
    for i in 0..iterations() * 3 {
        let base = *rng.pick(BODY_SEEDS);
        let input = mutate(&mut rng, base.as_bytes());
        let result = std::panic::catch_unwind(|| {
            let _ = fieldvalidation::check_json(&input, "io.k8s.api.apps.v1.Deployment");
            let _ = fieldvalidation::check_yaml(&input, "io.k8s.api.core.v1.Pod");
            if let Ok(mut v) = serde_json::from_slice::<Value>(&input) {
                let _ = fieldvalidation::check_value(&v, "io.k8s.api.core.v1.Pod");
                let _ = rkube_api::defaults::apply(deployments, &mut v.clone());
                let _ = rkube_api::defaults::apply(pods, &mut v);
            }
            if let Ok(mut v) = serde_saphyr::from_slice::<Value>(&input) {
                let _ = rkube_api::defaults::apply(pods, &mut v);
            }
            let _ = protobuf::decode(&input);
        });
        assert!(result.is_ok(), "seed {} iteration {i}: input {:?}", seed(), String::from_utf8_lossy(&input));
        if !protobuf_seeds.is_empty() {
            let base = rng.pick(&protobuf_seeds).clone();
            let pb = mutate(&mut rng, &base);
            let result = std::panic::catch_unwind(|| {
                let _ = protobuf::decode(&pb);
            });
            assert!(result.is_ok(), "seed {} iteration {i}: protobuf {pb:?}", seed());
        }
    }
}

#[test]
fn deep_nesting_is_refused_by_every_decoder_without_overflow() {
    for depth in [200, 10_000, 100_000] {
        let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        for body in [&arrays, &objects] {
            assert!(serde_json::from_slice::<Value>(body.as_bytes()).is_err(), "depth {depth}");
            assert!(fieldvalidation::check_json(body.as_bytes(), "io.k8s.api.core.v1.Pod").is_err());
            assert!(fieldvalidation::check_yaml(body.as_bytes(), "io.k8s.api.core.v1.Pod").is_err());
            assert!(serde_saphyr::from_slice::<Value>(body.as_bytes()).is_err());
        }
        // nested length-delimited protobuf fields: each level a field 1 wrapping the next
        let mut pb: Vec<u8> = Vec::new();
        for _ in 0..depth.min(20_000) {
            let mut outer = vec![0x0a];
            let mut len = pb.len();
            loop {
                let byte = (len & 0x7f) as u8;
                len >>= 7;
                if len == 0 {
                    outer.push(byte);
                    break;
                }
                outer.push(byte | 0x80);
            }
            outer.extend_from_slice(&pb);
            pb = outer;
        }
        let mut body = b"k8s\0".to_vec();
        body.extend_from_slice(&pb);
        let _ = protobuf::decode(&body);
    }
}

/// Found by `the_three_patch_engines_never_panic`: json-patch's undo of a failed patch panicked
/// after a move of a child over its parent.
#[test]
fn a_failed_json_patch_after_a_move_is_an_error_not_a_panic() {
    let (target, def) = patch_targets().remove(0);
    let ops = json!([
        {"op": "move", "path": "/metadata", "from": "/metadata/labels"},
        {"op": "replace", "path": "/spec/template/spec/containers/-", "value": null}
    ]);
    assert!(apply_patch(PatchType::Json, &target, &ops, def).is_err());
    let into_itself = json!([{"op": "move", "from": "/metadata", "path": "/metadata/labels/x"}]);
    assert!(apply_patch(PatchType::Json, &target, &into_itself, def).is_err());
}

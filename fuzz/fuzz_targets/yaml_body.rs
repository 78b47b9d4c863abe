//! A YAML request body: field validation with duplicate keys, then decoding and defaulting.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rkube_api::fieldvalidation;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let _ = fieldvalidation::check_yaml(data, "io.k8s.api.core.v1.Pod");
    if let Ok(mut v) = serde_saphyr::from_slice::<Value>(data) {
        if let Some(info) = rkube_api::resources::find("", "v1", "pods") {
            let _ = rkube_api::defaults::apply(info, &mut v);
        }
    }
});

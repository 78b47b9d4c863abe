//! A JSON request body: field validation over the raw bytes, then decoding and defaulting.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rkube_api::fieldvalidation;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let _ = fieldvalidation::check_json(data, "io.k8s.api.apps.v1.Deployment");
    if let Ok(mut v) = serde_json::from_slice::<Value>(data) {
        let _ = fieldvalidation::check_value(&v, "io.k8s.api.core.v1.Pod");
        for (group, plural) in [("apps", "deployments"), ("", "pods"), ("", "services")] {
            if let Some(info) = rkube_api::resources::find(group, "v1", plural) {
                let _ = rkube_api::defaults::apply(info, &mut v.clone());
            }
        }
        if let Some(info) = rkube_api::resources::find("", "v1", "configmaps") {
            let _ = rkube_api::defaults::apply(info, &mut v);
        }
    }
});

//! A Kubernetes protobuf request body (`k8s\0` envelope + Unknown + the typed message).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rkube_api::protobuf::decode(data);
});

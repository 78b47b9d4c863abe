//! Field selector parsing, and validation against the pod field set.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rkube_api::selector::FieldSelector;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(sel) = FieldSelector::parse(text) {
        let _ = sel.to_string();
        if let Some(pods) = rkube_api::resources::find("", "v1", "pods") {
            let _ = sel.validate_for(pods);
        }
    }
});

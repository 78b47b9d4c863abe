//! discovery.k8s.io/v1 defaults (`pkg/apis/discovery/v1/defaults.go`).

use k8s_openapi::api::discovery::v1::{EndpointConditions, EndpointSlice};

use super::{or_set, or_set_str, Creating, DefaultsError, Target};

pub(super) fn apply(target: Target<'_>) -> Result<(), DefaultsError> {
    match target.kind {
        "EndpointSlice" => target.with(endpoint_slice),
        _ => Ok(()),
    }
}

/// SetDefaults_EndpointPort: name "" and protocol TCP. Endpoint conditions are a plain Go
/// struct, which upstream prints as `conditions: {}`.
fn endpoint_slice(slice: &mut EndpointSlice, _: Creating) {
    for port in slice.ports.iter_mut().flatten() {
        or_set(&mut port.name, String::new());
        or_set_str(&mut port.protocol, "TCP");
    }
    for endpoint in &mut slice.endpoints {
        or_set(&mut endpoint.conditions, EndpointConditions::default());
    }
}

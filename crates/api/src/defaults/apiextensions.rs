//! apiextensions.k8s.io/v1 defaults (`apiextensions-apiserver/pkg/apis/apiextensions/v1`).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, CustomResourceDefinitionStatus,
};

use super::{or_set, Creating, DefaultsError, Target};

pub(super) fn apply(target: Target<'_>) -> Result<(), DefaultsError> {
    match target.kind {
        "CustomResourceDefinition" => target.with(custom_resource_definition),
        _ => Ok(()),
    }
}

/// SetDefaults_CustomResourceDefinition(Spec) and SetDefaults_ServiceReference: singular and
/// listKind names, the None conversion strategy, webhook service port 443, and the storage
/// version in `status.storedVersions`.
fn custom_resource_definition(crd: &mut CustomResourceDefinition, _: Creating) {
    let spec = &mut crd.spec;
    if spec.names.singular.as_deref().is_none_or(str::is_empty) {
        spec.names.singular = Some(spec.names.kind.to_lowercase());
    }
    if spec.names.list_kind.as_deref().is_none_or(str::is_empty) && !spec.names.kind.is_empty() {
        spec.names.list_kind = Some(format!("{}List", spec.names.kind));
    }
    let conversion = spec
        .conversion
        .get_or_insert_with(|| CustomResourceConversion {
            strategy: "None".to_owned(),
            webhook: None,
        });
    let service = conversion
        .webhook
        .as_mut()
        .and_then(|w| w.client_config.as_mut())
        .and_then(|c| c.service.as_mut());
    if let Some(service) = service {
        or_set(&mut service.port, 443);
    }
    let status = crd
        .status
        .get_or_insert_with(CustomResourceDefinitionStatus::default);
    if status.stored_versions.as_ref().is_none_or(Vec::is_empty) {
        if let Some(storage) = crd.spec.versions.iter().find(|v| v.storage) {
            status.stored_versions = Some(vec![storage.name.clone()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
        CustomResourceDefinitionNames, CustomResourceDefinitionSpec,
        CustomResourceDefinitionVersion,
    };

    #[test]
    fn names_conversion_and_stored_versions_are_defaulted() {
        let mut crd = CustomResourceDefinition {
            spec: CustomResourceDefinitionSpec {
                group: "example.com".into(),
                names: CustomResourceDefinitionNames {
                    kind: "Widget".into(),
                    plural: "widgets".into(),
                    ..Default::default()
                },
                scope: "Namespaced".into(),
                versions: vec![
                    CustomResourceDefinitionVersion {
                        name: "v1beta1".into(),
                        served: true,
                        storage: false,
                        ..Default::default()
                    },
                    CustomResourceDefinitionVersion {
                        name: "v1".into(),
                        served: true,
                        storage: true,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            ..Default::default()
        };
        custom_resource_definition(&mut crd, Creating(true));
        assert_eq!(crd.spec.names.singular.as_deref(), Some("widget"));
        assert_eq!(crd.spec.names.list_kind.as_deref(), Some("WidgetList"));
        assert_eq!(crd.spec.conversion.expect("conversion").strategy, "None");
        assert_eq!(
            crd.status.expect("status").stored_versions,
            Some(vec!["v1".to_owned()])
        );
    }
}

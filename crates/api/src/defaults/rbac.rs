//! rbac.authorization.k8s.io/v1 defaults (`pkg/apis/rbac/v1/defaults.go`).

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, Role, RoleBinding, RoleRef, Subject,
};

use super::{DefaultsError, Target};

const GROUP: &str = "rbac.authorization.k8s.io";

pub(super) fn apply(target: Target<'_>) -> Result<(), DefaultsError> {
    match target.kind {
        "RoleBinding" => target.with(|rb: &mut RoleBinding, _| {
            binding(&mut rb.role_ref, rb.subjects.iter_mut().flatten());
        }),
        "ClusterRoleBinding" => target.with(|crb: &mut ClusterRoleBinding, _| {
            binding(&mut crb.role_ref, crb.subjects.iter_mut().flatten());
        }),
        "Role" => target.decode_only::<Role>(),
        "ClusterRole" => target.decode_only::<ClusterRole>(),
        _ => Ok(()),
    }
}

/// SetDefaults_(Cluster)RoleBinding and SetDefaults_Subject: the RBAC group on roleRef, and
/// on User and Group subjects. ServiceAccount subjects get "", which Go omits (`omitempty`),
/// so they are left unset.
fn binding<'a>(role_ref: &mut RoleRef, subjects: impl Iterator<Item = &'a mut Subject>) {
    if role_ref.api_group.is_empty() {
        role_ref.api_group = GROUP.to_owned();
    }
    for subject in subjects {
        if subject.api_group.as_deref().is_none_or(str::is_empty) {
            match subject.kind.as_str() {
                "User" | "Group" => subject.api_group = Some(GROUP.to_owned()),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_get_the_group_of_their_kind() {
        let mut role_ref = RoleRef {
            kind: "Role".into(),
            name: "r".into(),
            ..Default::default()
        };
        let mut subjects = [
            Subject {
                kind: "User".into(),
                name: "jane".into(),
                ..Default::default()
            },
            Subject {
                kind: "ServiceAccount".into(),
                name: "sa".into(),
                namespace: Some("ns".into()),
                ..Default::default()
            },
        ];
        binding(&mut role_ref, subjects.iter_mut());
        assert_eq!(role_ref.api_group, GROUP);
        assert_eq!(subjects[0].api_group.as_deref(), Some(GROUP));
        assert_eq!(subjects[1].api_group, None);
    }
}

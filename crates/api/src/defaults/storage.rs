//! storage.k8s.io/v1 defaults (`pkg/apis/storage/v1/defaults.go`, v1.33 feature gates).

use k8s_openapi::api::storage::v1::{CSIDriver, CSINode, StorageClass, VolumeAttachment};

use super::{or_set, DefaultsError, Target};

pub(super) fn apply(target: Target<'_>) -> Result<(), DefaultsError> {
    match target.kind {
        // SetDefaults_StorageClass: reclaimPolicy Delete, volumeBindingMode Immediate.
        "StorageClass" => target.with(|sc: &mut StorageClass, _| {
            or_set(&mut sc.reclaim_policy, "Delete".to_owned());
            or_set(&mut sc.volume_binding_mode, "Immediate".to_owned());
        }),
        "CSIDriver" => target.with(|driver: &mut CSIDriver, _| csi_driver(driver)),
        "CSINode" => target.decode_only::<CSINode>(),
        "VolumeAttachment" => target.decode_only::<VolumeAttachment>(),
        _ => Ok(()),
    }
}

/// SetDefaults_CSIDriver: attach required, no pod info on mount, no capacity tracking,
/// fsGroupPolicy ReadWriteOnceWithFSType, Persistent lifecycle, no republish, and (with
/// SELinuxMountReadWriteOncePod, on by default since v1.28) no SELinux mount.
fn csi_driver(driver: &mut CSIDriver) {
    let spec = &mut driver.spec;
    or_set(&mut spec.attach_required, true);
    or_set(&mut spec.pod_info_on_mount, false);
    or_set(&mut spec.storage_capacity, false);
    or_set(
        &mut spec.fs_group_policy,
        "ReadWriteOnceWithFSType".to_owned(),
    );
    if spec
        .volume_lifecycle_modes
        .as_ref()
        .is_none_or(Vec::is_empty)
    {
        spec.volume_lifecycle_modes = Some(vec!["Persistent".to_owned()]);
    }
    or_set(&mut spec.requires_republish, false);
    or_set(&mut spec.se_linux_mount, false);
}

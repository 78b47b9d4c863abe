//! Image garbage collection (upstream pkg/kubelet/images/image_gc_manager.go): when the image
//! filesystem's usage reaches `--image-gc-high-threshold` percent, unused images are removed,
//! least recently used first, until usage is down to `--image-gc-low-threshold`.
//!
//! Never removed: images any container uses (in any state), images used at the latest
//! detection, pinned images ([`crate::images::pinned_images`]: containerd 1.6's CRI does not
//! report `pinned`, rkube labels them), the sandbox image and the built-in busybox image, and
//! images first seen less than `--image-minimum-gc-age` ago. A pass that cannot free enough
//! records a `FreeDiskSpaceFailed` warning on the Node; a failed pass after a failed pass an
//! `ImageGCFailed` one, as upstream's kubelet does.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cri::{api, Cri};
use crate::pods::events::Recorder;
use crate::stats::Stats;

/// Upstream's `ImageGCPeriod`.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(300);

/// The GC policy (upstream's defaults: 85, 80, 2m).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub high_threshold_percent: u8,
    pub low_threshold_percent: u8,
    pub min_age: Duration,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy { high_threshold_percent: 85, low_threshold_percent: 80, min_age: Duration::from_secs(120) }
    }
}

impl Policy {
    /// Upstream's validation of the two thresholds.
    pub fn validate(&self) -> Result<(), String> {
        if self.high_threshold_percent > 100 {
            return Err(format!("invalid --image-gc-high-threshold {}: must be between 0 and 100", self.high_threshold_percent));
        }
        if self.low_threshold_percent > 100 {
            return Err(format!("invalid --image-gc-low-threshold {}: must be between 0 and 100", self.low_threshold_percent));
        }
        if self.low_threshold_percent >= self.high_threshold_percent {
            return Err(format!(
                "--image-gc-low-threshold ({}) must be less than --image-gc-high-threshold ({})",
                self.low_threshold_percent, self.high_threshold_percent
            ));
        }
        Ok(())
    }
}

/// An image in the runtime.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub id: String,
    pub tags: Vec<String>,
    pub size: u64,
}

/// What the GC remembers of an image: when it was first seen and last seen in use (ns).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record {
    pub first_detected: i64,
    pub last_used: i64,
}

/// Bytes to free when usage is at or over the high threshold (upstream's arithmetic), else None.
pub fn amount_to_free(capacity: u64, available: u64, policy: &Policy) -> Option<i64> {
    if capacity == 0 {
        return None;
    }
    let available = available.min(capacity) as i64;
    let capacity = capacity as i64;
    let usage_percent = 100 - available * 100 / capacity;
    (usage_percent >= policy.high_threshold_percent as i64).then(|| capacity * (100 - policy.low_threshold_percent as i64) / 100 - available)
}

/// Updates the records with what the runtime has now: new images are first detected `now`,
/// images in use were last used `now`, and images gone are forgotten.
pub fn detect(records: &mut HashMap<String, Record>, images: &[Image], in_use: &HashSet<String>, now: i64) {
    let present: HashSet<&str> = images.iter().map(|i| i.id.as_str()).collect();
    records.retain(|id, _| present.contains(id.as_str()));
    for image in images {
        let r = records.entry(image.id.clone()).or_insert(Record { first_detected: now, last_used: 0 });
        if in_use.contains(&image.id) {
            r.last_used = now;
        }
    }
}

/// The images to remove to free `bytes_to_free`, least recently used first (then oldest
/// detected): never in use, never protected, never used at `now`, never younger than min_age.
pub fn victims(
    images: &[Image],
    records: &HashMap<String, Record>,
    in_use: &HashSet<String>,
    protected: &HashSet<String>,
    now: i64,
    min_age: Duration,
    bytes_to_free: i64,
) -> Vec<Image> {
    let mut candidates: Vec<(&Image, Record)> = images
        .iter()
        .filter(|i| !in_use.contains(&i.id) && !protected.contains(&i.id))
        .filter_map(|i| records.get(&i.id).map(|r| (i, *r)))
        .filter(|(_, r)| r.last_used < now && (now - r.first_detected) as i128 >= min_age.as_nanos() as i128)
        .collect();
    candidates.sort_by_key(|(i, r)| (r.last_used, r.first_detected, i.id.clone()));
    let mut freed = 0i64;
    let mut out = Vec::new();
    for (image, _) in candidates {
        if freed >= bytes_to_free {
            break;
        }
        freed += image.size as i64;
        out.push(image.clone());
    }
    out
}

/// The image GC loop of one node.
pub struct ImageGc {
    pub cri: Cri,
    pub stats: Stats,
    pub policy: Policy,
    pub period: Duration,
    pub recorder: Recorder,
    pub node_name: String,
}

impl ImageGc {
    /// Collects every `period` (the first pass at once, as upstream) until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut records = HashMap::new();
        let mut failed_before = false;
        let mut tick = tokio::time::interval(self.period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.collect(&mut records).await {
                Ok(()) => failed_before = false,
                Err(e) => {
                    let message = format!("{e:#}");
                    if failed_before {
                        tracing::error!(error = %message, "image garbage collection failed multiple times in a row");
                        self.recorder.node_event(&self.node_name, "Warning", "ImageGCFailed", &message);
                    } else {
                        tracing::warn!(error = %message, "image garbage collection failed once");
                    }
                    failed_before = true;
                }
            }
        }
    }

    /// One pass: detect, then free space when over the high threshold.
    pub async fn collect(&self, records: &mut HashMap<String, Record>) -> anyhow::Result<()> {
        let now = crate::clock::now_nanos();
        let (images, in_use, protected) = self.inventory().await?;
        detect(records, &images, &in_use, now);
        // The image filesystem as the sampler saw it last (upstream reads ImageFsStats).
        let Some(latest) = self.stats.latest() else { return Ok(()) };
        let Some((fs, _, _)) = latest.0.imagefs else {
            anyhow::bail!("failed to get imageFs info: the runtime reports no image filesystem");
        };
        if fs.capacity == 0 {
            self.recorder.node_event(&self.node_name, "Warning", "InvalidDiskCapacity", "invalid capacity 0 on image filesystem");
            anyhow::bail!("invalid capacity 0 on image filesystem");
        }
        let Some(to_free) = amount_to_free(fs.capacity, fs.available, &self.policy) else { return Ok(()) };
        tracing::info!(amount_to_free = to_free, "disk usage on image filesystem is over the high threshold, trying to free bytes down to the low threshold");
        let mut freed = 0i64;
        let mut errors = Vec::new();
        for image in victims(&images, records, &in_use, &protected, now, self.policy.min_age, to_free) {
            let mut client = self.cri.image.clone();
            let request = api::RemoveImageRequest { image: Some(api::ImageSpec { image: image.id.clone(), ..Default::default() }) };
            match client.remove_image(request).await {
                Ok(_) => {
                    tracing::info!(image = %image.id, tags = ?image.tags, size = image.size, "removed unused image");
                    records.remove(&image.id);
                    freed += image.size as i64;
                }
                Err(e) => errors.push(format!("{}: {}", image.id, e.message())),
            }
        }
        if !errors.is_empty() {
            anyhow::bail!("wanted to free {to_free} bytes, but freed {freed} bytes space with errors in image deletion: {}", errors.join("; "));
        }
        if freed < to_free {
            tracing::debug!(images = images.len(), in_use = ?in_use, protected = ?protected, ?records, "image GC found too little to free");
            let message = format!("Failed to garbage collect required amount of images. Attempted to free {to_free} bytes, but only found {freed} bytes eligible to free.");
            self.recorder.node_event(&self.node_name, "Warning", "FreeDiskSpaceFailed", &message);
            anyhow::bail!(message);
        }
        Ok(())
    }

    /// The runtime's images, the ids in use by any container, and the protected ids.
    async fn inventory(&self) -> anyhow::Result<(Vec<Image>, HashSet<String>, HashSet<String>)> {
        let mut image = self.cri.image.clone();
        let listed = image.list_images(api::ListImagesRequest::default()).await?.into_inner().images;
        let images: Vec<Image> = listed.iter().map(|i| Image { id: i.id.clone(), tags: i.repo_tags.clone(), size: i.size }).collect();
        let mut runtime = self.cri.runtime.clone();
        let containers = runtime.list_containers(api::ListContainersRequest::default()).await?.into_inner().containers;
        let by_name = |name: &str| images.iter().find(|i| i.tags.iter().any(|t| t == name) || i.id == name).map(|i| i.id.clone());
        let in_use: HashSet<String> = containers
            .iter()
            .flat_map(|c| [Some(c.image_ref.clone()), c.image.as_ref().and_then(|s| by_name(&s.image))])
            .flatten()
            .filter(|id| !id.is_empty())
            .collect();
        let mut names = crate::images::pinned_images(self.cri.socket()).await.unwrap_or_else(|e| {
            tracing::warn!(error = %format!("{e:#}"), "cannot list pinned images; treating every image as pinned this pass");
            images.iter().flat_map(|i| i.tags.clone()).collect()
        });
        names.push(crate::images::PAUSE_IMAGE.into());
        names.push(crate::images::BUSYBOX_IMAGE.into());
        let protected: HashSet<String> = names.iter().filter_map(|n| by_name(n)).collect();
        Ok((images, in_use, protected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn image(id: &str, size: u64) -> Image {
        Image { id: id.into(), tags: vec![format!("r/{id}:1")], size }
    }

    #[test]
    fn usage_over_the_high_threshold_frees_down_to_the_low_one() {
        let p = Policy::default();
        // 90% used of 1000: free down to 80% → 100 bytes.
        assert_eq!(amount_to_free(1000, 100, &p), Some(100));
        // 84% used: under 85, nothing to do; exactly 85 is collected.
        assert_eq!(amount_to_free(1000, 160, &p), None);
        assert_eq!(amount_to_free(1000, 150, &p), Some(50));
        assert_eq!(amount_to_free(0, 0, &p), None);
        // Forced (high 1, low 0): everything used is to be freed.
        let forced = Policy { high_threshold_percent: 1, low_threshold_percent: 0, min_age: Duration::ZERO };
        assert_eq!(amount_to_free(1000, 400, &forced), Some(600));
    }

    #[test]
    fn thresholds_are_validated_as_upstream() {
        assert!(Policy::default().validate().is_ok());
        assert!(Policy { high_threshold_percent: 101, ..Default::default() }.validate().is_err());
        assert!(Policy { high_threshold_percent: 80, low_threshold_percent: 80, min_age: Duration::ZERO }.validate().is_err());
    }

    #[test]
    fn victims_are_unused_unprotected_old_enough_and_least_recently_used_first() {
        let images = vec![image("used", 100), image("pinned", 100), image("young", 100), image("old", 100), image("older", 100), image("recent", 100)];
        let mut records = HashMap::new();
        let in_use = HashSet::from(["used".to_owned()]);
        detect(&mut records, &images, &HashSet::new(), 0);
        // "recent" was in use at 50 s, "young" appeared at 90 s.
        records.get_mut("recent").unwrap().last_used = 50 * S;
        records.get_mut("old").unwrap().last_used = 20 * S;
        records.get_mut("young").unwrap().first_detected = 90 * S;
        detect(&mut records, &images, &in_use, 100 * S);
        assert_eq!(records["used"].last_used, 100 * S);
        let protected = HashSet::from(["pinned".to_owned()]);
        let min_age = Duration::from_secs(60);
        let all = victims(&images, &records, &in_use, &protected, 100 * S, min_age, i64::MAX);
        assert_eq!(all.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["older", "old", "recent"]);
        // Only as many as needed.
        let some = victims(&images, &records, &in_use, &protected, 100 * S, min_age, 150);
        assert_eq!(some.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["older", "old"]);
        // An image used at this very detection is not a victim even if no container has it now.
        let just_used = victims(&images, &records, &HashSet::new(), &protected, 100 * S, Duration::ZERO, i64::MAX);
        assert!(!just_used.iter().any(|i| i.id == "used"));
        // Forgotten once gone from the runtime.
        detect(&mut records, &images[..2], &in_use, 110 * S);
        assert_eq!(records.len(), 2);
    }
}

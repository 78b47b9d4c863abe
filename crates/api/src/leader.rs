//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection:
//! acquire when the lease is free or expired, renew every `retry_period`, and give up
//! leadership when renewals fail for `renew_deadline`, so that two schedulers never bind
//! at once and two controller managers never reconcile at once. Shared by the scheduler
//! (`kube-system/kube-scheduler`) and the controller manager
//! (`kube-system/kube-controller-manager`).

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Leader election settings (upstream `LeaderElectionConfiguration`).
#[derive(Debug, Clone)]
pub struct LeaderElection {
    pub enabled: bool,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
    pub namespace: String,
    pub name: String,
}

impl LeaderElection {
    /// Upstream defaults (on, 15 s lease, 10 s renew deadline, 2 s retry) for the Lease
    /// `kube-system/<name>`.
    pub fn for_lease(name: &str) -> Self {
        LeaderElection {
            enabled: true,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            namespace: "kube-system".into(),
            name: name.into(),
        }
    }
}

impl Default for LeaderElection {
    /// [`LeaderElection::for_lease`] of the scheduler's lease, `kube-scheduler`.
    fn default() -> Self {
        LeaderElection::for_lease("kube-scheduler")
    }
}

/// The wall clock, in one place (lease times are wall-clock by definition).
fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

/// Errors talking to the API server about the lease.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("lease {namespace}/{name}: {source}")]
    LeaseFailed {
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
}

/// Acquires and holds one Lease for one identity.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaderElection,
    identity: String,
}

/// What one acquire-or-renew attempt decided, given the current lease (pure).
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Someone else holds a live lease.
    Held { holder: String },
    /// Write this spec (take over or renew).
    Write(LeaseSpec),
}

/// Upstream `tryAcquireOrRenew` decision over the lease's spec at time `now`.
pub fn decide(current: Option<&LeaseSpec>, identity: &str, config: &LeaderElection, now: jiff::Timestamp) -> Decision {
    let duration_secs = config.lease_duration.as_secs() as i32;
    let fresh = |transitions: i32| LeaseSpec {
        holder_identity: Some(identity.to_owned()),
        lease_duration_seconds: Some(duration_secs),
        acquire_time: Some(MicroTime(now)),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..Default::default()
    };
    let Some(spec) = current else { return Decision::Write(fresh(0)) };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder == identity {
        let mut renewed = spec.clone();
        renewed.renew_time = Some(MicroTime(now));
        renewed.lease_duration_seconds = Some(duration_secs);
        return Decision::Write(renewed);
    }
    let expires = spec.renew_time.as_ref().map(|t| t.0).and_then(|t| {
        let secs = i64::from(spec.lease_duration_seconds.unwrap_or(duration_secs));
        t.checked_add(jiff::SignedDuration::from_secs(secs)).ok()
    });
    if !holder.is_empty() && expires.is_some_and(|e| e > now) {
        return Decision::Held { holder };
    }
    Decision::Write(fresh(spec.lease_transitions.unwrap_or(0) + 1))
}

impl LeaderElector {
    pub fn new(client: kube::Client, config: LeaderElection, identity: String) -> Self {
        LeaderElector { api: Api::namespaced(client, &config.namespace), config, identity }
    }

    fn wrap(&self, e: kube::Error) -> Error {
        Error::LeaseFailed { namespace: self.config.namespace.clone(), name: self.config.name.clone(), source: Box::new(e) }
    }

    /// One attempt; `Ok(true)` when we hold the lease afterwards.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, Error> {
        let current = self.api.get_opt(&self.config.name).await.map_err(|e| self.wrap(e))?;
        let decision = decide(current.as_ref().and_then(|l| l.spec.as_ref()), &self.identity, &self.config, now());
        let spec = match decision {
            Decision::Held { .. } => return Ok(false),
            Decision::Write(spec) => spec,
        };
        let result = match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta { name: Some(self.config.name.clone()), namespace: Some(self.config.namespace.clone()), ..Default::default() },
                    spec: Some(spec),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            Some(mut lease) => {
                // resourceVersion stays set: a concurrent writer makes this a 409.
                lease.spec = Some(spec);
                self.api.replace(&self.config.name, &PostParams::default(), &lease).await
            }
        };
        match result {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(self.wrap(e)),
        }
    }

    /// Waits until this instance leads; `false` if `shutdown` came first.
    pub async fn acquire(&self, shutdown: &CancellationToken) -> bool {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return true,
                Ok(false) => {}
                Err(e) => tracing::debug!(error = %e, "leader election attempt failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(self.config.retry_period) => {}
            }
        }
    }

    /// Renews until renewals fail for `renew_deadline` (returns) or `shutdown` (releases the
    /// lease and returns).
    pub async fn hold(&self, shutdown: &CancellationToken) -> bool {
        let mut last_renew = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    self.release().await;
                    return true;
                }
                _ = tokio::time::sleep(self.config.retry_period) => {}
            }
            let attempt = tokio::time::timeout(self.config.retry_period.max(std::time::Duration::from_secs(1)), self.try_acquire_or_renew()).await;
            match attempt {
                Ok(Ok(true)) => last_renew = tokio::time::Instant::now(),
                Ok(Ok(false)) => return false, // someone else took it
                Ok(Err(e)) => tracing::warn!(error = %e, "lease renewal failed"),
                Err(_) => tracing::warn!("lease renewal timed out"),
            }
            if last_renew.elapsed() >= self.config.renew_deadline {
                return false;
            }
        }
    }

    /// Gives the lease up (holder cleared) so a standby takes over at once.
    async fn release(&self) {
        if let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await {
            if lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(self.identity.as_str()) {
                if let Some(spec) = lease.spec.as_mut() {
                    spec.holder_identity = None;
                    spec.lease_duration_seconds = Some(1);
                }
                let _ = self.api.replace(&self.config.name, &PostParams::default(), &lease).await;
            }
        }
    }
}

/// Runs `work` while this process leads (at once when election is disabled): waits for the
/// lease, then runs `work` with a token that is cancelled when leadership is lost or
/// `shutdown` comes. Returns `false` only when leadership was lost, after `work` has stopped.
pub async fn run_while_leading<F, Fut>(client: kube::Client, config: &LeaderElection, identity: &str, shutdown: &CancellationToken, work: F) -> bool
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    if !config.enabled {
        work(shutdown.clone()).await;
        return true;
    }
    let elector = LeaderElector::new(client, config.clone(), identity.to_owned());
    if !elector.acquire(shutdown).await {
        return true;
    }
    tracing::info!(identity, lease = %format!("{}/{}", config.namespace, config.name), "became leader");
    let token = shutdown.child_token();
    let run = work(token.clone());
    tokio::pin!(run);
    tokio::select! {
        _ = &mut run => true,
        kept = elector.hold(shutdown) => {
            token.cancel();
            run.await;
            kept
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    #[test]
    fn a_live_lease_of_another_holder_is_respected_and_an_expired_one_taken() {
        let c = LeaderElection::default();
        let held = LeaseSpec {
            holder_identity: Some("other".into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(t(0))),
            lease_transitions: Some(2),
            ..Default::default()
        };
        assert_eq!(decide(Some(&held), "me", &c, t(10)), Decision::Held { holder: "other".into() });
        match decide(Some(&held), "me", &c, t(16)) {
            Decision::Write(s) => {
                assert_eq!(s.holder_identity.as_deref(), Some("me"));
                assert_eq!(s.lease_transitions, Some(3));
            }
            d => panic!("{d:?}"),
        }
        match decide(None, "me", &c, t(0)) {
            Decision::Write(s) => assert_eq!(s.lease_transitions, Some(0)),
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn the_holder_renews_without_a_transition() {
        let c = LeaderElection::default();
        let mine = LeaseSpec { holder_identity: Some("me".into()), renew_time: Some(MicroTime(t(0))), lease_transitions: Some(1), ..Default::default() };
        match decide(Some(&mine), "me", &c, t(5)) {
            Decision::Write(s) => {
                assert_eq!(s.lease_transitions, Some(1));
                assert_eq!(s.renew_time, Some(MicroTime(t(5))));
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn a_released_lease_is_free() {
        let c = LeaderElection::default();
        let released = LeaseSpec { holder_identity: None, renew_time: Some(MicroTime(t(0))), lease_duration_seconds: Some(15), ..Default::default() };
        assert!(matches!(decide(Some(&released), "me", &c, t(1)), Decision::Write(_)));
    }
}

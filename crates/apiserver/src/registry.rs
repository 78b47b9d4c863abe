//! The generic registry: one code path for every verb of every resource. A resource
//! contributes only what [`crate::strategy`] and `rkube_api` (defaults, printers, schemas)
//! say about it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use rkube_api::resources::{self, ResourceInfo};
use rkube_api::selector::{FieldSelector, LabelSelector};
use rkube_store::{Entry, ListOptions, Revision, Store};
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use crate::request::ResourcePath;
use crate::status::{qualified, ApiError, Cause, Result};
use crate::strategy;
use crate::watchcache::{decode, set_resource_version, WatchCache};
use rkube_api::conversion::{from_storage, to_storage};

mod fieldmanager;

/// How long a consistent read waits for the cache to catch up before reading the store.
const CACHE_WAIT: Duration = Duration::from_secs(3);
/// Internal retries of a write that raced with another writer (no user precondition).
const WRITE_RETRIES: usize = 16;

/// Selectors and paging of a list or watch.
#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    pub label: Option<LabelSelector>,
    pub field: Option<FieldSelector>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
}

/// A page of a list.
pub struct ListPage {
    pub items: Vec<Arc<Value>>,
    pub resource_version: String,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

#[derive(Debug, Default, Clone)]
pub struct WriteOptions {
    pub dry_run: bool,
    /// The field manager of the write: the `fieldManager` parameter, else the User-Agent's
    /// prefix (`rkube_api::fieldmanager::manager_from_user_agent`).
    pub field_manager: String,
    /// Whether `fieldManager` was given (apply requires it).
    pub explicit_field_manager: bool,
    /// `force=true`: an apply takes fields other managers own.
    pub force: bool,
    /// Set by server-side apply: the object already carries its managedFields.
    pub(crate) managed_by_apply: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    /// `application/apply-patch+yaml`: server-side apply.
    Apply,
}

/// Registry configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Service ClusterIP range, e.g. `10.43.0.0/16`.
    pub service_cidr: (std::net::Ipv4Addr, u8),
}

pub struct Registry {
    store: Arc<dyn Store>,
    config: Config,
    caches: Mutex<HashMap<&'static str, Arc<OnceCell<Arc<WatchCache>>>>>,
    /// The revision of the latest write per storage prefix, for consistent cache reads.
    last_write: Mutex<HashMap<&'static str, i64>>,
    /// Serialises ClusterIP and NodePort allocation.
    alloc: tokio::sync::Mutex<()>,
}

fn now() -> String {
    jiff::Timestamp::now().round(jiff::Unit::Second).map(|t| t.to_string()).unwrap_or_default()
}

fn random_suffix() -> String {
    // upstream's alphabet for generated names: no vowels, no confusable characters
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..5].iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj["metadata"]["labels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default()
}

/// Everything but metadata and status: what a change to bumps the generation.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

fn without_rv(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v["metadata"].as_object_mut() {
        m.remove("resourceVersion");
    }
    v
}

fn encode(obj: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(&without_rv(obj)).unwrap_or_default())
}

fn parse_rv(s: &str) -> Result<i64> {
    s.parse::<i64>()
        .map_err(|_| ApiError::bad_request(format!("invalid resource version {s:?}")))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: i64,
    start: String,
}

impl Registry {
    pub fn new(store: Arc<dyn Store>, config: Config) -> Self {
        Registry {
            store,
            config,
            caches: Mutex::default(),
            last_write: Mutex::default(),
            alloc: tokio::sync::Mutex::new(()),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The watch cache of a resource, started on first use.
    pub async fn cache(&self, info: &ResourceInfo) -> Result<Arc<WatchCache>> {
        let cell = {
            let mut caches = self.caches.lock().unwrap_or_else(|p| p.into_inner());
            caches.entry(info.storage).or_default().clone()
        };
        let cache = cell
            .get_or_try_init(|| WatchCache::start(self.store.clone(), info.storage_prefix()))
            .await?;
        Ok(cache.clone())
    }

    fn wrote(&self, info: &ResourceInfo, rev: i64) {
        let mut lw = self.last_write.lock().unwrap_or_else(|p| p.into_inner());
        let e = lw.entry(info.storage).or_insert(0);
        *e = (*e).max(rev);
    }

    pub fn last_write_rev(&self, info: &ResourceInfo) -> i64 {
        self.last_write.lock().unwrap_or_else(|p| p.into_inner()).get(info.storage).copied().unwrap_or(0)
    }

    /// The key prefix of a list: the whole resource, or one namespace of it.
    pub fn list_prefix(info: &ResourceInfo, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if info.namespaced() => format!("{}{ns}/", info.storage_prefix()),
            _ => info.storage_prefix(),
        }
    }

    fn key(info: &ResourceInfo, namespace: Option<&str>, name: &str) -> String {
        info.storage_key(namespace, name)
    }

    pub fn matches(info: &ResourceInfo, q: &ListQuery, obj: &Value) -> bool {
        if let Some(l) = &q.label {
            if !l.matches(&labels_of(obj)) {
                return false;
            }
        }
        if let Some(f) = &q.field {
            if !f.matches(&|field: &str| rkube_api::selector::field_value(info, obj, field)) {
                return false;
            }
        }
        true
    }

    pub async fn get(&self, rp: &ResourcePath) -> Result<Value> {
        let name = rp.name.as_deref().unwrap_or_default();
        let key = Self::key(rp.info, rp.namespace.as_deref(), name);
        match self.store.get(&key).await? {
            Some(e) => decode(&e)
                .map(|v| from_storage(rp.info, v))
                .ok_or_else(|| ApiError::internal(format!("stored object {key} is not JSON"))),
            None => Err(ApiError::not_found(rp.info.group, rp.info.plural, name)),
        }
    }

    async fn get_entry(&self, info: &ResourceInfo, ns: Option<&str>, name: &str) -> Result<(Entry, Value)> {
        let key = Self::key(info, ns, name);
        match self.store.get(&key).await? {
            Some(e) => {
                let v = decode(&e).ok_or_else(|| ApiError::internal(format!("stored object {key} is not JSON")))?;
                Ok((e, from_storage(info, v)))
            }
            None => Err(ApiError::not_found(info.group, info.plural, name)),
        }
    }

    pub async fn list(&self, info: &ResourceInfo, namespace: Option<&str>, q: &ListQuery) -> Result<ListPage> {
        let prefix = Self::list_prefix(info, namespace);
        let rv = q.resource_version.as_deref().unwrap_or("");
        let exact = q.resource_version_match.as_deref() == Some("Exact");
        if q.continue_token.is_some() || (q.limit.unwrap_or(0) > 0 && rv != "0") || exact {
            return self.list_from_store(info, &prefix, q).await;
        }
        let cache = self.cache(info).await?;
        let wanted = if rv.is_empty() { self.last_write_rev(info) } else { parse_rv(rv)? };
        if rv != "0" && !cache.wait_for(wanted, CACHE_WAIT).await {
            if rv.is_empty() {
                return self.list_from_store(info, &prefix, q).await;
            }
            return Err(ApiError::timeout(format!("Too large resource version: {wanted}, current: {}", cache.rev().await)));
        }
        let (items, rev) = cache.list(&prefix).await;
        let items = items.into_iter().map(|o| view(info, o)).filter(|o| Self::matches(info, q, o)).collect();
        Ok(ListPage { items, resource_version: rev.to_string(), continue_token: None, remaining: None })
    }

    async fn list_from_store(&self, info: &ResourceInfo, prefix: &str, q: &ListQuery) -> Result<ListPage> {
        let (mut revision, mut start_after) = (None, None);
        if let Some(token) = &q.continue_token {
            let t = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token.trim_end_matches('='))
                .ok()
                .and_then(|b| serde_json::from_slice::<ContinueToken>(&b).ok())
                .ok_or_else(|| ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
            revision = Some(Revision(t.rv));
            start_after = Some(format!("{prefix}{}", t.start));
        } else if q.resource_version_match.as_deref() == Some("Exact") {
            revision = Some(Revision(parse_rv(q.resource_version.as_deref().unwrap_or(""))?));
        }
        let limit = q.limit.unwrap_or(0);
        let filtered = q.label.is_some() || q.field.is_some();
        let mut items = Vec::new();
        let mut last_key = None;
        let mut more;
        let mut remaining;
        let mut served_at;
        loop {
            let page = self
                .store
                .list(prefix, ListOptions { revision, start_after: start_after.clone(), limit: (limit > 0).then_some(limit.max(1)) })
                .await
                .map_err(|e| match e {
                    rkube_store::Error::Compacted { .. } if q.continue_token.is_some() => {
                        let mut err = ApiError::expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.");
                        err.continue_token = start_after.as_ref().map(|s| encode_continue(-1, &s[prefix.len()..]));
                        err
                    }
                    other => other.into(),
                })?;
            served_at = page.revision;
            revision = Some(page.revision);
            remaining = page.remaining;
            more = page.remaining > 0;
            for e in &page.entries {
                last_key = Some(e.key.clone());
                if let Some(v) = decode(e).map(|v| from_storage(info, v)) {
                    if Self::matches(info, q, &v) {
                        items.push(Arc::new(v));
                    }
                }
            }
            if limit == 0 || items.len() >= limit || !more {
                break;
            }
            start_after = last_key.clone();
        }
        if limit > 0 && items.len() > limit {
            // A filtered page may overshoot: cut it and continue after the last kept item.
            items.truncate(limit);
            let cut = items.last().map(|o| {
                let ns = o["metadata"]["namespace"].as_str();
                Self::key(info, ns, o["metadata"]["name"].as_str().unwrap_or_default())
            });
            last_key = cut;
            more = true;
        }
        let continue_token = if more {
            last_key.map(|k| encode_continue(served_at.0, &k[prefix.len()..]))
        } else {
            None
        };
        let remaining = (continue_token.is_some() && !filtered).then_some(remaining as i64);
        Ok(ListPage { items, resource_version: served_at.0.to_string(), continue_token, remaining })
    }

    /// Checks apiVersion/kind of a body and fills them in when absent.
    fn check_type(info: &ResourceInfo, obj: &mut Value) -> Result<()> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(format!("the object provided is unrecognized (must be of type {})", info.kind)));
        }
        let api_version = info.api_version();
        let kind = obj["kind"].as_str().unwrap_or_default().to_owned();
        let av = obj["apiVersion"].as_str().unwrap_or_default().to_owned();
        if !kind.is_empty() && kind != info.kind {
            return Err(ApiError::bad_request(format!(
                "{kind} in version {:?} cannot be handled as a {}: converting ({}) to ({}): unknown conversion",
                av.rsplit('/').next().unwrap_or_default(),
                info.kind,
                kind,
                info.kind
            )));
        }
        if !av.is_empty() && av != api_version {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({api_version})"
            )));
        }
        obj["apiVersion"] = api_version.into();
        obj["kind"] = info.kind.into();
        if !obj["metadata"].is_object() {
            if !obj["metadata"].is_null() {
                return Err(ApiError::bad_request("metadata must be an object"));
            }
            obj["metadata"] = json!({});
        }
        Ok(())
    }

    fn defaults(info: &ResourceInfo, obj: &mut Value) -> Result<()> {
        rkube_api::defaults::apply(info, obj).map_err(|e| {
            ApiError::bad_request(format!("{} in version \"{}\" cannot be handled as a {}: {e}", info.kind, info.version, info.kind))
        })
    }

    async fn check_namespace(&self, info: &ResourceInfo, ns: &str, name: &str) -> Result<()> {
        let nsinfo = resources::find("", "v1", "namespaces").ok_or_else(|| ApiError::internal("namespaces not served"))?;
        match self.store.get(&nsinfo.storage_key(None, ns)).await? {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(e) => {
                let v = decode(&e).unwrap_or_default();
                if v["status"]["phase"] == "Terminating" || !v["metadata"]["deletionTimestamp"].is_null() {
                    // Upstream NamespaceLifecycle: errors.NewForbidden's wording, and the
                    // NamespaceTerminating cause.
                    let what = match name {
                        "" => qualified(info.group, info.plural),
                        n => format!("{} \"{n}\"", qualified(info.group, info.plural)),
                    };
                    let mut err = ApiError::forbidden(format!(
                        "{what} is forbidden: unable to create new content in namespace {ns} because it is being terminated"
                    ));
                    err.details = Some(Box::new(json!({
                        "name": name, "group": info.group, "kind": info.plural,
                        "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}],
                    })));
                    Err(err)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// POST to a collection.
    pub async fn create(&self, info: &'static ResourceInfo, path_ns: Option<&str>, mut obj: Value, opts: &WriteOptions) -> Result<Value> {
        Self::check_type(info, &mut obj)?;
        let meta_ns = obj["metadata"]["namespace"].as_str().map(str::to_owned);
        let ns = if info.namespaced() {
            let ns = match (path_ns, meta_ns.as_deref()) {
                (Some(p), Some(m)) if !m.is_empty() && p != m => {
                    return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"))
                }
                (Some(p), _) => p.to_owned(),
                (None, Some(m)) if !m.is_empty() => m.to_owned(),
                _ => return Err(ApiError::bad_request("the server could not find the requested resource (a namespace is required)")),
            };
            obj["metadata"]["namespace"] = ns.clone().into();
            Some(ns)
        } else {
            if let Some(m) = obj["metadata"].as_object_mut() {
                m.remove("namespace");
            }
            None
        };
        let generate = obj["metadata"]["generateName"].as_str().unwrap_or_default().to_owned();
        let given = obj["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        if given.is_empty() && generate.is_empty() {
            return Err(ApiError::invalid(info.group, info.kind, "", vec![Cause {
                reason: "FieldValueRequired",
                field: "metadata.name".into(),
                message: "Required value: name or generateName is required".into(),
            }]));
        }
        if let Some(ns) = &ns {
            self.check_namespace(info, ns, &given).await?;
        }
        {
            let m = obj["metadata"].as_object_mut().ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
            for f in ["resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"] {
                m.remove(f);
            }
            m.insert("uid".into(), uuid::Uuid::new_v4().to_string().into());
            m.insert("creationTimestamp".into(), now().into());
            if strategy::tracks_generation(info) {
                m.insert("generation".into(), 1.into());
            } else {
                m.remove("generation");
            }
        }
        strategy::prepare_for_create(info, &mut obj);
        Self::defaults(info, &mut obj)?;
        if !opts.managed_by_apply {
            fieldmanager::track_update(info, None, None, &mut obj, opts);
        }
        if info.kind == "Service" && info.group.is_empty() {
            self.allocate_service(&mut obj, None).await?;
        }
        for attempt in 0..5 {
            let name = if given.is_empty() { format!("{generate}{}", random_suffix()) } else { given.clone() };
            obj["metadata"]["name"] = name.clone().into();
            let causes = strategy::validate(info, &obj, None);
            if !causes.is_empty() {
                return Err(ApiError::invalid(info.group, info.kind, &name, causes));
            }
            if opts.dry_run {
                return Ok(obj);
            }
            let key = Self::key(info, ns.as_deref(), &name);
            match self.store.create(&key, encode(&to_storage(info, obj.clone()))).await {
                Ok(rev) => {
                    self.wrote(info, rev.0);
                    set_resource_version(&mut obj, rev.0);
                    return Ok(obj);
                }
                Err(rkube_store::Error::AlreadyExists { .. }) if given.is_empty() && attempt < 4 => continue,
                Err(rkube_store::Error::AlreadyExists { .. }) => {
                    return Err(ApiError::already_exists(info.group, info.plural, &name))
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::internal("could not generate a unique name"))
    }

    /// PUT of an object or its status.
    pub async fn update(&self, rp: &ResourcePath, mut body: Value, opts: &WriteOptions) -> Result<Value> {
        let info = rp.info;
        let name = rp.name.clone().unwrap_or_default();
        Self::check_type(info, &mut body)?;
        let body_name = body["metadata"]["name"].as_str().unwrap_or_default();
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if let (Some(p), Some(m)) = (rp.namespace.as_deref(), body["metadata"]["namespace"].as_str()) {
            if !m.is_empty() && m != p {
                return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
            }
        }
        let precondition = match body["metadata"]["resourceVersion"].as_str() {
            Some(s) if !s.is_empty() => Some(parse_rv(s)?),
            _ => None,
        };
        self.write_loop(rp, opts, precondition, |_old| Ok(body.clone())).await
    }

    /// PATCH: reads the object, applies the patch, writes it back (retrying on races).
    pub async fn patch(&self, rp: &ResourcePath, kind: PatchType, patch: &[u8], opts: &WriteOptions) -> Result<Value> {
        fieldmanager::check_patch_options(kind, opts)?;
        if kind == PatchType::Apply {
            return self.server_side_apply(rp, patch, opts).await.map(|(v, _)| v);
        }
        let patch_value: Value = serde_json::from_slice(patch)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
        let precondition = match kind {
            PatchType::Json => None,
            _ => match patch_value["metadata"]["resourceVersion"].as_str() {
                Some(s) if !s.is_empty() => Some(parse_rv(s)?),
                _ => None,
            },
        };
        let info = rp.info;
        let scale = rp.subresource.as_deref() == Some("scale");
        self.write_loop(rp, opts, precondition, |old| {
            let target = if scale { to_scale(info, old) } else { old.clone() };
            let def = if scale {
                rkube_api::schema::scale_definition_name()
            } else {
                rkube_api::schema::definition_name(info)
            };
            apply_patch(kind, &target, &patch_value, &def)
        })
        .await
    }

    /// The shared read-modify-write of update and patch. `make` builds the new body from the
    /// current object (for `scale`, the body is a Scale).
    async fn write_loop(
        &self,
        rp: &ResourcePath,
        opts: &WriteOptions,
        precondition: Option<i64>,
        make: impl Fn(&Value) -> Result<Value>,
    ) -> Result<Value> {
        let info = rp.info;
        let ns = rp.namespace.as_deref();
        let name = rp.name.clone().unwrap_or_default();
        let sub = rp.subresource.as_deref();
        for _ in 0..WRITE_RETRIES {
            let (entry, old) = self.get_entry(info, ns, &name).await?;
            if let Some(p) = precondition {
                if p != entry.mod_revision.0 {
                    return Err(ApiError::stale(info.group, info.plural, &name));
                }
            }
            let mut body = make(&old)?;
            let applied_fields = body["metadata"]["managedFields"].clone();
            let mut new = match sub {
                // internal writes that set spec and status together
                Some("binding") => body,
                Some("status") => {
                    let mut n = old.clone();
                    n["status"] = body["status"].take();
                    n
                }
                Some("scale") => {
                    let replicas = body["spec"]["replicas"].clone();
                    if !replicas.is_i64() && !replicas.is_null() {
                        return Err(ApiError::bad_request("spec.replicas must be an integer"));
                    }
                    let mut n = old.clone();
                    n["spec"]["replicas"] = if replicas.is_null() { json!(0) } else { replicas };
                    n
                }
                _ => {
                    Self::check_type(info, &mut body)?;
                    if info.has_subresource("status") && info.kind != "Namespace" {
                        body["status"] = old["status"].clone();
                        if body["status"].is_null() {
                            if let Some(m) = body.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                    if info.kind == "Namespace" && info.group.is_empty() {
                        // spec.finalizers and status change only through finalize and status
                        body["spec"] = old["spec"].clone();
                        body["status"] = old["status"].clone();
                    }
                    body
                }
            };
            // Fields the client cannot change.
            for f in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "namespace", "name", "generation"] {
                match old["metadata"].get(f) {
                    Some(v) => new["metadata"][f] = v.clone(),
                    None => {
                        if let Some(m) = new["metadata"].as_object_mut() {
                            m.remove(f);
                        }
                    }
                }
            }
            if let Some(m) = new["metadata"].as_object_mut() {
                m.remove("selfLink");
            }
            Self::check_type(info, &mut new)?;
            Self::defaults(info, &mut new)?;
            if opts.managed_by_apply {
                new["metadata"]["managedFields"] = applied_fields;
            } else {
                fieldmanager::track_update(info, sub, Some(&old), &mut new, opts);
            }
            if info.kind == "Service" && info.group.is_empty() {
                self.allocate_service(&mut new, Some(&old)).await?;
            }
            if sub.is_none() {
                let causes = strategy::validate(info, &new, Some(&old));
                if !causes.is_empty() {
                    return Err(ApiError::invalid(info.group, info.kind, &name, causes));
                }
            }
            if strategy::tracks_generation(info) && spec_part(&new) != spec_part(&old) {
                let g = old["metadata"]["generation"].as_i64().unwrap_or(0);
                new["metadata"]["generation"] = (g + 1).into();
            }
            set_resource_version(&mut new, entry.mod_revision.0);
            if new == old {
                return Ok(old);
            }
            // upstream's ShouldDeleteDuringUpdate: only a deletion with no grace period left
            // (a graceful pod deletion stays until its kubelet deletes it with grace 0)
            let finalized = !new["metadata"]["deletionTimestamp"].is_null()
                && new["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) == 0
                && new["metadata"]["finalizers"].as_array().is_none_or(|f| f.is_empty())
                && !(info.kind == "Namespace" && new["spec"]["finalizers"].as_array().is_some_and(|f| !f.is_empty()));
            if opts.dry_run {
                return Ok(new);
            }
            let key = Self::key(info, ns, &name);
            let result = if finalized {
                self.store.delete(&key, Some(entry.mod_revision)).await.map(|d| d.revision)
            } else {
                self.store.update(&key, encode(&to_storage(info, new.clone())), entry.mod_revision).await
            };
            match result {
                Ok(rev) => {
                    self.wrote(info, rev.0);
                    set_resource_version(&mut new, rev.0);
                    return Ok(new);
                }
                Err(rkube_store::Error::Conflict { .. }) | Err(rkube_store::Error::NotFound { .. }) if precondition.is_none() => continue,
                Err(rkube_store::Error::Conflict { .. }) => return Err(ApiError::stale(info.group, info.plural, &name)),
                Err(rkube_store::Error::NotFound { .. }) => return Err(ApiError::not_found(info.group, info.plural, &name)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::conflict(info.group, info.plural, &name, "too many concurrent writers; please retry"))
    }

    /// DELETE of one object. Returns the object (still present, with a deletionTimestamp,
    /// when finalizers hold it) and whether it is gone.
    pub async fn delete(&self, rp: &ResourcePath, options: &Value, opts: &WriteOptions) -> Result<(Value, bool)> {
        let info = rp.info;
        let ns = rp.namespace.as_deref();
        let name = rp.name.clone().unwrap_or_default();
        let delete_options = crate::deletion::DeleteOptions::from_value(options)?;
        for _ in 0..WRITE_RETRIES {
            let (entry, old) = self.get_entry(info, ns, &name).await?;
            if let Some(uid) = options["preconditions"]["uid"].as_str() {
                let actual = old["metadata"]["uid"].as_str().unwrap_or_default();
                if uid != actual {
                    return Err(ApiError::conflict(info.group, info.plural, &name, &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                    )));
                }
            }
            if let Some(rv) = options["preconditions"]["resourceVersion"].as_str() {
                if rv != entry.mod_revision.0.to_string() {
                    return Err(ApiError::conflict(info.group, info.plural, &name, &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        entry.mod_revision.0
                    )));
                }
            }
            let new = match crate::deletion::plan(info, &old, &delete_options, jiff::Timestamp::now()) {
                crate::deletion::Plan::Unchanged => return Ok((old, false)),
                crate::deletion::Plan::Update(new) => new,
                crate::deletion::Plan::Delete => {
                    if opts.dry_run {
                        return Ok((old, true));
                    }
                    let key = Self::key(info, ns, &name);
                    match self.store.delete(&key, Some(entry.mod_revision)).await {
                        Ok(d) => {
                            self.wrote(info, d.revision.0);
                            let mut gone = old;
                            set_resource_version(&mut gone, d.revision.0);
                            return Ok((gone, true));
                        }
                        Err(rkube_store::Error::Conflict { .. }) | Err(rkube_store::Error::NotFound { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            let mut new = new;
            if opts.dry_run {
                return Ok((new, false));
            }
            let key = Self::key(info, ns, &name);
            match self.store.update(&key, encode(&to_storage(info, new.clone())), entry.mod_revision).await {
                Ok(rev) => {
                    self.wrote(info, rev.0);
                    set_resource_version(&mut new, rev.0);
                    return Ok((new, false));
                }
                Err(rkube_store::Error::Conflict { .. }) | Err(rkube_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::conflict(info.group, info.plural, &name, "too many concurrent writers; please retry"))
    }

    /// Allocates a Service's ClusterIP and NodePorts, keeping what `old` had.
    async fn allocate_service(&self, svc: &mut Value, old: Option<&Value>) -> Result<()> {
        let _guard = self.alloc.lock().await;
        let spec_type = svc["spec"]["type"].as_str().unwrap_or("ClusterIP").to_owned();
        if let Some(old) = old {
            if svc["spec"]["clusterIP"].as_str().unwrap_or_default().is_empty() && !old["spec"]["clusterIP"].is_null() {
                svc["spec"]["clusterIP"] = old["spec"]["clusterIP"].clone();
                svc["spec"]["clusterIPs"] = old["spec"]["clusterIPs"].clone();
            }
        }
        let info = resources::find("", "v1", "services").ok_or_else(|| ApiError::internal("services not served"))?;
        let (existing, _) = self.cache(info).await?.list(&info.storage_prefix()).await;
        let cluster_ip = svc["spec"]["clusterIP"].as_str().unwrap_or_default().to_owned();
        if spec_type != "ExternalName" && cluster_ip.is_empty() {
            let used: std::collections::HashSet<String> =
                existing.iter().filter_map(|s| s["spec"]["clusterIP"].as_str().map(str::to_owned)).collect();
            let (base, bits) = self.config.service_cidr;
            let size: u32 = 1u32 << (32 - bits as u32).min(31);
            let base = u32::from(base);
            let mut ip = None;
            for _ in 0..1000 {
                let r = u32::from_le_bytes(uuid::Uuid::new_v4().into_bytes()[..4].try_into().unwrap_or([0; 4]));
                let offset = 2 + r % size.saturating_sub(3).max(1);
                let candidate = std::net::Ipv4Addr::from(base + offset).to_string();
                if !used.contains(&candidate) {
                    ip = Some(candidate);
                    break;
                }
            }
            let ip = ip.ok_or_else(|| ApiError::internal("failed to allocate a service IP: range is full"))?;
            svc["spec"]["clusterIP"] = ip.clone().into();
            svc["spec"]["clusterIPs"] = json!([ip]);
        } else if !cluster_ip.is_empty() && svc["spec"]["clusterIPs"].is_null() {
            svc["spec"]["clusterIPs"] = json!([cluster_ip]);
        }
        if spec_type == "NodePort" || spec_type == "LoadBalancer" {
            let mut used: std::collections::HashSet<i64> = existing
                .iter()
                .flat_map(|s| s["spec"]["ports"].as_array().cloned().unwrap_or_default())
                .filter_map(|p| p["nodePort"].as_i64())
                .collect();
            let old_ports = old.and_then(|o| o["spec"]["ports"].as_array().cloned()).unwrap_or_default();
            if let Some(ports) = svc["spec"]["ports"].as_array_mut() {
                for p in ports {
                    if p["nodePort"].as_i64().is_some() {
                        continue;
                    }
                    if let Some(prev) = old_ports.iter().find(|o| o["port"] == p["port"] && o["protocol"] == p["protocol"]) {
                        if let Some(np) = prev["nodePort"].as_i64() {
                            p["nodePort"] = np.into();
                            continue;
                        }
                    }
                    let start = (u32::from_le_bytes(uuid::Uuid::new_v4().into_bytes()[..4].try_into().unwrap_or([0; 4])) % 2768) as i64;
                    let port = (0..2768).map(|i| 30000 + (start + i) % 2768).find(|p| !used.contains(p));
                    let port = port.ok_or_else(|| ApiError::internal("failed to allocate a node port: range is full"))?;
                    used.insert(port);
                    p["nodePort"] = port.into();
                }
            }
        }
        Ok(())
    }
}

/// A cached (storage-version) object as `info`'s version sees it.
pub fn view(info: &ResourceInfo, obj: Arc<Value>) -> Arc<Value> {
    if info.storage_version.is_some() {
        Arc::new(from_storage(info, (*obj).clone()))
    } else {
        obj
    }
}

fn encode_continue(rv: i64, start: &str) -> String {
    let token = ContinueToken { v: "meta.k8s.io/v1".into(), rv, start: format!("{start}\u{0}") };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
}

/// The autoscaling/v1 Scale view of a scalable object.
pub fn to_scale(info: &ResourceInfo, obj: &Value) -> Value {
    let selector = if info.kind == "ReplicationController" {
        obj["spec"]["selector"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect::<Vec<_>>().join(","))
            .unwrap_or_default()
    } else {
        label_selector_string(&obj["spec"]["selector"])
    };
    let m = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

/// A metav1.LabelSelector rendered as a selector string.
pub fn label_selector_string(sel: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(m) = sel["matchLabels"].as_object() {
        for (k, v) in m {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    if let Some(exprs) = sel["matchExpressions"].as_array() {
        for e in exprs {
            let key = e["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = e["values"].as_array().map(|v| v.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            match e["operator"].as_str().unwrap_or_default() {
                "In" => parts.push(format!("{key} in ({})", values.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                "Exists" => parts.push(key.to_owned()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.sort();
    parts.join(",")
}

/// Applies a patch document of the given type to `target`.
pub fn apply_patch(kind: PatchType, target: &Value, patch: &Value, definition: &str) -> Result<Value> {
    match kind {
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("json merge patch must be a JSON object"));
            }
            Ok(rkube_api::strategic::json_merge(target, patch))
        }
        PatchType::Strategic => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("strategic merge patch must be a JSON object"));
            }
            rkube_api::strategic::strategic_merge(target, patch, rkube_api::schema::definitions(), definition)
                .map_err(|e| ApiError::new(http::StatusCode::UNPROCESSABLE_ENTITY, "Invalid", e.to_string()))
        }
        PatchType::Json => {
            let p: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("the server rejected our request due to an error in our request: {e}")))?;
            let mut doc = target.clone();
            // patch_unsafe: on failure `doc` is dropped, so nothing needs undoing, and
            // json_patch::patch's undo panics on some failed moves (found by tests/fuzz.rs)
            json_patch::patch_unsafe(&mut doc, &p).map_err(|e| {
                ApiError::new(http::StatusCode::UNPROCESSABLE_ENTITY, "Invalid", format!("the server rejected our request due to an error in our request: {e}"))
            })?;
            Ok(doc)
        }
        PatchType::Apply => Err(ApiError::internal("an apply patch is not a merge document")),
    }
}

impl Registry {
    /// The `namespaces/<name>/finalize` write: replaces `spec.finalizers`; a deleted namespace
    /// with no finalizers left is removed.
    pub async fn finalize_namespace(&self, rp: &ResourcePath, body: Value) -> Result<Value> {
        let info = rp.info;
        let name = rp.name.clone().unwrap_or_default();
        for _ in 0..WRITE_RETRIES {
            let (entry, old) = self.get_entry(info, None, &name).await?;
            let mut new = old.clone();
            new["spec"]["finalizers"] = body["spec"]["finalizers"].clone();
            let done = !new["metadata"]["deletionTimestamp"].is_null()
                && new["spec"]["finalizers"].as_array().is_none_or(|f| f.is_empty())
                && new["metadata"]["finalizers"].as_array().is_none_or(|f| f.is_empty());
            let key = Self::key(info, None, &name);
            let result = if done {
                self.store.delete(&key, Some(entry.mod_revision)).await.map(|d| d.revision)
            } else {
                self.store.update(&key, encode(&new), entry.mod_revision).await
            };
            match result {
                Ok(rev) => {
                    self.wrote(info, rev.0);
                    set_resource_version(&mut new, rev.0);
                    return Ok(new);
                }
                Err(rkube_store::Error::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::conflict(info.group, info.plural, &name, "too many concurrent writers; please retry"))
    }
}

impl Registry {
    /// `pods/<name>/binding`: assigns the pod to a node, once (the scheduler's bind).
    pub async fn bind(&self, rp: &ResourcePath, binding: &Value, opts: &WriteOptions) -> Result<Value> {
        let info = rp.info;
        let name = rp.name.clone().unwrap_or_default();
        let node = binding["target"]["name"].as_str().unwrap_or_default().to_owned();
        if node.is_empty() {
            return Err(ApiError::invalid("", "Binding", &name, vec![Cause::required("target.name")]));
        }
        if let Some(uid) = binding["metadata"]["uid"].as_str().filter(|u| !u.is_empty()) {
            let current = self.get(rp).await?;
            if current["metadata"]["uid"].as_str() != Some(uid) {
                return Err(ApiError::conflict(info.group, info.plural, &name, "the UID in the binding does not match the pod"));
            }
        }
        let annotations = binding["metadata"]["annotations"].clone();
        self.write_loop(rp, opts, None, |old| {
            if !old["metadata"]["deletionTimestamp"].is_null() {
                return Err(ApiError::conflict(info.group, info.plural, &name, "pod is being deleted, cannot be assigned to a host"));
            }
            if let Some(current) = old["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
                return Err(ApiError::conflict(info.group, info.plural, &name, &format!("pod {name} is already assigned to node \"{current}\"")));
            }
            let mut new = old.clone();
            new["spec"]["nodeName"] = node.clone().into();
            if let Some(a) = annotations.as_object() {
                for (k, v) in a {
                    new["metadata"]["annotations"][k] = v.clone();
                }
            }
            let condition = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now()});
            let conditions = new["status"]["conditions"].as_array().cloned().unwrap_or_default();
            let mut conditions: Vec<Value> = conditions.into_iter().filter(|c| c["type"] != "PodScheduled").collect();
            conditions.push(condition);
            new["status"]["conditions"] = Value::Array(conditions);
            Ok(new)
        })
        .await
    }
}

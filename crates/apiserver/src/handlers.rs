//! HTTP glue: routes a request to discovery, OpenAPI or the registry, decodes bodies,
//! negotiates Table / PartialObjectMetadata output and streams watches.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use rkube_api::resources::ResourceInfo;
use rkube_api::selector::{FieldSelector, LabelSelector};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use crate::discovery;
use crate::fieldcheck;
use crate::registry::{to_scale, ListQuery, PatchType, Registry, WriteOptions};
use crate::request::{self, Discovery, ResourcePath, Target};
use crate::status::{ApiError, Result};
use crate::watchcache::{CacheEvent, WatchKind};
use crate::Identity;

/// Request bodies over this size get 413, as kube-apiserver's 3 MiB limit.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

pub struct State {
    pub registry: Registry,
    pub server_address: String,
    pub ready: std::sync::atomic::AtomicBool,
    pub limits: crate::limits::Limits,
    /// Serves `GET /rkube/v1/snapshot` when set (by the binary, which knows the data dir).
    pub snapshot: std::sync::OnceLock<SnapshotHook>,
    /// Renders `GET /metrics` (Prometheus text) when set.
    pub metrics: std::sync::OnceLock<MetricsHook>,
    /// Reaches kubelets for the connect subresources (`pods/log`, `pods/exec`, ...).
    pub kubelet: Option<crate::kubelet::KubeletClient>,
    /// Issues and verifies service-account tokens when set (by the binary, which has the key).
    pub service_accounts: std::sync::OnceLock<crate::serviceaccount::TokenSigner>,
    /// The DefaultTolerationSeconds admission plugin's seconds (set by the binary from its
    /// flags; 300 s each when unset).
    pub default_toleration_seconds: std::sync::OnceLock<crate::tolerations::DefaultTolerationSeconds>,
}

/// Produces the Prometheus text of `/metrics`.
pub type MetricsHook = Arc<dyn Fn() -> futures::future::BoxFuture<'static, String> + Send + Sync>;

/// Where `rkube snapshot save` fetches a consistent snapshot of a running server.
pub const SNAPSHOT_PATH: &str = "/rkube/v1/snapshot";

/// Produces the bytes of a snapshot file, or an error message.
pub type SnapshotHook =
    Arc<dyn Fn() -> futures::future::BoxFuture<'static, std::result::Result<Vec<u8>, String>> + Send + Sync>;

/// `GET /rkube/v1/snapshot`: cluster admins (group `system:masters`) only, as the
/// snapshot holds every Secret and the cluster CA key.
async fn snapshot_response(state: &State, identity: &Identity, method: Method) -> Result<Response<Body>> {
    let hook = state.snapshot.get().ok_or_else(ApiError::no_route)?;
    if method != Method::GET {
        return Err(ApiError::method_not_allowed());
    }
    if !identity.groups.iter().any(|g| g == "system:masters") {
        return Err(ApiError::forbidden(format!(
            "User \"{}\" cannot get the datastore snapshot: only system:masters can",
            identity.user
        )));
    }
    let bytes = hook().await.map_err(ApiError::internal)?;
    let mut r = Response::new(Body::from(bytes));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    Ok(r)
}

type Query = HashMap<String, String>;

fn json_response(code: StatusCode, v: &Value) -> Response<Body> {
    json_bytes_response(code, serde_json::to_vec(v).unwrap_or_default())
}

fn json_bytes_response(code: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = code;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    r
}

fn text_response(code: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = code;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

pub fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = json_response(e.code, &e.body());
    // as upstream's response writer: a Status with retryAfterSeconds also sets Retry-After
    if let Some(secs) = e.details.as_ref().and_then(|d| d["retryAfterSeconds"].as_u64()).filter(|s| *s > 0) {
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

/// The token of an `Authorization: Bearer` header.
fn bearer_token(req: &Request<Body>) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned()).filter(|t| !t.is_empty())
}

/// Entry point for every request.
pub async fn handle(state: Arc<State>, identity: Option<Identity>, req: Request<Body>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    match path.as_str() {
        "/healthz" | "/livez" | "/readyz" => {
            return if state.ready.load(std::sync::atomic::Ordering::Acquire) || path == "/livez" {
                text_response(StatusCode::OK, "ok")
            } else {
                text_response(StatusCode::INTERNAL_SERVER_ERROR, "[-]poststarthook/bootstrap failed: not finished\nreadyz check failed")
            };
        }
        "/version" => return json_response(StatusCode::OK, &crate::version()),
        _ => {}
    }
    // A client certificate wins; otherwise a service-account bearer token.
    let identity = match identity {
        Some(i) => Some(i),
        None => match bearer_token(&req) {
            Some(token) => crate::serviceaccount::authenticate(&state, &token).await,
            None => None,
        },
    };
    let Some(identity) = identity else {
        return error_response(&ApiError::unauthorized());
    };
    if path == "/metrics" {
        if let Some(hook) = state.metrics.get() {
            let mut r = Response::new(Body::from(hook().await));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
            return r;
        }
    }
    if path == SNAPSHOT_PATH {
        return snapshot_response(&state, &identity, req.method().clone()).await.unwrap_or_else(|e| error_response(&e));
    }
    let query: Query = axum::extract::Query::<Query>::try_from_uri(req.uri()).map(|q| q.0).unwrap_or_default();
    let long_running = req.method() == Method::GET && query.get("watch").is_some_and(|w| w == "true" || w == "1");
    let _permit = match state.limits.admit(req.method(), long_running) {
        Ok(p) => p,
        Err(crate::limits::Overloaded) => return crate::limits::too_many_requests(),
    };
    let deadline = match crate::limits::request_timeout(query.get("timeout").map(String::as_str), state.limits.config.request_timeout) {
        Ok(d) => d,
        Err(e) => return error_response(&e),
    };
    match tokio::time::timeout(deadline, route(&state, req)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => error_response(&e),
        Err(_) => error_response(&crate::limits::timed_out()),
    }
}

fn accept(req: &Request<Body>) -> String {
    req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

async fn route(state: &Arc<State>, req: Request<Body>) -> Result<Response<Body>> {
    let path = req.uri().path().to_owned();
    if path == "/openapi/v2" {
        if accept(&req).contains("protobuf") && !accept(&req).contains("json") {
            return Err(ApiError::not_acceptable());
        }
        let doc = rkube_api::openapi::v2_document();
        return Ok(openapi_response(&req, &doc.json, &doc.hash));
    }
    if path == "/openapi/v3" {
        return Ok(json_response(StatusCode::OK, &rkube_api::openapi::v3_index()));
    }
    if let Some(gv) = path.strip_prefix("/openapi/v3/") {
        let doc = rkube_api::openapi::v3_document(gv).ok_or_else(ApiError::no_route)?;
        return Ok(openapi_response(&req, &doc.json, &doc.hash));
    }
    if !(path.starts_with("/api/") || path == "/api" || path.starts_with("/apis/") || path == "/apis") {
        return Err(ApiError::no_route());
    }
    if let Some((node, rest)) = crate::kubelet::node_proxy_path(&path) {
        return crate::kubelet::node_proxy(state, req, &node, &rest).await;
    }
    let query: Query = axum::extract::Query::<Query>::try_from_uri(req.uri()).map(|q| q.0).unwrap_or_default();
    match request::parse(&path)? {
        Target::Discovery(d) => discovery_response(state, &req, d),
        Target::Resource(rp) if rp.subresource.as_deref().is_some_and(ResourceInfo::is_connect_subresource) => {
            crate::kubelet::pod_subresource(state, req, rp).await
        }
        Target::Resource(rp) => resource(state, req, rp, query).await,
    }
}

fn openapi_response(req: &Request<Body>, body: &str, hash: &str) -> Response<Body> {
    let etag = format!("\"{hash}\"");
    if req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        return r;
    }
    let mut r = Response::new(Body::from(body.to_owned()));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    let immutable = req.uri().query().is_some_and(|q| q.contains("hash="));
    let cc = if immutable { "public, immutable" } else { "no-cache, private" };
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cc));
    r
}

fn discovery_response(state: &State, req: &Request<Body>, d: Discovery) -> Result<Response<Body>> {
    let accept = accept(req);
    let aggregated = discovery::wants_aggregated(&accept);
    let doc = match (&d, aggregated) {
        (Discovery::LegacyVersions, Some(v)) | (Discovery::Groups, Some(v)) => {
            let doc = discovery::aggregated(d == Discovery::LegacyVersions, v);
            let mut r = json_response(StatusCode::OK, &doc);
            let ct = format!("application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList");
            if let Ok(h) = HeaderValue::from_str(&ct) {
                r.headers_mut().insert(header::CONTENT_TYPE, h);
            }
            r.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept"));
            return Ok(r);
        }
        (Discovery::LegacyVersions, None) => discovery::legacy_versions(&state.server_address),
        (Discovery::Groups, None) => discovery::group_list(),
        (Discovery::Group(g), _) => discovery::group(g).ok_or_else(ApiError::no_route)?,
        (Discovery::GroupVersion(g, v), _) => discovery::resource_list(g, v).ok_or_else(ApiError::no_route)?,
    };
    if !accepts_json(&accept) {
        return Err(ApiError::not_acceptable());
    }
    let mut r = json_response(StatusCode::OK, &doc);
    r.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept"));
    Ok(r)
}

fn accepts_json(accept: &str) -> bool {
    accept.is_empty()
        || accept.split(',').any(|p| {
            let params: Vec<&str> = p.split(';').map(str::trim).collect();
            let mt = params[0];
            (mt == "application/json" || mt == "*/*" || mt == "application/*" || mt == "application/yaml")
                && !params.iter().any(|x| x.starts_with("as="))
        })
}

/// What representation the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Object,
    Table,
    Metadata,
}

fn output(accept: &str) -> Result<Output> {
    let mut fallback_json = accept.is_empty();
    for part in accept.split(',') {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        let mt = params[0];
        if !(mt == "application/json" || mt == "*/*" || mt == "application/*" || mt == "application/yaml") {
            continue;
        }
        let as_ = params.iter().find_map(|p| p.strip_prefix("as="));
        let g = params.iter().find_map(|p| p.strip_prefix("g="));
        let v = params.iter().find_map(|p| p.strip_prefix("v="));
        match (as_, g, v) {
            (Some("Table"), Some("meta.k8s.io"), Some("v1")) => return Ok(Output::Table),
            (Some("PartialObjectMetadata") | Some("PartialObjectMetadataList"), Some("meta.k8s.io"), Some("v1")) => {
                return Ok(Output::Metadata)
            }
            (None, _, _) => fallback_json = true,
            _ => {}
        }
        if fallback_json {
            return Ok(Output::Object);
        }
    }
    if fallback_json {
        Ok(Output::Object)
    } else {
        Err(ApiError::not_acceptable())
    }
}

fn list_query(info: &ResourceInfo, q: &Query) -> Result<ListQuery> {
    let label = match q.get("labelSelector").map(String::as_str) {
        Some(s) if !s.trim().is_empty() => Some(LabelSelector::parse(s).map_err(ApiError::bad_request)?),
        _ => None,
    };
    let field = match q.get("fieldSelector").map(String::as_str) {
        Some(s) if !s.trim().is_empty() => {
            let f = FieldSelector::parse(s).map_err(ApiError::bad_request)?;
            let f = f.validate_for(info).map_err(ApiError::bad_request)?;
            Some(f)
        }
        _ => None,
    };
    let limit = match q.get("limit") {
        Some(s) if !s.is_empty() => Some(s.parse::<i64>().map_err(|_| ApiError::bad_request(format!("invalid limit {s:?}")))?.max(0) as usize),
        _ => None,
    };
    Ok(ListQuery {
        label,
        field,
        limit,
        continue_token: q.get("continue").filter(|s| !s.is_empty()).cloned(),
        resource_version: q.get("resourceVersion").cloned(),
        resource_version_match: q.get("resourceVersionMatch").filter(|s| !s.is_empty()).cloned(),
    })
}

fn write_options(q: &Query, user_agent: &str) -> Result<WriteOptions> {
    let dry_run = match q.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => return Err(ApiError::bad_request(format!("Invalid dry run value: {other:?}, supported: All"))),
    };
    let given = q.get("fieldManager").filter(|m| !m.is_empty());
    let field_manager = match given {
        Some(m) => m.clone(),
        None => rkube_api::fieldmanager::manager_from_user_agent(user_agent),
    };
    let force = match q.get("force").map(String::as_str) {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(ApiError::bad_request(format!("invalid force value: {other:?}"))),
    };
    Ok(WriteOptions { dry_run, field_manager, explicit_field_manager: given.is_some(), force, ..Default::default() })
}

fn user_agent(headers: &http::HeaderMap) -> String {
    headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

async fn read_body(headers: &http::HeaderMap, mut body: Body) -> Result<(Bytes, String)> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    // Read everything the client sends (so that it sees our answer, not a reset), but keep
    // at most MAX_BODY bytes and stop reading altogether at a hard cap.
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad_request(format!("reading the request body failed: {e}")))?;
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= MAX_BODY {
                buf.extend_from_slice(&data);
            } else if seen > 16 * MAX_BODY {
                break;
            }
        }
    }
    if seen > MAX_BODY {
        return Err(ApiError::too_large());
    }
    Ok((buf.freeze(), ct))
}

/// Decodes a JSON or YAML object body.
fn decode_body(info: &ResourceInfo, body: &[u8], content_type: &str) -> Result<Value> {
    let mt = content_type.split(';').next().unwrap_or("").trim();
    let parsed: std::result::Result<Value, String> = match mt {
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            // duplicate keys: the last wins, as upstream's non-strict YAML decoder (the
            // fieldValidation pass has reported them already)
            let mut options = serde_saphyr::Options::default();
            options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::LastWins;
            serde_saphyr::from_slice_with_options(body, options).map_err(|e| e.to_string())
        }
        "application/json" | "" | "*/*" => serde_json::from_slice(body).map_err(|e| e.to_string()),
        "application/vnd.kubernetes.protobuf" => {
            return rkube_api::protobuf::decode(body).map_err(|e| match e {
                rkube_api::protobuf::ProtobufError::UnknownKind { .. } | rkube_api::protobuf::ProtobufError::UnsupportedEncoding(_) => {
                    ApiError::unsupported_media_type("application/vnd.kubernetes.protobuf")
                }
                other => ApiError::bad_request(format!("the object provided is unrecognized (must be of type {}): {other}", info.kind)),
            })
        }
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    let v = parsed.map_err(|e| {
        let snippet: String = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error: {e} ({snippet}...)",
            info.kind
        ))
    })?;
    if !v.is_object() {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error: expected an object",
            info.kind
        )));
    }
    Ok(v)
}

/// A list answer, in the field order kube-apiserver writes.
#[derive(serde::Serialize)]
struct ListBody<'a> {
    kind: &'a str,
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    metadata: &'a Value,
    items: Vec<&'a Value>,
}

fn list_kind(info: &ResourceInfo) -> String {
    format!("{}List", info.kind)
}

fn partial_metadata(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
}

fn table(info: &ResourceInfo, objs: &[Arc<Value>], include: &str, q: &Query) -> Value {
    let plain: Vec<Value> = objs.iter().map(|o| (**o).clone()).collect();
    let mut t = rkube_api::printers::table(info, &plain, jiff::Timestamp::now());
    if let Some(rows) = t["rows"].as_array_mut() {
        for (row, obj) in rows.iter_mut().zip(objs) {
            match include {
                "None" => {}
                "Object" => row["object"] = (**obj).clone(),
                _ => row["object"] = partial_metadata(obj),
            }
        }
    }
    if q.get("watch").is_some() {
        // watch events repeat no headers after the first; kubectl prints them once
    }
    t
}

fn render_one(info: &ResourceInfo, out: Output, obj: Value, q: &Query) -> Value {
    match out {
        Output::Object => obj,
        Output::Metadata => partial_metadata(&obj),
        Output::Table => {
            let mut t = table(info, &[Arc::new(obj.clone())], q.get("includeObject").map(String::as_str).unwrap_or("Metadata"), q);
            t["metadata"] = json!({"resourceVersion": obj["metadata"]["resourceVersion"]});
            t
        }
    }
}

async fn resource(state: &Arc<State>, req: Request<Body>, rp: ResourcePath, q: Query) -> Result<Response<Body>> {
    let info = rp.info;
    let accept_header = accept(&req);
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let ua = user_agent(&parts.headers);
    // Read the whole body before answering anything, errors included: a client still
    // sending must see our Status, not a reset stream.
    let body_read = if method == Method::GET || method == Method::HEAD {
        Ok((Bytes::new(), String::new()))
    } else {
        read_body(&parts.headers, body).await
    };
    let out = output(&accept_header)?;
    let reg = &state.registry;
    let watch_param = q.get("watch").is_some_and(|w| w == "true" || w == "1");
    match (&method, rp.name.is_some(), rp.subresource.as_deref()) {
        (&Method::GET, false, None) if watch_param => watch(state, info, rp.namespace.as_deref(), None, out, q).await,
        (&Method::GET, true, None) if watch_param => {
            let name = rp.name.clone();
            watch(state, info, rp.namespace.as_deref(), name, out, q).await
        }
        (&Method::GET, false, None) => {
            let lq = list_query(info, &q)?;
            let page = reg.list(info, rp.namespace.as_deref(), &lq).await?;
            let mut meta = json!({"resourceVersion": page.resource_version});
            if let Some(c) = &page.continue_token {
                meta["continue"] = c.clone().into();
            }
            if let Some(r) = page.remaining {
                meta["remainingItemCount"] = r.into();
            }
            let body = match out {
                Output::Object => {
                    // Serialized straight from the cached objects: `json!` would deep-copy
                    // every item into a new Value first (most of a large list's cost).
                    let list = ListBody {
                        kind: &list_kind(info),
                        api_version: &info.api_version(),
                        metadata: &meta,
                        items: page.items.iter().map(|a| &**a).collect(),
                    };
                    return Ok(json_bytes_response(StatusCode::OK, serde_json::to_vec(&list).unwrap_or_default()));
                }
                Output::Metadata => {
                    let items: Vec<Value> = page.items.iter().map(|o| partial_metadata(o)).collect();
                    json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items})
                }
                Output::Table => {
                    let mut t = table(info, &page.items, q.get("includeObject").map(String::as_str).unwrap_or("Metadata"), &q);
                    t["metadata"] = meta;
                    t
                }
            };
            Ok(json_response(StatusCode::OK, &body))
        }
        (&Method::GET, true, sub) => {
            let obj = reg.get(&rp).await?;
            let obj = if sub == Some("scale") { to_scale(info, &obj) } else { obj };
            let body = if sub == Some("scale") { obj } else { render_one(info, out, obj, &q) };
            Ok(json_response(StatusCode::OK, &body))
        }
        (&Method::POST, false, None) => {
            let opts = write_options(&q, &ua)?;
            let directive = fieldcheck::directive(q.get("fieldValidation").map(String::as_str))?;
            let (body, ct) = body_read.clone()?;
            let def = rkube_api::schema::definition_name(info);
            let warnings = fieldcheck::check_body(info, &def, directive, &body, &ct)?;
            let mut obj = decode_body(info, &body, &ct)?;
            if info.group.is_empty() && info.plural == "pods" {
                let ns = rp.namespace.as_deref().unwrap_or("default");
                obj = crate::serviceaccount::admit_pod(state, ns, obj).await;
                crate::tolerations::admit(&mut obj, state.default_toleration_seconds.get().copied().unwrap_or_default());
            }
            if info.group.is_empty() && info.plural == "persistentvolumeclaims" {
                obj = crate::storageclass::admit_claim(state, obj).await;
            }
            if let (true, Some(ns)) = (info.namespaced(), rp.namespace.as_deref().or(obj["metadata"]["namespace"].as_str()).map(str::to_owned)) {
                crate::resourcequota::admit_create(reg, info, &ns, &mut obj, &opts).await?;
            }
            let created = reg.create(info, rp.namespace.as_deref(), obj, &opts).await?;
            Ok(warnings.attach(json_response(StatusCode::CREATED, &render_one(info, out, created, &q))))
        }
        (&Method::POST, true, Some("token")) => {
            let (body, ct) = body_read.clone()?;
            let request = decode_body(info, &body, &ct)?;
            let answer = crate::serviceaccount::token_request(state, &rp, &request).await?;
            Ok(json_response(StatusCode::CREATED, &answer))
        }
        (&Method::POST, true, Some("eviction")) => {
            let opts = write_options(&q, &ua)?;
            let (body, ct) = body_read.clone()?;
            let eviction = decode_body(info, &body, &ct)?;
            let answer = crate::eviction::evict(reg, &rp, &eviction, &opts).await?;
            Ok(json_response(StatusCode::CREATED, &answer))
        }
        (&Method::POST, true, Some("binding")) => {
            let opts = write_options(&q, &ua)?;
            let (body, ct) = body_read.clone()?;
            let binding = decode_body(info, &body, &ct)?;
            reg.bind(&rp, &binding, &opts).await?;
            Ok(json_response(StatusCode::CREATED, &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})))
        }
        (&Method::PUT, true, Some("finalize")) => {
            let (body, ct) = body_read.clone()?;
            let obj = decode_body(info, &body, &ct)?;
            let updated = reg.finalize_namespace(&rp, obj).await?;
            Ok(json_response(StatusCode::OK, &updated))
        }
        (&Method::PUT, true, sub) => {
            let opts = write_options(&q, &ua)?;
            let directive = fieldcheck::directive(q.get("fieldValidation").map(String::as_str))?;
            let (body, ct) = body_read.clone()?;
            let warnings = match fieldcheck::body_definition(info, sub) {
                Some(def) => fieldcheck::check_body(info, &def, directive, &body, &ct)?,
                None => Default::default(),
            };
            let obj = decode_body(info, &body, &ct)?;
            if sub == Some("scale") {
                let patch = json!({"spec": {"replicas": obj["spec"]["replicas"]}, "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]}});
                let bytes = serde_json::to_vec(&patch).unwrap_or_default();
                let updated = reg.patch(&rp, PatchType::Merge, &bytes, &opts).await?;
                return Ok(warnings.attach(json_response(StatusCode::OK, &to_scale(info, &updated))));
            }
            let updated = reg.update(&rp, obj, &opts).await?;
            Ok(warnings.attach(json_response(StatusCode::OK, &render_one(info, out, updated, &q))))
        }
        (&Method::PATCH, true, sub) => {
            let opts = write_options(&q, &ua)?;
            let (body, ct) = body_read.clone()?;
            let mt = ct.split(';').next().unwrap_or("").trim().to_owned();
            let kind = match mt.as_str() {
                "application/json-patch+json" => PatchType::Json,
                "application/merge-patch+json" => PatchType::Merge,
                "application/strategic-merge-patch+json" => PatchType::Strategic,
                "application/apply-patch+yaml" => PatchType::Apply,
                _ => {
                    let mut e = ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType", "415: Unsupported Media Type");
                    e.details = Some(Box::new(json!({})));
                    return Err(e);
                }
            };
            let directive = fieldcheck::directive(q.get("fieldValidation").map(String::as_str))?;
            let warnings = match fieldcheck::body_definition(info, sub) {
                Some(def) if directive.checks() && sub.is_none() && kind != PatchType::Apply => {
                    let current = reg.get(&rp).await?;
                    fieldcheck::check_patch(kind, &def, directive, &body, &current)?
                }
                _ => Default::default(),
            };
            if kind == PatchType::Apply {
                let (applied, created) = reg.server_side_apply(&rp, &body, &opts).await?;
                let code = if created { StatusCode::CREATED } else { StatusCode::OK };
                return Ok(json_response(code, &render_one(info, out, applied, &q)));
            }
            let updated = reg.patch(&rp, kind, &body, &opts).await?;
            let body = if sub == Some("scale") { to_scale(info, &updated) } else { render_one(info, out, updated, &q) };
            Ok(warnings.attach(json_response(StatusCode::OK, &body)))
        }
        (&Method::DELETE, true, None) => {
            let opts = write_options(&q, &ua)?;
            let (body, ct) = body_read.clone()?;
            let options: Value = if body.is_empty() {
                json!({})
            } else if ct.starts_with("application/vnd.kubernetes.protobuf") {
                rkube_api::protobuf::decode(&body).map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
            } else {
                serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
            };
            let options = crate::deletion::with_query(options, &q)?;
            let opts = if options["dryRun"].as_array().is_some_and(|d| d.iter().any(|x| x == "All")) { WriteOptions { dry_run: true, ..opts } } else { opts };
            let (obj, gone) = reg.delete(&rp, &options, &opts).await?;
            let returns_object = !gone || matches!((info.group, info.kind), ("", "Pod") | ("", "Service") | ("", "Namespace"));
            if returns_object {
                // upstream answers 202 only for a pending deletion asked with orphanDependents=false
                let code = if !gone && options["orphanDependents"] == false { StatusCode::ACCEPTED } else { StatusCode::OK };
                Ok(json_response(code, &obj))
            } else {
                let mut details = json!({"name": obj["metadata"]["name"], "kind": info.plural, "uid": obj["metadata"]["uid"]});
                if !info.group.is_empty() {
                    details["group"] = info.group.into();
                }
                Ok(json_response(StatusCode::OK, &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})))
            }
        }
        (&Method::DELETE, false, None) => {
            let opts = write_options(&q, &ua)?;
            let (body, ct) = body_read.clone()?;
            let options: Value = if body.is_empty() {
                json!({})
            } else if ct.starts_with("application/vnd.kubernetes.protobuf") {
                rkube_api::protobuf::decode(&body).map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
            } else {
                serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
            };
            let options = crate::deletion::with_query(options, &q)?;
            crate::deletion::DeleteOptions::from_value(&options)?;
            let lq = list_query(info, &q)?;
            let page = reg.list(info, rp.namespace.as_deref(), &lq).await?;
            let mut deleted = Vec::new();
            for obj in page.items {
                let item = ResourcePath {
                    info,
                    namespace: obj["metadata"]["namespace"].as_str().map(str::to_owned),
                    name: obj["metadata"]["name"].as_str().map(str::to_owned),
                    subresource: None,
                };
                match reg.delete(&item, &options, &opts).await {
                    Ok((o, _)) => deleted.push(o),
                    Err(e) if e.code == StatusCode::NOT_FOUND => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(json_response(StatusCode::OK, &json!({"kind": list_kind(info), "apiVersion": info.api_version(), "metadata": {}, "items": deleted})))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn watch_frame(kind: &str, object: &Value) -> Bytes {
    crate::watchcache::watch_line(kind, object)
}

async fn watch(
    state: &Arc<State>,
    info: &'static ResourceInfo,
    namespace: Option<&str>,
    name: Option<String>,
    out: Output,
    q: Query,
) -> Result<Response<Body>> {
    let mut lq = list_query(info, &q)?;
    if let Some(n) = &name {
        // a watch on one object is a watch on the collection with a name selector
        let by_name = FieldSelector::parse(&format!("metadata.name={n}")).map_err(ApiError::bad_request)?;
        lq.field = Some(by_name);
    }
    let cache = state.registry.cache(info).await?;
    let prefix = Registry::list_prefix(info, namespace);
    let rv = lq.resource_version.clone().unwrap_or_default();
    let send_initial = q.get("sendInitialEvents").is_some_and(|v| v == "true");
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|v| v == "true" || v == "1");
    let jitter = f64::from(u32::from_le_bytes(uuid::Uuid::new_v4().into_bytes()[..4].try_into().unwrap_or([0; 4]))) / (f64::from(u32::MAX) + 1.0);
    let timeout = crate::limits::watch_timeout(q.get("timeoutSeconds").map(String::as_str), state.limits.config.min_request_timeout, jitter)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let include = q.get("includeObject").cloned().unwrap_or_else(|| "Metadata".into());
    let render = move |obj: &Value| -> Value {
        match out {
            Output::Object => obj.clone(),
            Output::Metadata => partial_metadata(obj),
            Output::Table => {
                let mut t = table(info, &[Arc::new(obj.clone())], &include, &Query::new());
                t["metadata"] = json!({"resourceVersion": obj["metadata"]["resourceVersion"]});
                t
            }
        }
    };
    let bookmark = move |rev: i64, initial_end: bool| -> Value {
        let mut meta = json!({"resourceVersion": rev.to_string(), "creationTimestamp": null});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": meta})
    };
    let sub = if rv.is_empty() || rv == "0" || send_initial {
        if rv.is_empty() && !send_initial {
            let wanted = state.registry.last_write_rev(info);
            cache.wait_for(wanted, Duration::from_secs(3)).await;
        }
        cache.subscribe_with_state(&prefix).await
    } else {
        let after: i64 = rv.parse().map_err(|_| ApiError::bad_request(format!("invalid resource version {rv:?}")))?;
        match cache.subscribe(after).await {
            Ok(s) => s,
            Err(oldest) => {
                let e = ApiError::expired(format!("too old resource version: {after} ({oldest})"));
                let _ = tx.send(watch_frame("ERROR", &e.body())).await;
                drop(tx);
                return Ok(stream_response(rx));
            }
        }
    };
    // The line a watcher sends for an event, or None when the event is not for it. In the
    // common case (plain JSON, the storage version, the event's own type) every watcher
    // sends the event's shared line: no copy or serialization per watcher.
    let frame = move |ev: &CacheEvent| -> Option<Bytes> {
        if !ev.key.starts_with(&prefix) {
            return None;
        }
        let object = crate::registry::view(info, ev.object.clone());
        let prev = ev.prev.clone().map(|p| crate::registry::view(info, p));
        let now = Registry::matches(info, &lq, &object);
        let before = prev.as_ref().is_some_and(|p| Registry::matches(info, &lq, p));
        let kind = match (ev.kind, before, now) {
            (WatchKind::Deleted, _, true) => "DELETED",
            (WatchKind::Deleted, _, false) => return None,
            (WatchKind::Added, _, true) => "ADDED",
            (WatchKind::Modified, true, true) => "MODIFIED",
            (WatchKind::Modified, false, true) => "ADDED",
            (WatchKind::Modified, true, false) => "DELETED",
            _ => return None,
        };
        if out == Output::Object && info.storage_version.is_none() && kind == ev.kind.as_str() {
            Some(ev.frame())
        } else {
            Some(watch_frame(kind, &render(&object)))
        }
    };
    let start_rev = sub.rev;
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut last = 0i64;
        for ev in &sub.replay {
            if let Some(line) = frame(ev) {
                if tx.send(line).await.is_err() {
                    return;
                }
            }
            last = last.max(ev.rev);
        }
        last = last.max(start_rev);
        if send_initial && bookmarks && tx.send(watch_frame("BOOKMARK", &bookmark(last, true))).await.is_err() {
            return;
        }
        let mut live = sub.live;
        let mut ticker = tokio::time::interval(Duration::from_secs(60));
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = ticker.tick(), if bookmarks => {
                    if tx.send(watch_frame("BOOKMARK", &bookmark(last, false))).await.is_err() { return; }
                }
                msg = live.recv() => match msg {
                    Ok(ev) => {
                        if ev.rev <= last { continue; }
                        last = ev.rev;
                        if let Some(line) = frame(&ev) {
                            if tx.send(line).await.is_err() { return; }
                        }
                    }
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return,
                }
            }
        }
    });
    Ok(stream_response(rx))
}

fn stream_response(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Response<Body> {
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<Bytes, Infallible>);
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    r
}

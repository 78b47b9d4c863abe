//! The operations kube-apiserver documents for each served resource, in a form that renders
//! to both OpenAPI v3 and swagger 2.0.
//!
//! Paths, operation ids, tags, `x-kubernetes-action`s and parameters follow what
//! kube-apiserver's OpenAPI builder emits for a REST storage: collection, item, watch and
//! subresource paths, one operation per verb.

use crate::resources::ResourceInfo;
use crate::schema;

/// The schema of a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// A definition, sent as any content type (`*/*`).
    Definition(String),
    /// `meta.v1.Patch` in the four patch content types.
    Patch,
}

/// One operation of a path.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    /// `get`, `put`, `post`, `delete` or `patch`.
    pub method: &'static str,
    pub id: String,
    pub description: String,
    pub tag: String,
    /// `x-kubernetes-action`: get, list, watch, watchlist, post, put, patch, delete,
    /// deletecollection; `None` for the discovery operations.
    pub action: Option<&'static str>,
    /// `x-kubernetes-group-version-kind` as (group, version, kind).
    pub gvk: Option<(String, String, String)>,
    /// Query parameters of this operation alone.
    pub query: Vec<&'static str>,
    pub body: Option<Body>,
    /// Status code and the definition returned with it (`None`: no body, as 401).
    pub responses: Vec<(u16, Option<String>)>,
    /// The response media types.
    pub produces: &'static [&'static str],
}

/// A path with its shared parameters and its operations.
#[derive(Debug, Clone)]
pub(crate) struct PathItem {
    pub path: String,
    /// Path parameters (`name`, `namespace`) with the kind they name, then shared query
    /// parameters.
    pub path_params: Vec<(&'static str, String)>,
    pub query: Vec<&'static str>,
    pub operations: Vec<Operation>,
}

pub(crate) const OBJECT_TYPES: &[&str] = &["application/json", "application/yaml"];
const LIST_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/json;stream=watch",
];
const WATCH_TYPES: &[&str] = &["application/json", "application/json;stream=watch"];
/// The patch content types a PATCH accepts.
pub(crate) const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

const LIST_QUERY: &[&str] = &[
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
];
const WRITE_QUERY: &[&str] = &["dryRun", "fieldManager", "fieldValidation"];
const PATCH_QUERY: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "force"];
const DELETE_QUERY: &[&str] = &[
    "dryRun",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "orphanDependents",
    "propagationPolicy",
];
const DELETE_COLLECTION_QUERY: &[&str] = &[
    "continue",
    "dryRun",
    "fieldSelector",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "labelSelector",
    "limit",
    "orphanDependents",
    "propagationPolicy",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
];

/// The description and type of a query parameter.
pub(crate) fn query_param(name: &str) -> (&'static str, &'static str) {
    match name {
        "allowWatchBookmarks" => ("allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion.", "boolean"),
        "continue" => ("The continue option should be set when retrieving more results from the server, with the token the previous page returned.", "string"),
        "dryRun" => ("When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed", "string"),
        "fieldManager" => ("fieldManager is a name associated with the actor or entity that is making these changes. It is required for apply requests (application/apply-patch).", "string"),
        "fieldSelector" => ("A selector to restrict the list of returned objects by their fields. Defaults to everything.", "string"),
        "fieldValidation" => ("fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: unknown fields are dropped silently. - Warn: a warning is sent for each unknown or duplicate field (the default). - Strict: the request fails with a BadRequest error listing every unknown and duplicate field.", "string"),
        "force" => ("Force is going to \"force\" Apply requests: the user re-acquires conflicting fields owned by other managers. It must be unset for non-apply patch requests.", "boolean"),
        "gracePeriodSeconds" => ("The duration in seconds before the object should be deleted. Zero means delete immediately; unset means the default grace period of the type.", "integer"),
        "ignoreStoreReadErrorWithClusterBreakingPotential" => ("if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error.", "boolean"),
        "labelSelector" => ("A selector to restrict the list of returned objects by their labels. Defaults to everything.", "string"),
        "limit" => ("limit is a maximum number of responses to return for a list call. If more items exist, the server sets the `continue` field on the list metadata.", "integer"),
        "orphanDependents" => ("Deprecated: please use the PropagationPolicy. Should the dependent objects be orphaned.", "boolean"),
        "pretty" => ("If 'true', then the output is pretty printed.", "string"),
        "propagationPolicy" => ("Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'.", "string"),
        "resourceVersion" => ("resourceVersion sets a constraint on what resource versions a request may be served from. Defaults to unset.", "string"),
        "resourceVersionMatch" => ("resourceVersionMatch determines how resourceVersion is applied to list calls. Defaults to unset.", "string"),
        "sendInitialEvents" => ("`sendInitialEvents=true` may be set together with `watch=true`: the stream then begins with synthetic events for the current state of the objects.", "boolean"),
        "timeoutSeconds" => ("Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.", "integer"),
        "watch" => ("Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.", "boolean"),
        _ => ("", "string"),
    }
}

/// `rbac.authorization.k8s.io` -> `RbacAuthorization`; the core group is `Core`.
fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    group
        .trim_end_matches(".k8s.io")
        .split('.')
        .map(capitalise)
        .collect()
}

/// `rbac.authorization.k8s.io` -> `rbacAuthorization`; the core group is `core`.
pub(crate) fn group_tag(group: &str) -> String {
    let camel = group_camel(group);
    let mut chars = camel.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => camel,
    }
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

const LIST_GET: Option<&str> = Some("list");

/// Builds the operations of one resource.
struct Builder<'a> {
    info: &'a ResourceInfo,
    /// `AppsV1`
    prefix: String,
    tag: String,
    kind_def: String,
}

impl Builder<'_> {
    fn op(&self, method: &'static str, id: String, description: String) -> Operation {
        Operation {
            method,
            id,
            description,
            tag: self.tag.clone(),
            action: None,
            gvk: Some(self.gvk(self.info.kind)),
            query: Vec::new(),
            body: None,
            responses: Vec::new(),
            produces: OBJECT_TYPES,
        }
    }

    fn gvk(&self, kind: &str) -> (String, String, String) {
        (
            self.info.group.to_owned(),
            self.info.version.to_owned(),
            kind.to_owned(),
        )
    }

    /// `Namespaced` for namespaced resources.
    fn scope(&self) -> &'static str {
        if self.info.namespaced() {
            "Namespaced"
        } else {
            ""
        }
    }

    fn ok(def: &str, codes: &[u16]) -> Vec<(u16, Option<String>)> {
        let mut out: Vec<_> = codes.iter().map(|c| (*c, Some(def.to_owned()))).collect();
        out.push((401, None));
        out
    }

    fn collection_ops(&self) -> Vec<Operation> {
        let (p, s, k) = (&self.prefix, self.scope(), self.info.kind);
        let list_def = schema::list_definition_name(self.info);
        let status = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
        let mut list = self.op(
            "get",
            format!("list{p}{s}{k}"),
            format!("list or watch objects of kind {k}"),
        );
        list.action = LIST_GET;
        list.query = LIST_QUERY.to_vec();
        list.responses = Self::ok(&list_def, &[200]);
        list.produces = LIST_TYPES;

        let mut create = self.op("post", format!("create{p}{s}{k}"), format!("create a {k}"));
        create.action = Some("post");
        create.query = WRITE_QUERY.to_vec();
        create.body = Some(Body::Definition(self.kind_def.clone()));
        create.responses = Self::ok(&self.kind_def, &[200, 201, 202]);

        let mut ops = vec![list, create];
        // The namespace registry does not implement deletecollection.
        if !(self.info.group.is_empty() && self.info.plural == "namespaces") {
            let mut delete = self.op(
                "delete",
                format!("delete{p}Collection{s}{k}"),
                format!("delete collection of {k}"),
            );
            delete.action = Some("deletecollection");
            delete.query = DELETE_COLLECTION_QUERY.to_vec();
            delete.body = Some(Body::Definition(delete_options()));
            delete.responses = Self::ok(status, &[200]);
            ops.push(delete);
        }
        ops
    }

    fn item_ops(&self, subresource: Option<&str>) -> Vec<Operation> {
        let (p, s, k) = (&self.prefix, self.scope(), self.info.kind);
        let (suffix, what, def, kind) = match subresource {
            None => (
                String::new(),
                String::new(),
                self.kind_def.clone(),
                k.to_owned(),
            ),
            Some("scale") => (
                "Scale".into(),
                "scale of ".into(),
                schema::scale_definition_name(),
                "Scale".into(),
            ),
            Some(sub) => (
                capitalise(sub),
                format!("{sub} of "),
                self.kind_def.clone(),
                k.to_owned(),
            ),
        };
        let gvk = if kind == "Scale" {
            ("autoscaling".to_owned(), "v1".to_owned(), kind)
        } else {
            self.gvk(&kind)
        };
        let mut read = self.op(
            "get",
            format!("read{p}{s}{k}{suffix}"),
            format!("read {what}the specified {k}"),
        );
        read.action = Some("get");
        read.responses = Self::ok(&def, &[200]);

        let mut replace = self.op(
            "put",
            format!("replace{p}{s}{k}{suffix}"),
            format!("replace {what}the specified {k}"),
        );
        replace.action = Some("put");
        replace.query = WRITE_QUERY.to_vec();
        replace.body = Some(Body::Definition(def.clone()));
        replace.responses = Self::ok(&def, &[200, 201]);

        let mut patch = self.op(
            "patch",
            format!("patch{p}{s}{k}{suffix}"),
            format!("partially update {what}the specified {k}"),
        );
        patch.action = Some("patch");
        patch.query = PATCH_QUERY.to_vec();
        patch.body = Some(Body::Patch);
        patch.responses = Self::ok(&def, &[200, 201]);

        let mut ops = vec![read, replace];
        if subresource.is_none() {
            let mut delete = self.op(
                "delete",
                format!("delete{p}{s}{k}"),
                format!("delete a {k}"),
            );
            delete.action = Some("delete");
            delete.query = DELETE_QUERY.to_vec();
            delete.body = Some(Body::Definition(delete_options()));
            let status = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
            delete.responses = Self::ok(status, &[200, 202]);
            ops.push(delete);
        }
        ops.push(patch);
        for op in &mut ops {
            op.gvk = Some(gvk.clone());
        }
        ops
    }

    fn watch_op(&self, id: String, description: String, action: &'static str) -> Operation {
        let mut watch = self.op("get", id, description);
        watch.action = Some(action);
        watch.responses = Self::ok("io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent", &[200]);
        watch.produces = WATCH_TYPES;
        watch
    }
}

fn delete_options() -> String {
    "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions".into()
}

/// Every path of one resource.
pub(crate) fn resource_paths(info: &ResourceInfo) -> Vec<PathItem> {
    let builder = Builder {
        info,
        prefix: format!("{}{}", group_camel(info.group), capitalise(info.version)),
        tag: format!("{}_{}", group_tag(info.group), info.version),
        kind_def: schema::definition_name(info),
    };
    let (p, k, plural) = (&builder.prefix, info.kind, info.plural);
    let base = info.path_prefix();
    let namespace = (
        "namespace",
        "object name and auth scope, such as for teams and projects".to_owned(),
    );
    let name = ("name", format!("name of the {k}"));
    let scope_params = if info.namespaced() {
        vec![namespace.clone()]
    } else {
        Vec::new()
    };
    let scoped = if info.namespaced() {
        format!("{base}/namespaces/{{namespace}}/{plural}")
    } else {
        format!("{base}/{plural}")
    };
    let watch_scoped = if info.namespaced() {
        format!("{base}/watch/namespaces/{{namespace}}/{plural}")
    } else {
        format!("{base}/watch/{plural}")
    };
    let with_name = |params: &Vec<(&'static str, String)>| {
        let mut all = vec![name.clone()];
        all.extend(params.iter().cloned());
        all
    };
    let s = builder.scope();

    let mut paths = vec![
        PathItem {
            path: scoped.clone(),
            path_params: scope_params.clone(),
            query: vec!["pretty"],
            operations: builder.collection_ops(),
        },
        PathItem {
            path: format!("{scoped}/{{name}}"),
            path_params: with_name(&scope_params),
            query: vec!["pretty"],
            operations: builder.item_ops(None),
        },
    ];
    // The connect subresources (pods/log, pods/exec, nodes/proxy) have no object schema: they
    // are left out of the documents rather than described as get/put/patch of the object.
    for sub in info.subresources.iter().filter(|s| !ResourceInfo::is_connect_subresource(s)) {
        paths.push(PathItem {
            path: format!("{scoped}/{{name}}/{sub}"),
            path_params: with_name(&scope_params),
            query: vec!["pretty"],
            operations: builder.item_ops(Some(sub)),
        });
    }
    let watch_query: Vec<&'static str> = LIST_QUERY
        .iter()
        .copied()
        .chain(["pretty"])
        .collect::<Vec<_>>();
    let mut watch_query_sorted = watch_query.clone();
    watch_query_sorted.sort_unstable();
    paths.push(PathItem {
        path: watch_scoped.clone(),
        path_params: scope_params.clone(),
        query: watch_query_sorted.clone(),
        operations: vec![builder.watch_op(
            format!("watch{p}{s}{k}List"),
            format!("watch individual changes to a list of {k}. deprecated: use the 'watch' parameter with a list operation instead."),
            "watchlist",
        )],
    });
    paths.push(PathItem {
        path: format!("{watch_scoped}/{{name}}"),
        path_params: with_name(&scope_params),
        query: watch_query_sorted.clone(),
        operations: vec![builder.watch_op(
            format!("watch{p}{s}{k}"),
            format!("watch changes to an object of kind {k}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter."),
            "watch",
        )],
    });
    if info.namespaced() {
        let mut list = builder.collection_ops().remove(0);
        list.id = format!("list{p}{k}ForAllNamespaces");
        list.query = Vec::new();
        paths.push(PathItem {
            path: format!("{base}/{plural}"),
            path_params: Vec::new(),
            query: watch_query_sorted.clone(),
            operations: vec![list],
        });
        paths.push(PathItem {
            path: format!("{base}/watch/{plural}"),
            path_params: Vec::new(),
            query: watch_query_sorted,
            operations: vec![builder.watch_op(
                format!("watch{p}{k}ListForAllNamespaces"),
                format!("watch individual changes to a list of {k}. deprecated: use the 'watch' parameter with a list operation instead."),
                "watchlist",
            )],
        });
    }
    paths
}

/// A discovery path: one GET without `x-kubernetes-action`, as upstream documents them.
pub(crate) fn discovery_path(path: String, id: String, tag: String, definition: &str) -> PathItem {
    PathItem {
        path,
        path_params: Vec::new(),
        query: Vec::new(),
        operations: vec![Operation {
            method: "get",
            id,
            description: "get available resources".into(),
            tag,
            action: None,
            gvk: None,
            query: Vec::new(),
            body: None,
            responses: vec![(200, Some(definition.to_owned())), (401, None)],
            produces: OBJECT_TYPES,
        }],
    }
}

/// The `/apis/<group>/<version>/` resource-list path of a group-version.
pub(crate) fn api_resources_path(group: &str, version: &str) -> PathItem {
    let base = if group.is_empty() {
        format!("/api/{version}/")
    } else {
        format!("/apis/{group}/{version}/")
    };
    discovery_path(
        base,
        format!(
            "get{}{}APIResources",
            group_camel(group),
            capitalise(version)
        ),
        format!("{}_{version}", group_tag(group)),
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList",
    )
}

/// The `/apis/<group>/` path of a group.
pub(crate) fn api_group_path(group: &str) -> PathItem {
    discovery_path(
        format!("/apis/{group}/"),
        format!("get{}APIGroup", group_camel(group)),
        group_tag(group),
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;

    #[test]
    fn names_follow_upstream_conventions() {
        assert_eq!(group_camel(""), "Core");
        assert_eq!(
            group_camel("rbac.authorization.k8s.io"),
            "RbacAuthorization"
        );
        assert_eq!(group_tag("rbac.authorization.k8s.io"), "rbacAuthorization");
        assert_eq!(group_tag("apps"), "apps");
        assert_eq!(group_tag(""), "core");
    }

    #[test]
    fn a_namespaced_resource_has_collection_item_subresource_and_watch_paths() {
        let deployments = resources::find("apps", "v1", "deployments").expect("served");
        let paths = resource_paths(deployments);
        let names: Vec<&str> = paths.iter().map(|p| p.path.as_str()).collect();
        for wanted in [
            "/apis/apps/v1/namespaces/{namespace}/deployments",
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status",
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale",
            "/apis/apps/v1/deployments",
            "/apis/apps/v1/watch/deployments",
            "/apis/apps/v1/watch/namespaces/{namespace}/deployments",
            "/apis/apps/v1/watch/namespaces/{namespace}/deployments/{name}",
        ] {
            assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
        }
        let item = &paths[1];
        let ids: Vec<&str> = item.operations.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "readAppsV1NamespacedDeployment",
                "replaceAppsV1NamespacedDeployment",
                "deleteAppsV1NamespacedDeployment",
                "patchAppsV1NamespacedDeployment"
            ]
        );
        let scale = paths
            .iter()
            .find(|p| p.path.ends_with("/scale"))
            .expect("scale path");
        let patch = scale
            .operations
            .iter()
            .find(|o| o.method == "patch")
            .expect("patch");
        assert_eq!(
            patch.gvk,
            Some(("autoscaling".into(), "v1".into(), "Scale".into()))
        );
        assert_eq!(
            patch.responses[0].1.as_deref(),
            Some("io.k8s.api.autoscaling.v1.Scale")
        );
    }

    #[test]
    fn a_cluster_resource_has_no_namespace_parameter() {
        let nodes = resources::find("", "v1", "nodes").expect("served");
        let paths = resource_paths(nodes);
        assert_eq!(paths[0].path, "/api/v1/nodes");
        assert_eq!(paths[1].path, "/api/v1/nodes/{name}");
        assert!(paths
            .iter()
            .all(|p| p.path_params.iter().all(|(n, _)| *n != "namespace")));
        assert_eq!(paths[0].operations[0].id, "listCoreV1Node");
        assert_eq!(paths[0].operations[2].id, "deleteCoreV1CollectionNode");
    }
}

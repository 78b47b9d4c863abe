//! Parsing a request path into what it addresses, as kube-apiserver's RequestInfoFactory does.

use rkube_api::resources::{self, ResourceInfo};

use crate::status::{ApiError, Result};

/// What a resource path names.
#[derive(Debug, Clone)]
pub struct ResourcePath {
    pub info: &'static ResourceInfo,
    /// The namespace in the path (`/namespaces/<ns>/...`), if any.
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// Any path the server answers.
#[derive(Debug, Clone)]
pub enum Target {
    /// `/api`, `/apis`, `/api/v1`, `/apis/<group>`, `/apis/<group>/<version>`.
    Discovery(Discovery),
    Resource(ResourcePath),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    LegacyVersions,
    Groups,
    Group(String),
    GroupVersion(String, String),
}

/// Parses `/api/...` and `/apis/...` paths. Other paths are not ours to parse.
pub fn parse(path: &str) -> Result<Target> {
    let trimmed = path.trim_end_matches('/');
    let segments: Vec<String> = trimmed
        .split('/')
        .skip(1)
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (group, version, rest) = match seg.as_slice() {
        ["api"] => return Ok(Target::Discovery(Discovery::LegacyVersions)),
        ["apis"] => return Ok(Target::Discovery(Discovery::Groups)),
        ["api", v] => return Ok(Target::Discovery(Discovery::GroupVersion(String::new(), (*v).to_owned()))),
        ["apis", g] => return Ok(Target::Discovery(Discovery::Group((*g).to_owned()))),
        ["apis", g, v] => return Ok(Target::Discovery(Discovery::GroupVersion((*g).to_owned(), (*v).to_owned()))),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::no_route()),
    };
    // `namespaces/<ns>/<resource>...` unless the resource is namespaces itself.
    // (`namespaces/<name>/status|finalize` are subresources of the namespace itself.)
    let (namespace, rest) = match rest {
        ["namespaces", _, "status" | "finalize"] => (None, rest.to_vec()),
        ["namespaces", ns, resource, tail @ ..] => (Some((*ns).to_owned()), {
            let mut v = vec![*resource];
            v.extend_from_slice(tail);
            v
        }),
        other => (None, other.to_vec()),
    };
    let (resource, name, subresource) = match rest.as_slice() {
        [r] => (*r, None, None),
        [r, n] => (*r, Some((*n).to_owned()), None),
        [r, n, s] => (*r, Some((*n).to_owned()), Some((*s).to_owned())),
        _ => return Err(ApiError::no_route()),
    };
    let info = resources::find(group, version, resource).ok_or_else(ApiError::no_route)?;
    if let Some(sub) = &subresource {
        if !info.has_subresource(sub) {
            return Err(ApiError::no_route());
        }
    }
    // `/api/v1/namespaces/<ns>/namespaces` is not a thing; cluster-scoped resources have no namespace segment.
    if namespace.is_some() && !info.namespaced() {
        return Err(ApiError::no_route());
    }
    Ok(Target::Resource(ResourcePath { info, namespace, name, subresource }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(path: &str) -> ResourcePath {
        match parse(path).unwrap() {
            Target::Resource(r) => r,
            other => panic!("{path} parsed as {other:?}"),
        }
    }

    #[test]
    fn parses_namespaced_items_and_subresources() {
        let r = resource("/apis/apps/v1/namespaces/dev/deployments/web/scale");
        assert_eq!(r.info.plural, "deployments");
        assert_eq!(r.namespace.as_deref(), Some("dev"));
        assert_eq!(r.name.as_deref(), Some("web"));
        assert_eq!(r.subresource.as_deref(), Some("scale"));
    }

    #[test]
    fn namespaces_are_a_cluster_scoped_resource() {
        let r = resource("/api/v1/namespaces/dev");
        assert_eq!(r.info.plural, "namespaces");
        assert_eq!(r.namespace, None);
        assert_eq!(r.name.as_deref(), Some("dev"));
        let r = resource("/api/v1/namespaces/dev/status");
        assert_eq!(r.subresource.as_deref(), Some("status"));
        let r = resource("/api/v1/pods");
        assert!(r.namespace.is_none() && r.name.is_none());
    }

    #[test]
    fn unknown_paths_are_404() {
        assert!(parse("/api/v1/frobs").is_err());
        assert!(parse("/apis/apps/v9/deployments").is_err());
        assert!(parse("/api/v1/namespaces/dev/nodes").is_err());
        assert!(parse("/api/v1/namespaces/dev/pods/x/bogus").is_err());
        assert!(matches!(parse("/apis").unwrap(), Target::Discovery(Discovery::Groups)));
    }
}

//! The image pull policy default of SetDefaults_Container, which depends on the image
//! reference's tag (upstream's `parsers.ParseImageName` over the docker reference grammar).

/// The image pull policy SetDefaults_Container picks: `Always` when the image's tag is
/// `latest` (also when it has neither tag nor digest, which means `latest`), `IfNotPresent`
/// otherwise, including images that do not parse as a reference.
pub(crate) fn pull_policy_for(image: &str) -> &'static str {
    match image_tag(image) {
        Some("latest") => "Always",
        _ => "IfNotPresent",
    }
}

/// The tag upstream's `parsers.ParseImageName` reports: the explicit tag, `latest` when there
/// is neither a tag nor a digest, `None` for a digest-only or unparsable reference.
fn image_tag(image: &str) -> Option<&str> {
    if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repository, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    if !repository_is_valid(repository) || tag.is_some_and(|t| !tag_is_valid(t)) {
        return None;
    }
    match (tag, digest) {
        (Some(tag), _) => Some(tag),
        (None, None) => Some("latest"),
        (None, Some(_)) => None,
    }
}

/// Docker reference rules, simplified: path components are lower case; the first component
/// may be a registry host (it contains `.` or `:`, or is `localhost`) where upper case is fine.
fn repository_is_valid(repository: &str) -> bool {
    let mut components = repository.split('/').peekable();
    let Some(first) = components.peek().copied() else {
        return false;
    };
    let has_host = repository.contains('/')
        && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_host {
        components.next();
    }
    let mut any = false;
    for component in components {
        any = true;
        let valid = !component.is_empty()
            && component.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            })
            && component.starts_with(|c: char| c.is_ascii_alphanumeric())
            && component.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !valid {
            return false;
        }
    }
    any
}

fn tag_is_valid(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_follows_the_image_tag() {
        let cases = [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.25", "IfNotPresent"),
            ("docker.io/library/nginx:1.25-alpine", "IfNotPresent"),
            ("localhost:5000/app", "Always"),
            ("localhost:5000/app:v2", "IfNotPresent"),
            ("registry.example.com:5000/team/app:latest", "Always"),
            (
                "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "IfNotPresent",
            ),
            (
                "nginx:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab",
                "Always",
            ),
            ("", "IfNotPresent"),
            ("NGINX", "IfNotPresent"),
        ];
        for (image, want) in cases {
            assert_eq!(pull_policy_for(image), want, "image {image:?}");
        }
    }
}

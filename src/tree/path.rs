//! Znode paths: absolute, `/`-separated, no trailing `/` except the root
//! itself (see [`crate::connect::validate_path`]). The root is the one path
//! whose name is empty and that has no parent, which every helper here
//! handles on purpose.

/// Whether `path` is `scope` or below it. `/ab` is not below `/a`.
pub(crate) fn within(path: &str, scope: &str) -> bool {
    scope == "/"
        || path == scope
        || (path.starts_with(scope) && path.as_bytes().get(scope.len()) == Some(&b'/'))
}

/// The parent of `path`; `None` for the root (and for a relative name).
pub fn parent(path: &str) -> Option<&str> {
    match path.rfind('/') {
        None => None,
        Some(_) if path == "/" => None,
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
    }
}

/// The last name in `path`; empty for the root.
pub(crate) fn name_of(path: &str) -> &str {
    if path == "/" {
        return "";
    }
    path.rsplit('/').next().unwrap_or("")
}

/// `name` below `parent`.
pub(crate) fn child_path(parent: &str, name: &str) -> String {
    let mut p = String::with_capacity(parent.len() + 1 + name.len());
    p.push_str(parent);
    if parent != "/" {
        p.push('/');
    }
    p.push_str(name);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_means_the_scope_or_below_it() {
        assert!(within("/a", "/a"));
        assert!(within("/a/b", "/a"));
        assert!(within("/a/b/c", "/a"));
        assert!(!within("/a", "/a/b"));
    }

    #[test]
    fn within_respects_name_boundaries() {
        assert!(!within("/ab", "/a"));
        assert!(!within("/a-b", "/a"));
        assert!(within("/a/b", "/a"));
    }

    #[test]
    fn everything_is_within_the_root() {
        assert!(within("/", "/"));
        assert!(within("/a", "/"));
        assert!(within("/anything/below", "/"));
    }

    #[test]
    fn the_parent_of_a_top_level_node_is_the_root() {
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a/b/c"), Some("/a/b"));
    }

    #[test]
    fn the_root_has_no_parent() {
        assert_eq!(parent("/"), None);
        assert_eq!(parent("a"), None);
    }

    #[test]
    fn a_child_of_the_root_has_one_slash() {
        assert_eq!(child_path("/", "x"), "/x");
        assert_eq!(child_path("/a", "b"), "/a/b");
        assert_eq!(child_path("/a/b", "c"), "/a/b/c");
    }

    #[test]
    fn the_root_has_an_empty_name() {
        assert_eq!(name_of("/"), "");
        assert_eq!(name_of("/a"), "a");
        assert_eq!(name_of("/a/b"), "b");
    }

    #[test]
    fn child_path_parent_and_name_of_agree() {
        for (p, n) in [("/", "x"), ("/a", "b"), ("/a/b", "c")] {
            let c = child_path(p, n);
            assert_eq!(parent(&c), Some(p));
            assert_eq!(name_of(&c), n);
            assert!(within(&c, p));
        }
    }
}

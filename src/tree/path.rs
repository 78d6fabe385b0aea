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

/// The fewest subtrees that hold every path: paths below another one go.
pub(crate) fn covering(paths: &[String]) -> Vec<String> {
    let mut sorted: Vec<&String> = paths.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut out: Vec<String> = Vec::new();
    for p in sorted {
        // Sorted order puts an ancestor before its descendants, though not
        // always right before ("/a" < "/a-b" < "/a/c"): check them all.
        if !out.iter().any(|s| within(p, s)) {
            out.retain(|s| !within(s, p));
            out.push(p.clone());
        }
    }
    out
}

/// At most `max` subtrees holding every one of `scopes`: when there are more,
/// they are cut to shallower ancestors (never above `root`) until they fit.
/// Each re-checked subtree costs sessions of its own, so many scattered paths
/// are cheaper re-checked as a few common ancestors.
pub(crate) fn coarsen(scopes: Vec<String>, root: &str, max: usize) -> Vec<String> {
    if scopes.len() <= max {
        return scopes;
    }
    let depth = |p: &str| p.split('/').filter(|n| !n.is_empty()).count();
    let base = depth(root);
    let deepest = scopes.iter().map(|p| depth(p)).max().unwrap_or(base);
    for keep in (base..deepest).rev() {
        let cut: Vec<String> = scopes
            .iter()
            .map(|p| {
                let names: Vec<&str> = p.split('/').filter(|n| !n.is_empty()).take(keep).collect();
                if names.is_empty() {
                    "/".to_string()
                } else {
                    format!("/{}", names.join("/"))
                }
            })
            .collect();
        let cut = covering(&cut);
        if cut.len() <= max {
            return cut;
        }
    }
    vec![root.to_string()]
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

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn covering_keeps_only_the_topmost_paths() {
        assert_eq!(
            covering(&s(&["/a/c", "/a-b", "/a", "/x/y", "/x/y/z", "/a"])),
            s(&["/a", "/a-b", "/x/y"])
        );
        assert_eq!(covering(&s(&["/a/b", "/"])), s(&["/"]));
    }

    #[test]
    fn many_scattered_paths_are_coarsened_to_common_ancestors() {
        let many: Vec<String> = (0..50).map(|i| format!("/r/q{}/n", i % 5)).collect();
        let many = covering(&many);
        assert_eq!(coarsen(many.clone(), "/r", 10), many);
        assert_eq!(coarsen(many.clone(), "/r", 3), s(&["/r"]));
        let two_groups = s(&["/r/a/1", "/r/a/2", "/r/b/1", "/r/b/2"]);
        assert_eq!(coarsen(two_groups, "/r", 2), s(&["/r/a", "/r/b"]));
    }
}

//! `--exclude` patterns: globs over full znode paths.
//!
//! `*` and `?` stay within one name, `**` crosses names. An excluded node is
//! never read, and neither is anything under it, so excluding a subtree also
//! keeps the walk off it.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{Error, Result};

/// Excluded unless told otherwise: ZooKeeper's own bookkeeping (quotas, config),
/// which differs between any two ensembles.
pub const DEFAULT_EXCLUDES: &[&str] = &["/zookeeper"];

/// Writers' lock nodes (see `repair::lock`) are named
/// `/<LOCK_PREFIX><pid>-<random><LOCK_SUFFIX>` at the server's root. The
/// name is kept here, below both the lock and every walk, because every
/// walk leaves those nodes out.
pub(crate) const LOCK_PREFIX: &str = "zkparity-writer-";
pub(crate) const LOCK_SUFFIX: &str = ".lock";

/// Whether `path` is a writer's lock node (at the root of a walk from `/`).
pub fn is_lock_path(path: &str) -> bool {
    path.strip_prefix('/')
        .is_some_and(|name| name.starts_with(LOCK_PREFIX) && name.ends_with(LOCK_SUFFIX))
}

/// A pattern matching exactly `path` (glob characters escaped).
pub(crate) fn escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[derive(Clone, Debug)]
pub struct Excludes {
    set: GlobSet,
    patterns: Vec<String>,
}

impl Excludes {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Excludes> {
        let mut builder = GlobSetBuilder::new();
        let mut kept = Vec::new();
        for p in patterns {
            let p = p.as_ref();
            if !p.starts_with('/') {
                return Err(Error::BadExclude {
                    pattern: p.to_string(),
                    reason: "patterns match full paths and must start with '/'".into(),
                });
            }
            let glob = GlobBuilder::new(p)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| Error::BadExclude {
                    pattern: p.to_string(),
                    reason: e.kind().to_string(),
                })?;
            builder.add(glob);
            kept.push(p.to_string());
        }
        let set = builder.build().map_err(|e| Error::BadExclude {
            pattern: kept.join(" "),
            reason: e.to_string(),
        })?;
        Ok(Excludes {
            set,
            patterns: kept,
        })
    }

    /// Writers' lock nodes are left out whatever the patterns: they are
    /// zkparity's own, and no copy of the tree.
    pub fn is_excluded(&self, path: &str) -> bool {
        is_lock_path(path) || (!self.patterns.is_empty() && self.set.is_match(path))
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_root_lock_names_are_lock_paths() {
        assert!(is_lock_path("/zkparity-writer-12-00ff.lock"));
        assert!(!is_lock_path("/a/zkparity-writer-12-00ff.lock"));
        assert!(!is_lock_path("/zkparity-writer-12"));
        assert!(!is_lock_path("/kafka"));
    }

    #[test]
    fn escaped_paths_match_only_themselves() {
        let odd = "/a/*[x]{y,z}?\\b";
        let ex = Excludes::new(&[escape(odd)]).unwrap();
        assert!(ex.is_excluded(odd));
        assert!(!ex.is_excluded("/a/q[x]{y,z}?\\b"));
        assert!(!ex.is_excluded("/a/*xy?\\b"));
    }

    #[test]
    fn star_stays_within_one_name() {
        let ex = Excludes::new(&["/app/*/locks"]).unwrap();
        assert!(ex.is_excluded("/app/x/locks"));
        assert!(!ex.is_excluded("/app/x/y/locks"));
    }

    #[test]
    fn double_star_crosses_names() {
        let ex = Excludes::new(&["/app/**/tmp"]).unwrap();
        assert!(ex.is_excluded("/app/x/y/tmp"));
        assert!(!ex.is_excluded("/other/tmp"));
    }

    #[test]
    fn default_excludes_only_zookeeper_node_itself() {
        let ex = Excludes::new(DEFAULT_EXCLUDES).unwrap();
        assert!(ex.is_excluded("/zookeeper"));
        assert!(!ex.is_excluded("/zookeeperish"));
    }

    #[test]
    fn relative_and_malformed_patterns_are_refused() {
        assert!(Excludes::new(&["app/*"]).is_err());
        let err = Excludes::new(&["/a/[b"]).unwrap_err().to_string();
        assert!(err.contains("/a/[b"), "{err}");
    }
}

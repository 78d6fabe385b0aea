//! The ZooKeeper releases a sandbox server can run: Debian's 3.8.0, and
//! 3.4.6, 3.6.3 and 3.9.3 from the jars PySpark's source distributions ship
//! (`deps/jars/`), which `scripts/install-zk-versions` unpacks under
//! [`VERSIONS_DIR`].
//!
//! What differs between them, for the sandbox: where the jars are, and that
//! 3.4 knows neither a four-letter-word whitelist nor an AdminServer nor a
//! client address on `server.N` lines.

use std::path::{Path, PathBuf};

use crate::error::SandboxError;

/// Where `scripts/install-zk-versions` puts each release's jars, one folder
/// per release (`zookeeper-3.4.6/`...). `$ZKPARITY_ZK_VERSIONS` overrides it.
pub const VERSIONS_DIR: &str = "/var/cache/zkparity";
pub const VERSIONS_ENV: &str = "ZKPARITY_ZK_VERSIONS";

/// A ZooKeeper release.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Release {
    V3_4_6,
    V3_6_3,
    /// Debian's package: the jars in `/usr/share/java`.
    #[default]
    V3_8_0,
    V3_9_3,
}

impl Release {
    pub const ALL: [Release; 4] = [
        Release::V3_4_6,
        Release::V3_6_3,
        Release::V3_8_0,
        Release::V3_9_3,
    ];

    /// Where it stands in [`Release::ALL`] (for a table per release).
    pub fn index(self) -> usize {
        match self {
            Release::V3_4_6 => 0,
            Release::V3_6_3 => 1,
            Release::V3_8_0 => 2,
            Release::V3_9_3 => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Release::V3_4_6 => "3.4.6",
            Release::V3_6_3 => "3.6.3",
            Release::V3_8_0 => "3.8.0",
            Release::V3_9_3 => "3.9.3",
        }
    }

    /// 3.5 brought the whitelist (`srvr` only by default), the AdminServer
    /// (on by default), dynamic membership and `;host:port` client
    /// addresses on `server.N` lines.
    pub fn is_3_5_or_later(self) -> bool {
        self != Release::V3_4_6
    }

    /// The jars this release needs from its own folder, beside Debian's
    /// slf4j (and, from 3.5, metrics-core and snappy-java).
    fn own_jars(self) -> &'static [&'static str] {
        match self {
            Release::V3_4_6 => &["zookeeper-3.4.6.jar"],
            Release::V3_6_3 => &["zookeeper-3.6.3.jar", "zookeeper-jute-3.6.3.jar"],
            Release::V3_8_0 => &[],
            Release::V3_9_3 => &["zookeeper-3.9.3.jar", "zookeeper-jute-3.9.3.jar"],
        }
    }

    /// The folder holding this release's own jars.
    pub fn dir(self) -> PathBuf {
        let base = std::env::var_os(VERSIONS_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(VERSIONS_DIR));
        self.dir_in(&base)
    }

    fn dir_in(self, base: &Path) -> PathBuf {
        base.join(format!("zookeeper-{}", self.name()))
    }

    /// The classpath of a server of this release: its own jars, then
    /// Debian's logging (slf4j-simple shows startup failures in the log)
    /// and, from 3.5, the jars a server cannot load without.
    pub(crate) fn classpath(self, debian: &Path) -> Result<String, SandboxError> {
        self.classpath_in(&self.dir(), debian)
    }

    fn classpath_in(self, dir: &Path, debian: &Path) -> Result<String, SandboxError> {
        let mut parts = Vec::new();
        for jar in self.own_jars() {
            let path = dir.join(jar);
            if !path.is_file() {
                return Err(SandboxError::MissingRelease {
                    release: self.name(),
                    jar: path,
                });
            }
            parts.push(path.to_string_lossy().into_owned());
        }
        let debian_jars: &[&str] = if self.is_3_5_or_later() {
            &[
                "slf4j-api.jar",
                "slf4j-simple.jar",
                "metrics-core.jar",
                "snappy-java.jar",
            ]
        } else {
            &["slf4j-api.jar", "slf4j-simple.jar"]
        };
        for jar in debian_jars {
            let path = debian.join(jar);
            if !path.is_file() {
                return Err(SandboxError::MissingJar {
                    jar: jar.to_string(),
                    dir: debian.to_path_buf(),
                });
            }
            parts.push(path.to_string_lossy().into_owned());
        }
        Ok(parts.join(":"))
    }
}

impl std::fmt::Display for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_not_installed_names_its_jar_and_the_fix() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = Release::V3_9_3
            .classpath_in(
                &Release::V3_9_3.dir_in(tmp.path()),
                Path::new("/usr/share/java"),
            )
            .expect_err("nothing installed there");
        let text = err.to_string();
        assert!(
            text.contains("3.9.3") && text.contains("install-zk-versions"),
            "{text}"
        );
    }

    #[test]
    fn only_3_4_lacks_the_3_5_features() {
        let old: Vec<Release> = Release::ALL
            .into_iter()
            .filter(|r| !r.is_3_5_or_later())
            .collect();
        assert_eq!(old, [Release::V3_4_6]);
        assert_eq!(Release::default(), Release::V3_8_0);
    }
}

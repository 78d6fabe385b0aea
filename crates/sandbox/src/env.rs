//! The environment variables that point the sandbox at `java` and at
//! ZooKeeper's jars. Kept apart from [`crate::config`], which reads them,
//! because [`crate::error`]'s messages name them too, and every module,
//! config included, depends on the errors.

/// Environment variable overriding the classpath (e.g. jars extracted with
/// `dpkg -x` on a machine without the Debian package).
pub const CLASSPATH_ENV: &str = "ZKPARITY_ZK_CLASSPATH";
/// Environment variable naming the `java` binary to use.
pub const JAVA_ENV: &str = "ZKPARITY_JAVA";

//! Connect strings, digest credentials and sessions.
//!
//! Credentials never come from the command line: argv is visible to every user
//! of the machine through `ps`. They come from a file only its owner can read,
//! or from an environment variable, and they are never printed (see
//! [`Credentials`]'s `Debug`).

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zookeeper_client as zk;

use crate::error::{Error, Result};
use crate::sasl::SaslConfig;

/// A parsed connect string: `host:port[,host:port...][/chroot]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectString {
    pub hosts: Vec<(String, u16)>,
    /// `None` for the server's root.
    pub chroot: Option<String>,
}

impl ConnectString {
    /// What precedes an '@' is taken for credentials (`user:password@host`,
    /// as URLs carry them) and never shown, even in the error refusing it.
    /// A chroot may hold an '@' (`h:2181/kafka@prod`); a password may hold a
    /// '/', so any input with an '@' that does not parse is refused so too.
    pub fn parse(input: &str) -> Result<ConnectString> {
        let credentials = || Error::BadConnectString {
            input: format!(
                "<not shown>@{}",
                &input[input.rfind('@').map_or(0, |i| i + 1)..]
            ),
            reason: "a connect string holds no credentials: '@' found; give them with \
                     --source-auth-file or --target-auth-file (source_auth_file or \
                     target_auth_file in the agent's config)"
                .into(),
        };
        let hosts = input.split('/').next().unwrap_or(input);
        if hosts.contains('@') {
            return Err(credentials());
        }
        match ConnectString::parse_plain(input) {
            Err(_) if input.contains('@') => Err(credentials()),
            parsed => parsed,
        }
    }

    fn parse_plain(input: &str) -> Result<ConnectString> {
        let bad = |reason: &str| Error::BadConnectString {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let input_trimmed = input.trim();
        if input_trimmed.is_empty() {
            return Err(bad("it is empty"));
        }
        if let Some((scheme, _)) = input_trimmed.split_once("://") {
            return Err(bad(&format!(
                "a connect string is host:port[,host:port...][/chroot], not a URL: drop \"{scheme}://\""
            )));
        }
        let (host_part, chroot) = match input_trimmed.find('/') {
            Some(i) => (&input_trimmed[..i], Some(&input_trimmed[i..])),
            None => (input_trimmed, None),
        };
        if host_part.contains(';') {
            return Err(bad("servers are separated by commas, not semicolons"));
        }
        let mut hosts = Vec::new();
        for entry in host_part.split(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(bad("it has an empty host entry"));
            }
            // A bare host name means ZooKeeper's client port, as zkCli has it.
            let (host, port) = match split_host_port(entry) {
                Some(hp) => hp,
                None if !entry.contains(['[', ']', ':']) => (entry, DEFAULT_CLIENT_PORT),
                None => return Err(bad(&format!("{entry:?} is not host:port"))),
            };
            if host.is_empty() {
                return Err(bad(&format!("{entry:?} has no host name")));
            }
            if host
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '@' | '[' | ']'))
            {
                return Err(bad(&format!("{host:?} is not a valid host name")));
            }
            let port: u16 = port
                .parse()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad(&format!("{port:?} is not a port number (1-65535)")))?;
            hosts.push((host.to_string(), port));
        }
        let chroot = match chroot {
            None | Some("/") => None,
            Some(c) => {
                validate_path(c).map_err(|reason| bad(&format!("chroot {c:?}: {reason}")))?;
                Some(c.to_string())
            }
        };
        Ok(ConnectString { hosts, chroot })
    }
}

/// The port a host without one is given.
const DEFAULT_CLIENT_PORT: &str = "2181";

fn split_host_port(entry: &str) -> Option<(&str, &str)> {
    if let Some(rest) = entry.strip_prefix('[') {
        // [ipv6] or [ipv6]:port
        let end = rest.find(']')?;
        let port = match &rest[end + 1..] {
            "" => DEFAULT_CLIENT_PORT,
            after => after.strip_prefix(':')?,
        };
        return Some((&rest[..end], port));
    }
    let i = entry.rfind(':')?;
    Some((&entry[..i], &entry[i + 1..]))
}

impl fmt::Display for ConnectString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (host, port)) in self.hosts.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if host.contains(':') {
                write!(f, "[{host}]:{port}")?;
            } else {
                write!(f, "{host}:{port}")?;
            }
        }
        if let Some(chroot) = &self.chroot {
            f.write_str(chroot)?;
        }
        Ok(())
    }
}

/// Checks a ZooKeeper path the way the server would, so bad input is refused
/// before anything is sent.
pub fn validate_path(path: &str) -> std::result::Result<(), String> {
    if !path.starts_with('/') {
        return Err("a path must start with '/'".into());
    }
    if path.len() > 1 && path.ends_with('/') {
        return Err("a path must not end with '/'".into());
    }
    if path.contains("//") {
        return Err("a path must not contain an empty name ('//')".into());
    }
    if path.split('/').any(|name| name == "." || name == "..") {
        return Err("'.' and '..' are not allowed as names".into());
    }
    if path.contains('\0') {
        return Err("a path must not contain NUL".into());
    }
    Ok(())
}

/// Digest credentials (`user:password`). The value is never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    secret: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

impl Credentials {
    fn parse(raw: &str) -> std::result::Result<Credentials, String> {
        let value = raw.trim_end_matches(['\n', '\r']);
        if value.contains(['\n', '\r']) {
            return Err("expected one line of the form user:password, found several".into());
        }
        let value = value.strip_prefix("digest:").unwrap_or(value);
        match value.split_once(':') {
            Some((user, _)) if !user.is_empty() => Ok(Credentials {
                secret: value.to_string(),
            }),
            _ => Err("expected one line of the form user:password".into()),
        }
    }

    /// The user part, safe to show.
    #[cfg(test)]
    pub(crate) fn user(&self) -> &str {
        self.secret.split(':').next().unwrap_or("")
    }

    /// Reads credentials from a file that only its owner may read.
    pub(crate) fn from_file(path: &Path) -> Result<Credentials> {
        let err = |reason: String| Error::CredentialsFile {
            path: path.to_path_buf(),
            reason,
        };
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            // The credentials themselves given in place of their file's
            // name: the name is not shown, it may be the password.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && looks_like_credentials(path) => {
                return Err(Error::CredentialsFile {
                    path: PathBuf::from("<not shown>"),
                    reason: "no such file, and its name looks like user:password: give the \
                             name of a file that holds them (mode 600)"
                        .into(),
                })
            }
            Err(e) => return Err(err(e.to_string())),
        };
        if meta.is_dir() {
            return Err(err(
                "is a directory; give the file that holds user:password".into(),
            ));
        }
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(err(format!(
                "its mode {:o} lets other users read it; run chmod 600 on it",
                mode & 0o777
            )));
        }
        let raw = crate::bounded::read_text(path).map_err(|e| err(e.to_string()))?;
        Credentials::parse(&raw).map_err(err)
    }

    /// Reads credentials from an environment variable, if it is set.
    pub(crate) fn from_env(var: &str) -> Result<Option<Credentials>> {
        match std::env::var(var) {
            Ok(raw) if raw.is_empty() => Ok(None),
            Ok(raw) => Credentials::parse(&raw)
                .map(Some)
                .map_err(|reason| Error::CredentialsEnv {
                    var: var.to_string(),
                    reason,
                }),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(Error::CredentialsEnv {
                var: var.to_string(),
                reason: "it is not valid UTF-8".into(),
            }),
        }
    }

    /// A file wins over the environment, so an explicit flag always decides.
    pub fn load(file: Option<&PathBuf>, env_var: &str) -> Result<Option<Credentials>> {
        match file {
            Some(path) => Credentials::from_file(path).map(Some),
            None => Credentials::from_env(env_var),
        }
    }

    /// Replaces every occurrence of the secret in `text`; used on error messages
    /// that pass through text from elsewhere.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let password = self.secret.split_once(':').map(|(_, p)| p).unwrap_or("");
        if password.is_empty() {
            return text.to_string();
        }
        text.replace(password, "<redacted>")
    }
}

/// A name with a ':' and no '/': `user:password` rather than a path.
fn looks_like_credentials(path: &Path) -> bool {
    let name = path.to_string_lossy();
    name.contains(':') && !name.contains('/')
}

/// TLS to an ensemble's secure client port: the CA that signed the servers'
/// certificates (always verified, host names included) and, for servers that
/// want client certificates, an identity. The key is never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsConfig {
    ca_pem: String,
    identity: Option<(String, String)>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TlsConfig(ca, {})",
            if self.identity.is_some() {
                "client certificate, key <redacted>"
            } else {
                "no client certificate"
            }
        )
    }
}

impl TlsConfig {
    /// Reads the CA bundle and, if given, the client certificate and key;
    /// the key file, a secret, must be readable by its owner only.
    pub fn load(ca: &Path, cert: Option<&Path>, key: Option<&Path>) -> Result<TlsConfig> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|e| Error::CredentialsFile {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
        };
        let ca_pem = read(ca)?;
        let identity = match (cert, key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let mode = std::fs::metadata(key)
                    .map_err(|e| Error::CredentialsFile {
                        path: key.to_path_buf(),
                        reason: e.to_string(),
                    })?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    return Err(Error::CredentialsFile {
                        path: key.to_path_buf(),
                        reason: format!(
                            "its mode {:o} lets other users read this private key; run chmod 600 on it",
                            mode & 0o777
                        ),
                    });
                }
                Some((read(cert)?, read(key)?))
            }
            _ => {
                return Err(Error::Usage(
                    "a TLS client certificate and its key go together: give both or neither".into(),
                ))
            }
        };
        Ok(TlsConfig { ca_pem, identity })
    }

    fn options(&self) -> std::result::Result<zk::TlsOptions, zk::Error> {
        let options = zk::TlsOptions::new().with_pem_ca(&self.ca_pem)?;
        match &self.identity {
            Some((cert, key)) => options.with_pem_identity(cert, key),
            None => Ok(options),
        }
    }
}

/// How to reach one ensemble.
#[derive(Clone, Debug)]
pub struct EnsembleSpec {
    /// `source` or `target`: used in every message about this ensemble.
    pub side: String,
    pub connect: ConnectString,
    pub credentials: Option<Credentials>,
    /// A SASL login (DIGEST-MD5 or Kerberos) from a JAAS file, besides or
    /// instead of digest credentials.
    pub sasl: Option<Box<SaslConfig>>,
    /// `Some` to connect with TLS (to the servers' secure client port).
    pub tls: Option<TlsConfig>,
    pub session_timeout: Duration,
    pub connect_timeout: Duration,
}

impl EnsembleSpec {
    /// The command line's session and connect timeouts.
    pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// An ensemble reached without credentials or TLS, with the default
    /// timeouts.
    pub fn plain(side: &str, connect: &str) -> Result<EnsembleSpec> {
        Ok(EnsembleSpec {
            side: side.to_string(),
            connect: ConnectString::parse(connect)?,
            credentials: None,
            sasl: None,
            tls: None,
            session_timeout: Self::DEFAULT_TIMEOUT,
            connect_timeout: Self::DEFAULT_TIMEOUT,
        })
    }

    fn connect_error(&self, reason: impl Into<String>) -> Error {
        let reason = reason.into();
        let reason = match &self.credentials {
            Some(c) => c.scrub(&reason),
            None => reason,
        };
        let reason = match self.sasl.as_deref().and_then(SaslConfig::secret) {
            Some(secret) => reason.replace(secret, "<redacted>"),
            None => reason,
        };
        Error::Connect {
            side: self.side.clone(),
            ensemble: self.connect.to_string(),
            reason,
        }
    }

    /// Opens one session. Fails fast when no server answers, rather than
    /// retrying for a whole session timeout.
    pub async fn connect(&self) -> Result<zk::Client> {
        let connector = zk::Client::connector()
            .with_session_timeout(self.session_timeout)
            .with_fail_eagerly();
        let connector = self.authenticated(connector)?;
        self.establish(connector).await
    }

    /// Adds this ensemble's digest credentials and SASL login.
    fn authenticated(&self, mut connector: zk::Connector) -> Result<zk::Connector> {
        if let Some(creds) = &self.credentials {
            connector = connector.with_auth("digest", creds.secret.as_bytes());
        }
        if let Some(sasl) = &self.sasl {
            connector = connector.with_sasl(sasl.options()?);
        }
        Ok(connector)
    }

    /// Opens a session that writes; with `as_3_4`, `create` uses the plain
    /// Create request, since 3.4 knows no Create2 and refuses it as
    /// unimplemented. Whether it must is asked of the servers' `srvr`
    /// ([`EnsembleSpec::writes_as_3_4`], with the four-letter words in
    /// [`crate::probe`]).
    pub async fn connect_writer(&self, as_3_4: bool) -> Result<zk::Client> {
        let mut connector = zk::Client::connector()
            .with_session_timeout(self.session_timeout)
            .with_fail_eagerly();
        if as_3_4 {
            connector = connector.with_server_version(3, 4, 0);
        }
        let connector = self.authenticated(connector)?;
        self.establish(connector).await
    }

    /// Resumes `session` (from any ensemble) on this one, without
    /// credentials and at the server's root whatever the chroot:
    /// `Ok(None)` when the servers do not know it. A detached client leaves
    /// the session open when dropped.
    pub(crate) async fn resume(
        &self,
        session: Option<zk::SessionInfo>,
        detached: bool,
    ) -> Result<Option<zk::Client>> {
        let mut connector = zk::Client::connector()
            .with_session_timeout(self.session_timeout)
            .with_fail_eagerly();
        if let Some(session) = session {
            connector = connector.with_session(session);
        }
        if detached {
            connector = connector.with_detached();
        }
        let root = ConnectString {
            chroot: None,
            ..self.connect.clone()
        };
        match self.establish_raw(connector, &root).await? {
            Ok(client) => Ok(Some(client)),
            Err(zk::Error::SessionExpired) => Ok(None),
            Err(e) => Err(self.failure(e).await),
        }
    }

    fn session_error(&self, e: zk::Error) -> Error {
        match e {
            zk::Error::NoHosts => {
                self.connect_error("no server answered (is it running, is the port right?)")
            }
            zk::Error::AuthFailed => match &self.sasl {
                Some(sasl) => self.connect_error(format!(
                    "authentication failed: the servers refused {}",
                    sasl.describe()
                )),
                None => self.connect_error("authentication failed"),
            },
            e => self.connect_error(e.to_string()),
        }
    }

    async fn establish(&self, connector: zk::Connector) -> Result<zk::Client> {
        match self.establish_raw(connector, &self.connect).await? {
            Ok(client) => Ok(client),
            Err(e) => Err(self.failure(e).await),
        }
    }

    /// Why no session could be had; when no server answered, whether the
    /// names resolve at all.
    async fn failure(&self, e: zk::Error) -> Error {
        if matches!(e, zk::Error::NoHosts) {
            if let Some(names) = self.unresolved().await {
                return self.connect_error(names);
            }
        }
        self.session_error(e)
    }

    /// When no server answered: the host names that do not resolve, said
    /// for a person, so a typo is not taken for a server that is down.
    async fn unresolved(&self) -> Option<String> {
        let mut bad = Vec::new();
        for (host, port) in &self.connect.hosts {
            let lookup = tokio::net::lookup_host((host.as_str(), *port));
            let found = match tokio::time::timeout(self.connect_timeout, lookup).await {
                Ok(Ok(addrs)) => addrs.count() > 0,
                Ok(Err(e)) => {
                    bad.push(format!("{host:?} does not resolve ({e})"));
                    continue;
                }
                Err(_) => false,
            };
            if !found {
                bad.push(format!("{host:?} does not resolve"));
            }
        }
        (!bad.is_empty()).then(|| {
            let all = bad.len() == self.connect.hosts.len();
            format!(
                "{}{}",
                bad.join("; "),
                if all {
                    " (a typo in the host name?)"
                } else {
                    ""
                }
            )
        })
    }

    /// A session within the connect timeout, or the server's answer.
    async fn establish_raw(
        &self,
        connector: zk::Connector,
        connect: &ConnectString,
    ) -> Result<std::result::Result<zk::Client, zk::Error>> {
        let cluster = connect.to_string();
        let connecting = match &self.tls {
            Some(tls) => {
                let options = tls
                    .options()
                    .map_err(|e| self.connect_error(format!("TLS set-up: {e}")))?;
                futures::future::Either::Left(connector.with_tls(options).secure_connect(&cluster))
            }
            None => futures::future::Either::Right(connector.connect(&cluster)),
        };
        tokio::time::timeout(self.connect_timeout, connecting)
            .await
            .map_err(|_| {
                self.connect_error(format!(
                    "no session within {:.1}s",
                    self.connect_timeout.as_secs_f64()
                ))
            })
    }

    /// Opens `n` sessions concurrently.
    pub(crate) async fn connect_many(&self, n: usize) -> Result<Vec<zk::Client>> {
        let attempts = (0..n.max(1)).map(|_| self.connect());
        futures::future::try_join_all(attempts).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_without_a_port_gets_2181_as_zkcli_gives_it() {
        let cs = ConnectString::parse("zk1,zk2:2182,[::1]/kafka").unwrap();
        assert_eq!(
            cs.hosts,
            [
                ("zk1".to_string(), 2181),
                ("zk2".to_string(), 2182),
                ("::1".to_string(), 2181)
            ]
        );
    }

    #[test]
    fn urls_and_semicolons_are_refused_naming_the_fix() {
        let e = ConnectString::parse("zk://h:2181/kafka")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a URL") && e.contains("zk://"), "{e}");
        let e = ConnectString::parse("h1:2181;h2:2181")
            .unwrap_err()
            .to_string();
        assert!(e.contains("commas, not semicolons"), "{e}");
    }

    #[test]
    fn parses_hosts_and_chroot() {
        let cs = ConnectString::parse("h1:2181,h2:2182/kafka/a").unwrap();
        assert_eq!(
            cs.hosts,
            vec![("h1".to_string(), 2181), ("h2".to_string(), 2182)]
        );
        assert_eq!(cs.chroot.as_deref(), Some("/kafka/a"));
        assert_eq!(cs.to_string(), "h1:2181,h2:2182/kafka/a");
    }

    #[test]
    fn root_chroot_is_no_chroot() {
        assert_eq!(ConnectString::parse("h:1/").unwrap().chroot, None);
    }

    #[test]
    fn ipv6_hosts_keep_brackets() {
        let cs = ConnectString::parse("[::1]:2181").unwrap();
        assert_eq!(cs.hosts, vec![("::1".to_string(), 2181)]);
        assert_eq!(cs.to_string(), "[::1]:2181");
    }

    #[test]
    fn rejects_malformed_connect_strings_with_reason() {
        for (input, needle) in [
            ("", "empty"),
            ("h:0", "port number"),
            ("h:99999", "port number"),
            ("h:x", "port number"),
            ("h:1,,h:2", "empty host"),
            (":2181", "no host"),
            ("h:1/a/", "end with"),
            ("h:1/a//b", "empty name"),
            ("h :1", "valid host"),
        ] {
            let err = ConnectString::parse(input).unwrap_err().to_string();
            assert!(err.contains(needle), "{input:?}: {err}");
        }
    }

    #[test]
    fn credentials_in_a_connect_string_are_refused_and_never_echoed() {
        for input in [
            "bob:S3cret@h:2181",
            "bob:S3cret@h1:2181,h2:2181/kafka",
            "zk://bob:S3cret@h:2181",
            "bob:p@S3cret@h:2181",
            "S3cret@",
        ] {
            let e = ConnectString::parse(input).unwrap_err().to_string();
            assert!(!e.contains("S3cret") && !e.contains("bob"), "{input}: {e}");
            assert!(e.contains("holds no credentials: '@' found"), "{e}");
            assert!(e.contains("--source-auth-file"), "{e}");
        }
        assert_eq!(
            ConnectString::parse("h:2181/kafka@prod")
                .unwrap()
                .chroot
                .as_deref(),
            Some("/kafka@prod")
        );
        let e = ConnectString::parse("bob:S3/cret@h:2181")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("S3") && e.contains("no credentials"), "{e}");
        let e = ConnectString::parse("bob:S3cret@h1:2181,h2:2181")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"<not shown>@h1:2181,h2:2181\""), "{e}");
    }

    #[test]
    fn credentials_given_for_their_file_name_are_not_echoed() {
        let e = Credentials::from_file(Path::new("bob:S3cret"))
            .unwrap_err()
            .to_string();
        assert!(!e.contains("S3cret"), "{e}");
        assert!(e.contains("looks like user:password"), "{e}");
    }

    #[test]
    fn a_credentials_file_over_a_mebibyte_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth");
        std::fs::write(&path, format!("bob:{}\n", "x".repeat(2 << 20))).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = Credentials::from_file(&path).unwrap_err().to_string();
        assert!(e.contains("1 MiB") && e.contains("credentials file"), "{e}");
        assert!(!e.contains("xxxx"), "{e}");
    }

    #[test]
    fn credentials_debug_never_shows_secret() {
        let c = Credentials::parse("alice:s3cret\n").unwrap();
        assert_eq!(c.user(), "alice");
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(
            c.scrub("auth alice:s3cret failed"),
            "auth alice:<redacted> failed"
        );
    }

    #[test]
    fn credentials_file_readable_by_others_is_refused() {
        let dir = std::env::temp_dir().join(format!("zkparity-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("auth");
        std::fs::write(&path, "alice:pw\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Credentials::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(!err.contains("pw\n"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(Credentials::from_file(&path).unwrap().user(), "alice");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn credentials_without_colon_are_refused() {
        assert!(Credentials::parse("justapassword").is_err());
    }

    #[test]
    fn credentials_on_several_lines_are_refused() {
        assert!(Credentials::parse("bob:pw\nextra\n").is_err());
        assert!(Credentials::parse("bob:pw\r\n").is_ok());
    }
}

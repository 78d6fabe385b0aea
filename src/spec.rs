//! Building an [`EnsembleSpec`] from what an operator gives: a connect
//! string, digest credentials, a SASL login, TLS files and timeouts. The
//! command line and the agent's configuration build theirs here, step by
//! step, so each can name its own flag or key when a step fails, and both
//! get the same defaults.

use std::path::Path;
use std::time::Duration;

use crate::connect::{ConnectString, Credentials, EnsembleSpec, TlsConfig};
use crate::error::Result;
use crate::sasl::SaslConfig;

/// The session timeout, and how long connecting may take, when nothing
/// says otherwise.
pub const DEFAULT_TIMEOUT: Duration = EnsembleSpec::DEFAULT_TIMEOUT;

/// The JAAS section, Kerberos service and Kerberos host a SASL login is
/// read with: one choice for every side of a command or pair.
#[derive(Clone, Copy, Debug, Default)]
pub struct SaslChoice<'a> {
    pub section: Option<&'a str>,
    pub service: Option<&'a str>,
    pub host: Option<&'a str>,
}

/// The TLS files of one side; the certificate and key only with a CA.
#[derive(Clone, Copy, Debug)]
pub struct TlsFiles<'a> {
    pub ca: &'a Path,
    pub cert: Option<&'a Path>,
    pub key: Option<&'a Path>,
}

/// One ensemble's spec in the making: no credentials, no TLS and the
/// default timeouts until a step says otherwise; the connect string last,
/// so a side that turns out to be files has had its credentials checked
/// all the same.
#[derive(Clone, Debug)]
pub struct SpecBuilder {
    side: String,
    credentials: Option<Credentials>,
    sasl: Option<Box<SaslConfig>>,
    tls: Option<TlsConfig>,
    session_timeout: Duration,
    connect_timeout: Duration,
}

impl SpecBuilder {
    /// `side` names the ensemble in every message about it.
    pub fn new(side: &str) -> SpecBuilder {
        SpecBuilder {
            side: side.to_string(),
            credentials: None,
            sasl: None,
            tls: None,
            session_timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same login under another name (the agent reads a pair's
    /// `expect` ensemble with the source's).
    pub fn renamed(mut self, side: &str) -> SpecBuilder {
        self.side = side.to_string();
        self
    }

    /// Digest credentials from a file only its owner may read.
    pub fn credentials_file(mut self, file: &Path) -> Result<SpecBuilder> {
        self.credentials = Some(Credentials::from_file(file)?);
        Ok(self)
    }

    /// Digest credentials from `file`, or else from the side's variable
    /// `ZKPARITY_<SIDE>_AUTH`: the command line's way.
    pub fn credentials_or_env(mut self, file: Option<&Path>) -> Result<SpecBuilder> {
        let var = format!("ZKPARITY_{}_AUTH", self.side.to_uppercase());
        self.credentials = match file {
            Some(file) => Some(Credentials::from_file(file)?),
            None => Credentials::from_env(&var)?,
        };
        Ok(self)
    }

    /// The SASL login a JAAS file describes.
    pub fn sasl(mut self, jaas: &Path, choice: SaslChoice<'_>) -> Result<SpecBuilder> {
        let login = SaslConfig::load(jaas, choice.section, choice.service, choice.host)?;
        self.sasl = Some(Box::new(login));
        Ok(self)
    }

    /// TLS to the servers' secure client port.
    pub fn tls(mut self, files: TlsFiles<'_>) -> Result<SpecBuilder> {
        self.tls = Some(TlsConfig::load(files.ca, files.cert, files.key)?);
        Ok(self)
    }

    /// The timeouts given; the defaults stay for those not.
    pub fn timeouts(mut self, session: Option<Duration>, connect: Option<Duration>) -> SpecBuilder {
        self.session_timeout = session.unwrap_or(self.session_timeout);
        self.connect_timeout = connect.unwrap_or(self.connect_timeout);
        self
    }

    /// The spec of the ensemble `connect` names.
    pub fn build(self, connect: ConnectString) -> EnsembleSpec {
        EnsembleSpec {
            side: self.side,
            connect,
            credentials: self.credentials,
            sasl: self.sasl,
            tls: self.tls,
            session_timeout: self.session_timeout,
            connect_timeout: self.connect_timeout,
        }
    }
}

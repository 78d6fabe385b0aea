//! SASL logins to an ensemble, from the operator's JAAS file (see
//! [`crate::jaas`]): DIGEST-MD5 with its username and password, Kerberos
//! (GSSAPI) with a keytab or a ticket cache.
//!
//! Kerberos credentials belong to the process, not to a session: MIT
//! Kerberos finds them through `KRB5CCNAME` and `KRB5_CLIENT_KTNAME`, which
//! zkparity sets once, before the first session. A keytab login gets its
//! ticket into a credential cache in this process's memory (nothing is
//! written to disk, the operator's own cache is left alone) and renews it
//! from the keytab as it nears expiry. So one process holds one Kerberos
//! login: two sides may share it, not differ.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use zookeeper_client as zk;

use crate::error::{Error, Result};
use crate::jaas::{self, SaslLogin};

/// The JAAS section a client logs in with unless told otherwise, as
/// ZooKeeper's `zookeeper.sasl.clientconfig`.
pub const DEFAULT_SECTION: &str = "Client";
/// The first part of the servers' Kerberos principal, as ZooKeeper's
/// `zookeeper.sasl.client.username`.
pub const DEFAULT_SERVICE: &str = "zookeeper";

/// A SASL login to one ensemble.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaslConfig {
    /// The JAAS file it came from, for messages.
    pub jaas: PathBuf,
    pub section: String,
    pub login: SaslLogin,
    /// Kerberos: the service part of the servers' principal.
    pub service: String,
    /// Kerberos: the host part of the servers' principal, for servers
    /// reached by an address other than their principal's host name; else
    /// each server's host as the connect string gives it.
    pub host: Option<String>,
}

impl SaslConfig {
    /// Reads the login of `section` (default `Client`) from a JAAS file.
    pub fn load(
        jaas: &Path,
        section: Option<&str>,
        service: Option<&str>,
        host: Option<&str>,
    ) -> Result<SaslConfig> {
        let section = section.unwrap_or(DEFAULT_SECTION);
        Ok(SaslConfig {
            jaas: jaas.to_path_buf(),
            section: section.to_string(),
            login: jaas::load(jaas, section)?,
            service: service.unwrap_or(DEFAULT_SERVICE).to_string(),
            host: host.map(str::to_string),
        })
    }

    /// What a message may say about this login.
    pub fn describe(&self) -> String {
        format!(
            "SASL {} as {} (JAAS {}, section {})",
            self.login.mechanism(),
            self.login.identity(),
            self.jaas.display(),
            self.section
        )
    }

    pub(crate) fn secret(&self) -> Option<&str> {
        self.login.secret()
    }

    /// The client's SASL options; for Kerberos, the process's login is
    /// made first (once), so a missing ticket, an unreachable KDC or a
    /// wrong key is reported here, naming the principal, rather than as a
    /// refused session.
    pub(crate) fn options(&self) -> Result<zk::SaslOptions> {
        match &self.login {
            SaslLogin::DigestMd5 { username, password } => {
                Ok(zk::SaslOptions::digest_md5(username.clone(), password.clone()).into())
            }
            SaslLogin::Kerberos { .. } => {
                kerberos_login(&self.login)?;
                let mut options = zk::SaslOptions::gssapi().with_username(self.service.clone());
                if let Some(host) = &self.host {
                    options = options.with_hostname(host.clone());
                }
                Ok(options.into())
            }
        }
    }
}

/// The process's one Kerberos login, once made.
static KERBEROS: Mutex<Option<SaslLogin>> = Mutex::new(None);

fn kerberos_login(login: &SaslLogin) -> Result<()> {
    let SaslLogin::Kerberos {
        principal,
        keytab,
        ticket_cache,
    } = login
    else {
        return Ok(());
    };
    let mut made = KERBEROS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(previous) = made.as_ref() {
        if previous == login {
            return Ok(());
        }
        return Err(Error::Usage(format!(
            "the two sides log in to Kerberos differently ({} and {}): zkparity holds one \
             Kerberos login per process; give both sides the same JAAS login",
            previous.identity(),
            login.identity()
        )));
    }
    // Set before the first GSSAPI call of the process; MIT Kerberos reads
    // them when it looks for credentials.
    if let Some(keytab) = keytab {
        std::env::set_var("KRB5_CLIENT_KTNAME", format!("FILE:{}", keytab.display()));
        std::env::set_var(
            "KRB5CCNAME",
            format!("MEMORY:zkparity-{}", std::process::id()),
        );
    } else if let Some(Some(cache)) = ticket_cache {
        std::env::set_var("KRB5CCNAME", format!("FILE:{}", cache.display()));
    }
    let failed = |reason: String| Error::Kerberos {
        identity: login.identity(),
        reason,
    };
    let name = principal
        .as_deref()
        .map(|p| {
            libgssapi::name::Name::new(p.as_bytes(), Some(&libgssapi::oid::GSS_NT_KRB5_PRINCIPAL))
                .map_err(|e| failed(format!("not a Kerberos principal name: {e}")))
        })
        .transpose()?;
    let mut mechs = libgssapi::oid::OidSet::new().map_err(|e| failed(e.to_string()))?;
    mechs
        .add(&libgssapi::oid::GSS_MECH_KRB5)
        .map_err(|e| failed(e.to_string()))?;
    libgssapi::credential::Cred::acquire(
        name.as_ref(),
        None,
        libgssapi::credential::CredUsage::Initiate,
        Some(&mechs),
    )
    .map_err(|e| failed(explain(&e.to_string(), keytab.as_deref())))?;
    *made = Some(login.clone());
    Ok(())
}

/// MIT's message, with what an operator checks next.
fn explain(gss: &str, keytab: Option<&Path>) -> String {
    let lower = gss.to_ascii_lowercase();
    let hint = if lower.contains("cannot contact any kdc") || lower.contains("cannot find kdc") {
        "the KDC is unreachable: check kdc in krb5.conf (KRB5_CONFIG) and the network"
    } else if lower.contains("preauthentication failed")
        || lower.contains("decrypt integrity check failed")
        || lower.contains("key version")
    {
        "the KDC refused the key: the keytab does not hold this principal's current key"
    } else if lower.contains("not found in kerberos database") {
        "the KDC does not know this principal"
    } else if lower.contains("no credentials cache")
        || lower.contains("no credentials were supplied")
    {
        if keytab.is_some() {
            "the keytab holds no key for this principal"
        } else {
            "no ticket: run kinit, or use a keytab (useKeyTab=true)"
        }
    } else {
        ""
    };
    if hint.is_empty() {
        gss.trim().to_string()
    } else {
        format!("{hint} ({})", gss.trim())
    }
}

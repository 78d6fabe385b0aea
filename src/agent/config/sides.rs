//! A pair's sides: each a live ensemble, built with [`SpecBuilder`] as the
//! command line builds its own, or files. Credentials, SASL logins and TLS
//! files are read (and permission-checked) here, once per side, whatever
//! the side turns out to be.

use std::path::PathBuf;

use toml::Spanned;

use crate::source::SideSpec;
use crate::spec::{SaslChoice, SpecBuilder, TlsFiles};

use super::file::RawPair;
use super::resolve::Cx;
use super::values::SideValue;
use super::ConfigError;

/// The source's keys or the target's.
#[derive(Clone, Copy, Debug)]
pub(super) enum Keys {
    Source,
    Target,
}

impl Keys {
    pub(super) fn prefix(self) -> &'static str {
        match self {
            Keys::Source => "source",
            Keys::Target => "target",
        }
    }
}

/// One side's files, as the pair's keys give them.
struct SideFiles<'a> {
    auth_file: &'a Option<Spanned<PathBuf>>,
    jaas: &'a Option<Spanned<PathBuf>>,
    tls: [&'a Option<Spanned<PathBuf>>; 3],
}

impl RawPair {
    fn files(&self, keys: Keys) -> SideFiles<'_> {
        match keys {
            Keys::Source => SideFiles {
                auth_file: &self.source_auth_file,
                jaas: &self.source_jaas,
                tls: [
                    &self.source_tls_ca,
                    &self.source_tls_cert,
                    &self.source_tls_key,
                ],
            },
            Keys::Target => SideFiles {
                auth_file: &self.target_auth_file,
                jaas: &self.target_jaas,
                tls: [
                    &self.target_tls_ca,
                    &self.target_tls_cert,
                    &self.target_tls_key,
                ],
            },
        }
    }
}

impl Cx<'_> {
    /// How the side of `keys` is reached: its credentials file (the
    /// environment is not consulted: one agent serves several pairs, and a
    /// service's environment is easy to lose track of), SASL login and TLS
    /// files, and the pair's timeouts.
    pub(super) fn access(
        &self,
        i: usize,
        p: &RawPair,
        keys: Keys,
    ) -> Result<SpecBuilder, ConfigError> {
        let side = keys.prefix();
        let files = p.files(keys);
        let fail = |f: &Spanned<PathBuf>, k: &str, reason: String| {
            self.at(f.span().start, format!("pair[{i}].{side}_{k}"), reason)
        };
        let mut spec = SpecBuilder::new(side).timeouts(p.session_timeout, p.connect_timeout);
        if let Some(f) = files.auth_file {
            spec = spec
                .credentials_file(f.get_ref())
                .map_err(|e| fail(f, "auth_file", e.to_string()))?;
        }
        if let Some(f) = files.jaas {
            let choice = SaslChoice {
                section: p.jaas_section.as_deref(),
                service: p.sasl_service.as_deref(),
                host: p.sasl_host.as_deref(),
            };
            spec = spec
                .sasl(f.get_ref(), choice)
                .map_err(|e| fail(f, "jaas", e.to_string()))?;
        }
        match files.tls {
            [None, None, None] => Ok(spec),
            [None, Some(f), _] | [None, None, Some(f)] => Err(fail(
                f,
                if files.tls[1].is_some() {
                    "tls_cert"
                } else {
                    "tls_key"
                },
                format!("needs {side}_tls_ca: a client certificate only goes with TLS"),
            )),
            [Some(ca), cert, key] => {
                let files = TlsFiles {
                    ca: ca.get_ref(),
                    cert: cert.as_ref().map(|c| c.get_ref().as_path()),
                    key: key.as_ref().map(|k| k.get_ref().as_path()),
                };
                spec.tls(files)
                    .map_err(|e| fail(ca, "tls_ca", e.to_string()))
            }
        }
    }
}

/// The side a pair's value names, reached with `access` where it is live.
pub(super) fn side_spec(access: SpecBuilder, side: &str, value: &SideValue) -> SideSpec {
    match value {
        SideValue::Live(c) => SideSpec::Live(access.renamed(side).build(c.clone())),
        SideValue::Files(path) => SideSpec::file(side, &path.to_string_lossy(), None),
    }
}

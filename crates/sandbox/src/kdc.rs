//! A throwaway MIT Kerberos realm on loopback (Debian's `krb5-kdc` and
//! `krb5-admin-server`): its own database, `krb5.conf` and `kdc.conf` in a
//! temporary directory, `krb5kdc` in the foreground on a free port (UDP and
//! TCP), principals and keytabs made with `kadmin.local`. Nothing of the
//! machine's own Kerberos set-up is read or touched.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::SandboxError;
use crate::ports::free_ports;
use crate::process::{guarded_command, Guarded};
use crate::tempdir::make_temp_dir;

/// The realm every sandbox KDC serves.
pub const REALM: &str = "ZKPARITY.TEST";

/// A running KDC. Stopped, and its directory removed, when dropped (or
/// when the owning process exits).
pub struct Kdc {
    dir: PathBuf,
    port: u16,
    process: Guarded,
}

impl Kdc {
    /// Creates the realm's database and starts the KDC.
    pub fn start() -> Result<Kdc, SandboxError> {
        let dir = make_temp_dir("kdc")?;
        let port = free_ports(1)?[0];
        let d = dir.display();
        write(
            &dir.join("krb5.conf"),
            &krb5_conf(&format!("127.0.0.1:{port}")),
        )?;
        write(
            &dir.join("kdc.conf"),
            &format!(
                "[kdcdefaults]\n kdc_ports = {port}\n kdc_tcp_ports = {port}\n\
                 [realms]\n {REALM} = {{\n  database_name = {d}/principal\n  \
                 key_stash_file = {d}/stash\n  acl_file = {d}/kadm5.acl\n  \
                 max_life = 1h\n  max_renewable_life = 1h\n  \
                 supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n }}\n\
                 [logging]\n kdc = FILE:{d}/kdc.log\n"
            ),
        )?;
        write(&dir.join("kadm5.acl"), "")?;
        let kdc = KdcFiles { dir: dir.clone() };
        kdc.run(
            "kdb5_util",
            &["create", "-s", "-r", REALM, "-P", "sandbox-master-key"],
        )?;
        let process = Guarded::spawn(
            guarded_command("krb5kdc", None)
                .args(["-n", "-r", REALM])
                .envs(kdc.env())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null()),
        )
        .map_err(|e| SandboxError::io(Path::new("krb5kdc"), e))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(SandboxError::Io {
                    path: dir.join("kdc.log"),
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("krb5kdc did not listen on port {port} within 20 s"),
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Kdc { dir, port, process })
    }

    /// The realm's `krb5.conf`: point `KRB5_CONFIG` (MIT) or
    /// `-Djava.security.krb5.conf` (Java) at it.
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.join("krb5.conf")
    }

    /// A `krb5.conf` for the same realm whose KDC is `kdc` (host:port),
    /// e.g. a port nothing listens on.
    pub fn krb5_conf_with_kdc(&self, kdc: &str) -> Result<PathBuf, SandboxError> {
        let path = self
            .dir
            .join(format!("krb5-{}.conf", kdc.replace(':', "-")));
        write(&path, &krb5_conf(kdc))?;
        Ok(path)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Adds `principal` (without realm: `zookeeper/localhost`, `zkclient`)
    /// with a random key, and writes that key to `keytab` (mode 600).
    /// Called again for the same principal, it gives it a new key, which
    /// makes keytabs written before stale.
    pub fn principal_with_keytab(
        &self,
        principal: &str,
        keytab: &Path,
    ) -> Result<String, SandboxError> {
        let files = KdcFiles {
            dir: self.dir.clone(),
        };
        let full = format!("{principal}@{REALM}");
        let _ = files.run(
            "kadmin.local",
            &["-r", REALM, "-q", &format!("addprinc -randkey {full}")],
        );
        files.run(
            "kadmin.local",
            &[
                "-r",
                REALM,
                "-q",
                &format!("ktadd -k {} {full}", keytab.display()),
            ],
        )?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(keytab, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| SandboxError::io(keytab, e))?;
        Ok(full)
    }

    /// The directory holding the realm's files, for keytabs of the test's.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        self.process.kill();
        crate::tempdir::remove_temp_dir(&self.dir);
    }
}

fn krb5_conf(kdc: &str) -> String {
    // No DNS at all: the realm and its KDC are what this file says, and
    // "localhost" is nobody else's name for the servers' principal.
    format!(
        "[libdefaults]\n default_realm = {REALM}\n dns_lookup_realm = false\n \
         dns_lookup_kdc = false\n rdns = false\n dns_canonicalize_hostname = false\n \
         udp_preference_limit = 1\n ticket_lifetime = 1h\n forwardable = false\n\
         [realms]\n {REALM} = {{\n  kdc = {kdc}\n }}\n\
         [domain_realm]\n localhost = {REALM}\n .localhost = {REALM}\n"
    )
}

fn write(path: &Path, text: &str) -> Result<(), SandboxError> {
    std::fs::write(path, text).map_err(|e| SandboxError::io(path, e))
}

struct KdcFiles {
    dir: PathBuf,
}

impl KdcFiles {
    fn env(&self) -> [(&'static str, PathBuf); 2] {
        [
            ("KRB5_CONFIG", self.dir.join("krb5.conf")),
            ("KRB5_KDC_PROFILE", self.dir.join("kdc.conf")),
        ]
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), SandboxError> {
        let out = Command::new(program)
            .args(args)
            .envs(self.env())
            .output()
            .map_err(|e| SandboxError::io(Path::new(program), e))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        // kadmin.local reports a failed query on stderr and still exits 0.
        if !out.status.success() || stderr.contains("error") || stderr.contains("Error") {
            return Err(SandboxError::Io {
                path: PathBuf::from(program),
                source: std::io::Error::other(format!(
                    "{program} {}: {}{stderr}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stdout)
                )),
            });
        }
        Ok(())
    }
}

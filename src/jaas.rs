//! JAAS login configuration files, as ZooKeeper's Java clients are given
//! them (`-Djava.security.auth.login.config=...`): the section a client
//! logs in with (`Client` unless named otherwise) and the SASL login it
//! describes, DIGEST-MD5 (`DigestLoginModule`: username, password) or
//! Kerberos (`Krb5LoginModule`: keytab and principal, or a ticket cache).
//!
//! ```text
//! Client {
//!   org.apache.zookeeper.server.auth.DigestLoginModule required
//!   username="bob"
//!   password="secret";
//! };
//! ```
//!
//! The syntax is Java's `ConfigFile`: sections `Name { entries };`, each
//! entry `LoginModuleClass Flag key=value ... ;`, values quoted or bare,
//! `//` and `/* */` comments.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The login module ZooKeeper's own DIGEST-MD5 client uses.
pub const DIGEST_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";
/// The JDK's Kerberos login module.
pub const KRB5_MODULE: &str = "com.sun.security.auth.module.Krb5LoginModule";

/// What a client logs in with. The password is never shown.
#[derive(Clone, PartialEq, Eq)]
pub enum SaslLogin {
    DigestMd5 {
        username: String,
        password: String,
    },
    Kerberos {
        /// `principal=`; with a keytab, the one to log in as (else the
        /// keytab's first).
        principal: Option<String>,
        /// `useKeyTab=true keyTab=...`.
        keytab: Option<PathBuf>,
        /// `useTicketCache=true`, with `ticketCache=...` or the default
        /// cache (`KRB5CCNAME`).
        ticket_cache: Option<Option<PathBuf>>,
    },
}

impl fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaslLogin::DigestMd5 { username, .. } => {
                write!(
                    f,
                    "DigestMd5 {{ username: {username:?}, password: <redacted> }}"
                )
            }
            SaslLogin::Kerberos {
                principal,
                keytab,
                ticket_cache,
            } => f
                .debug_struct("Kerberos")
                .field("principal", principal)
                .field("keytab", keytab)
                .field("ticket_cache", ticket_cache)
                .finish(),
        }
    }
}

impl SaslLogin {
    /// The mechanism's name, as servers and messages call it.
    pub fn mechanism(&self) -> &'static str {
        match self {
            SaslLogin::DigestMd5 { .. } => "DIGEST-MD5",
            SaslLogin::Kerberos { .. } => "GSSAPI (Kerberos)",
        }
    }

    /// The identity, safe to show.
    pub fn identity(&self) -> String {
        match self {
            SaslLogin::DigestMd5 { username, .. } => username.clone(),
            SaslLogin::Kerberos {
                principal: Some(p), ..
            } => p.clone(),
            SaslLogin::Kerberos {
                keytab: Some(k), ..
            } => format!("the first principal of {}", k.display()),
            SaslLogin::Kerberos { .. } => "the ticket cache's principal".into(),
        }
    }

    /// The secret, for scrubbing messages that pass through text from
    /// elsewhere.
    pub(crate) fn secret(&self) -> Option<&str> {
        match self {
            SaslLogin::DigestMd5 { password, .. } if !password.is_empty() => Some(password),
            _ => None,
        }
    }
}

/// One `key=value` of a login module entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    module: String,
    options: Vec<(String, String)>,
    line: usize,
}

impl Entry {
    fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        self.option(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// Reads the login of `section` from the JAAS file at `path`. A file that
/// holds a password, and a keytab, must be readable by their owner alone,
/// as credentials files are.
pub fn load(path: &Path, section: &str) -> Result<SaslLogin> {
    let err = |reason: String| Error::Jaas {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.is_dir() {
        return Err(err(
            "is a directory; give the JAAS configuration file".into()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let login = parse(&text, section).map_err(err)?;
    match &login {
        SaslLogin::DigestMd5 { .. } => {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(err(format!(
                    "it holds a password and its mode {:o} lets other users read it; run chmod 600 on it",
                    mode & 0o777
                )));
            }
        }
        SaslLogin::Kerberos {
            keytab: Some(keytab),
            ..
        } => {
            let kerr = |reason: String| {
                err(format!(
                    "section {section}: keytab {}: {reason}",
                    keytab.display()
                ))
            };
            let meta = std::fs::metadata(keytab).map_err(|e| kerr(e.to_string()))?;
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(kerr(format!(
                    "its mode {:o} lets other users read it; run chmod 600 on it",
                    mode & 0o777
                )));
            }
            std::fs::File::open(keytab).map_err(|e| kerr(e.to_string()))?;
        }
        SaslLogin::Kerberos { .. } => {}
    }
    Ok(login)
}

/// The login `section` of a JAAS configuration describes.
pub fn parse(text: &str, section: &str) -> std::result::Result<SaslLogin, String> {
    let sections = sections(text)?;
    let Some((_, entries)) = sections.iter().find(|(name, _)| name == section) else {
        let names: Vec<&str> = sections.iter().map(|(n, _)| n.as_str()).collect();
        return Err(if names.is_empty() {
            format!("no section {section}: the file has no sections")
        } else {
            format!("no section {section} (the file has {})", names.join(", "))
        });
    };
    let entry = entries
        .iter()
        .find(|e| e.module == DIGEST_MODULE || e.module == KRB5_MODULE)
        .ok_or_else(|| {
            let modules: Vec<&str> = entries.iter().map(|e| e.module.as_str()).collect();
            format!(
                "section {section} has no login module zkparity speaks ({}); \
                 it knows {DIGEST_MODULE} and {KRB5_MODULE}",
                if modules.is_empty() {
                    "it is empty".to_string()
                } else {
                    format!("found {}", modules.join(", "))
                }
            )
        })?;
    let at = |reason: String| format!("section {section}, line {}: {reason}", entry.line);
    if entry.module == DIGEST_MODULE {
        let username = entry
            .option("username")
            .ok_or_else(|| at("DigestLoginModule needs username=\"...\"".into()))?;
        let password = entry
            .option("password")
            .ok_or_else(|| at("DigestLoginModule needs password=\"...\"".into()))?;
        return Ok(SaslLogin::DigestMd5 {
            username: username.to_string(),
            password: password.to_string(),
        });
    }
    let keytab = if entry.flag("useKeyTab") {
        Some(PathBuf::from(entry.option("keyTab").ok_or_else(|| {
            at("useKeyTab=true needs keyTab=\"/path/to/keytab\"".into())
        })?))
    } else {
        None
    };
    let ticket_cache = entry
        .flag("useTicketCache")
        .then(|| entry.option("ticketCache").map(PathBuf::from));
    if keytab.is_none() && ticket_cache.is_none() {
        return Err(at(
            "Krb5LoginModule needs useKeyTab=true (with keyTab and principal) or \
             useTicketCache=true: zkparity never prompts for a password"
                .into(),
        ));
    }
    Ok(SaslLogin::Kerberos {
        principal: entry.option("principal").map(str::to_string),
        keytab,
        ticket_cache,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Punct(char),
}

fn tokens(text: &str) -> std::result::Result<Vec<(Token, usize)>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let start = line;
                let mut prev = ' ';
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                    }
                    if prev == '*' && c == '/' {
                        closed = true;
                        break;
                    }
                    prev = c;
                }
                if !closed {
                    return Err(format!("line {start}: comment never closed"));
                }
            }
            '{' | '}' | ';' | '=' => out.push((Token::Punct(c), line)),
            '"' | '\'' => {
                let start = line;
                let mut value = String::new();
                loop {
                    match chars.next() {
                        None => return Err(format!("line {start}: quoted value never closed")),
                        Some('\\') => match chars.next() {
                            Some('n') => value.push('\n'),
                            Some('t') => value.push('\t'),
                            Some(other) => value.push(other),
                            None => return Err(format!("line {start}: quoted value never closed")),
                        },
                        Some(q) if q == c => break,
                        Some(other) => {
                            if other == '\n' {
                                line += 1;
                            }
                            value.push(other);
                        }
                    }
                }
                out.push((Token::Quoted(value), start));
            }
            c => {
                let mut word = c.to_string();
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, '{' | '}' | ';' | '=' | '"' | '\'') {
                        break;
                    }
                    word.push(n);
                    chars.next();
                }
                out.push((Token::Word(word), line));
            }
        }
    }
    Ok(out)
}

const FLAGS: [&str; 4] = ["required", "requisite", "sufficient", "optional"];

/// Every section and its entries, in file order.
fn sections(text: &str) -> std::result::Result<Vec<(String, Vec<Entry>)>, String> {
    let tokens = tokens(text)?;
    let mut it = tokens.into_iter().peekable();
    let mut sections = Vec::new();
    let last_line = text.lines().count().max(1);
    let unexpected = |t: Option<(Token, usize)>, wanted: &str| match t {
        Some((Token::Word(w) | Token::Quoted(w), line)) => {
            format!("line {line}: expected {wanted}, found \"{w}\"")
        }
        Some((Token::Punct(p), line)) => format!("line {line}: expected {wanted}, found '{p}'"),
        None => format!("line {last_line}: expected {wanted}, found the end of the file"),
    };
    while let Some(t) = it.next() {
        let name = match t {
            (Token::Word(w), _) => w,
            other => return Err(unexpected(Some(other), "a section name")),
        };
        match it.next() {
            Some((Token::Punct('{'), _)) => {}
            other => return Err(unexpected(other, "'{' after the section name")),
        }
        let mut entries = Vec::new();
        loop {
            let (module, line) = match it.next() {
                Some((Token::Punct('}'), _)) => break,
                Some((Token::Word(w), line)) => (w, line),
                other => return Err(unexpected(other, "a login module class or '}'")),
            };
            match it.next() {
                Some((Token::Word(f), _)) if FLAGS.contains(&f.to_ascii_lowercase().as_str()) => {}
                other => {
                    return Err(unexpected(
                        other,
                        "a control flag (required, requisite, sufficient, optional)",
                    ))
                }
            }
            let mut options = Vec::new();
            loop {
                let key = match it.next() {
                    Some((Token::Punct(';'), _)) => break,
                    Some((Token::Word(k), _)) => k,
                    other => return Err(unexpected(other, "an option key=value or ';'")),
                };
                match it.next() {
                    Some((Token::Punct('='), _)) => {}
                    other => return Err(unexpected(other, &format!("'=' after {key}"))),
                }
                let value = match it.next() {
                    Some((Token::Word(v) | Token::Quoted(v), _)) => v,
                    other => return Err(unexpected(other, &format!("a value for {key}"))),
                };
                options.push((key, value));
            }
            entries.push(Entry {
                module,
                options,
                line,
            });
        }
        match it.next() {
            Some((Token::Punct(';'), _)) => {}
            other => return Err(unexpected(other, "';' after the section's '}'")),
        }
        sections.push((name, entries));
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = r#"
        // ZooKeeper's own client section
        Client {
          org.apache.zookeeper.server.auth.DigestLoginModule required
          username="bob"
          password="s3cr\"et";
        };
        /* a server section, ignored */
        Server {
          org.apache.zookeeper.server.auth.DigestLoginModule required
          user_bob="x";
        };
    "#;

    #[test]
    fn a_digest_client_section_gives_its_username_and_password() {
        assert_eq!(
            parse(DIGEST, "Client").unwrap(),
            SaslLogin::DigestMd5 {
                username: "bob".into(),
                password: "s3cr\"et".into()
            }
        );
    }

    #[test]
    fn a_kerberos_section_with_a_keytab_gives_keytab_and_principal() {
        let text = "KafkaClient { com.sun.security.auth.module.Krb5LoginModule required\n\
                    useKeyTab=true storeKey=true keyTab=\"/etc/zk.keytab\"\n\
                    principal=\"zkclient@EXAMPLE.COM\"; };";
        assert_eq!(
            parse(text, "KafkaClient").unwrap(),
            SaslLogin::Kerberos {
                principal: Some("zkclient@EXAMPLE.COM".into()),
                keytab: Some("/etc/zk.keytab".into()),
                ticket_cache: None,
            }
        );
    }

    #[test]
    fn a_kerberos_section_with_a_ticket_cache_needs_no_keytab() {
        let text = "Client { com.sun.security.auth.module.Krb5LoginModule required \
                    useTicketCache=true; };";
        assert_eq!(
            parse(text, "Client").unwrap(),
            SaslLogin::Kerberos {
                principal: None,
                keytab: None,
                ticket_cache: Some(None),
            }
        );
    }

    #[test]
    fn a_missing_section_is_named_with_those_the_file_has() {
        let e = parse(DIGEST, "ZkClient").unwrap_err();
        assert_eq!(e, "no section ZkClient (the file has Client, Server)");
    }

    #[test]
    fn a_kerberos_login_that_would_prompt_is_refused() {
        let text = "Client { com.sun.security.auth.module.Krb5LoginModule required; };";
        let e = parse(text, "Client").unwrap_err();
        assert!(e.contains("never prompts for a password"), "{e}");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = parse("Client {\n org.x.Y required\n a=\"b\"\n", "Client").unwrap_err();
        assert!(e.starts_with("line "), "{e}");
        let e = parse("Client {\n org.x.Y mandatory;\n};", "Client").unwrap_err();
        assert_eq!(
            e,
            "line 2: expected a control flag (required, requisite, sufficient, optional), found \"mandatory\""
        );
    }

    #[test]
    fn an_unknown_module_is_named() {
        let e = parse("Client { com.example.Other required; };", "Client").unwrap_err();
        assert!(e.contains("found com.example.Other"), "{e}");
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let login = parse(DIGEST, "Client").unwrap();
        let shown = format!("{login:?}");
        assert!(!shown.contains("s3cr"), "{shown}");
        assert!(shown.contains("bob"), "{shown}");
    }
}

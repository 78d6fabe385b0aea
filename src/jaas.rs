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
    let text = crate::bounded::read_text(path).map_err(|e| err(e.to_string()))?;
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
            // Lines, not the classes: a stray ';' inside an unquoted
            // password can make its tail look like a module's name.
            let lines: Vec<String> = entries.iter().map(|e| e.line.to_string()).collect();
            format!(
                "section {section} has no login module zkparity speaks ({}); \
                 it knows {DIGEST_MODULE} and {KRB5_MODULE}",
                match lines.len() {
                    0 => "it is empty".to_string(),
                    1 => format!("its entry is at line {}", lines[0]),
                    _ => format!("its entries are at lines {}", lines.join(", ")),
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

/// The options of DigestLoginModule and of the JDK's Krb5LoginModule: the
/// only words a message names as keys. A word where a key should be may be
/// the tail of a value that a space or a stray quote cut in two.
const KNOWN_OPTIONS: [&str; 17] = [
    "username",
    "password",
    "useKeyTab",
    "keyTab",
    "principal",
    "useTicketCache",
    "ticketCache",
    "storeKey",
    "doNotPrompt",
    "refreshKrb5Config",
    "renewTGT",
    "isInitiator",
    "debug",
    "tryFirstPass",
    "useFirstPass",
    "storePass",
    "clearPass",
];

/// A key as a message may name it.
fn shown_key(key: &str) -> String {
    if KNOWN_OPTIONS.contains(&key) {
        key.to_string()
    } else {
        "an option name".to_string()
    }
}

/// What stood where something else was expected, said by its kind alone:
/// any word or quoted string out of place may be (part of) a secret, such
/// as a password whose '=' was left out.
fn found(t: &Option<(Token, usize)>) -> &'static str {
    match t {
        Some((Token::Word(_), _)) => "a word",
        Some((Token::Quoted(_), _)) => "a quoted string",
        Some((Token::Punct('{'), _)) => "'{'",
        Some((Token::Punct('}'), _)) => "'}'",
        Some((Token::Punct(';'), _)) => "';'",
        Some((Token::Punct(_), _)) => "'='",
        None => "the end of the file",
    }
}

/// Every section and its entries, in file order.
fn sections(text: &str) -> std::result::Result<Vec<(String, Vec<Entry>)>, String> {
    let tokens = tokens(text)?;
    let mut it = tokens.into_iter().peekable();
    let mut sections = Vec::new();
    let last_line = text.lines().count().max(1);
    let unexpected = |t: Option<(Token, usize)>, wanted: &str| {
        let line = t.as_ref().map_or(last_line, |(_, line)| *line);
        format!("line {line}: expected {wanted}, found {}", found(&t))
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
                    other => {
                        return Err(unexpected(other, &format!("'=' after {}", shown_key(&key))))
                    }
                }
                let value = match it.next() {
                    Some((Token::Word(v) | Token::Quoted(v), _)) => v,
                    other => {
                        return Err(unexpected(
                            other,
                            &format!("a value for {}", shown_key(&key)),
                        ))
                    }
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
            "line 2: expected a control flag (required, requisite, sufficient, optional), found a word"
        );
    }

    #[test]
    fn an_unknown_module_is_pointed_at_by_its_line() {
        let e = parse("Client {\n com.example.Other required;\n};", "Client").unwrap_err();
        assert!(e.contains("its entry is at line 2"), "{e}");
    }

    const SECRET: &str = "S3cret";

    /// The error `text` gets for section Client: it must not hold the
    /// secret, and must start with the line it names.
    fn refused(text: &str) -> String {
        let e = parse(text, "Client").unwrap_err();
        assert!(!e.contains(SECRET), "the secret shows in: {e}");
        assert!(!e.contains("cret"), "part of the secret shows in: {e}");
        e
    }

    const HEAD: &str = "Client {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  username=\"bob\"\n";

    #[test]
    fn a_password_without_its_equals_sign_is_not_echoed_quoted_or_bare() {
        let e = refused(&format!("{HEAD}  password \"{SECRET}\";\n}};\n"));
        assert_eq!(
            e,
            "line 4: expected '=' after password, found a quoted string"
        );
        let e = refused(&format!("{HEAD}  password {SECRET};\n}};\n"));
        assert_eq!(e, "line 4: expected '=' after password, found a word");
        let e = refused(&format!("{HEAD}  password '{SECRET}'\n"));
        assert_eq!(
            e,
            "line 4: expected '=' after password, found a quoted string"
        );
    }

    #[test]
    fn a_value_cut_in_two_is_not_echoed_as_a_key() {
        // password=S3 cret; leaves "cret" where a key should be.
        let e = refused(&format!("{HEAD}  password=S3 cret;\n}};\n"));
        assert_eq!(e, "line 4: expected '=' after an option name, found ';'");
        let e = refused(&format!("{HEAD}  password=\"x\" \"{SECRET}\";\n}};\n"));
        assert_eq!(
            e,
            "line 4: expected an option key=value or ';', found a quoted string"
        );
    }

    #[test]
    fn a_value_cut_by_a_semicolon_is_not_echoed_as_a_module_or_flag() {
        let e = refused(&format!("{HEAD}  password=S3;cret;\n}};\n"));
        assert_eq!(
            e,
            "line 4: expected a control flag (required, requisite, sufficient, optional), found ';'"
        );
        let e = refused(&format!("{HEAD}  password=S3;\"cret\";\n}};\n"));
        assert_eq!(
            e,
            "line 4: expected a login module class or '}', found a quoted string"
        );
        let e = refused("Client {\n  com.example.Other required\n  password=S3;cret required;\n};");
        assert!(e.contains("its entries are at lines 2, 3"), "{e}");
    }

    #[test]
    fn a_missing_value_names_the_key_and_line() {
        let e = refused(&format!("{HEAD}  password=;\n}};\n"));
        assert_eq!(e, "line 4: expected a value for password, found ';'");
        let e = refused(&format!("{HEAD}  password="));
        assert_eq!(
            e,
            "line 4: expected a value for password, found the end of the file"
        );
    }

    #[test]
    fn unclosed_quotes_and_comments_name_the_line_they_open_on() {
        let e = refused(&format!("{HEAD}  password=\"{SECRET};\n}};\n"));
        assert_eq!(e, "line 4: quoted value never closed");
        let e = refused(&format!("{HEAD}  password=\"{SECRET}\\"));
        assert_eq!(e, "line 4: quoted value never closed");
        let e = refused(&format!("{HEAD}  /* password=\"{SECRET}\";\n}};\n"));
        assert_eq!(e, "line 4: comment never closed");
    }

    #[test]
    fn structure_out_of_place_is_said_by_kind_not_text() {
        let e = refused(&format!("\"{SECRET}\" {{ }};"));
        assert_eq!(e, "line 1: expected a section name, found a quoted string");
        let e = refused(&format!("Client {SECRET} {{ }};"));
        assert_eq!(
            e,
            "line 1: expected '{' after the section name, found a word"
        );
        let e = refused(&format!("{HEAD}  password=\"{SECRET}\";\n}} {SECRET}"));
        assert_eq!(
            e,
            "line 5: expected ';' after the section's '}', found a word"
        );
        let e = refused(&format!("{HEAD}  password=\"{SECRET}\";\n"));
        assert_eq!(
            e,
            "line 4: expected a login module class or '}', found the end of the file"
        );
    }

    #[test]
    fn a_digest_entry_without_username_or_password_names_the_key() {
        let text = "Client {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n password=\"S3cret\";\n};";
        let e = refused(text);
        assert_eq!(
            e,
            "section Client, line 2: DigestLoginModule needs username=\"...\""
        );
        let text = "Client {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n username=\"bob\";\n};";
        let e = refused(text);
        assert_eq!(
            e,
            "section Client, line 2: DigestLoginModule needs password=\"...\""
        );
    }

    #[test]
    fn a_keytab_login_without_its_keytab_is_refused_naming_the_key() {
        let text = "Client {\n com.sun.security.auth.module.Krb5LoginModule required\n useKeyTab=true;\n};";
        let e = refused(text);
        assert!(
            e.starts_with("section Client, line 2: useKeyTab=true needs keyTab"),
            "{e}"
        );
    }

    #[test]
    fn a_file_over_a_mebibyte_is_refused_before_it_is_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.jaas");
        let mut text = format!("{HEAD}  password=\"{SECRET}\";\n}};\n");
        text.push_str(&"// padding\n".repeat(100_000));
        std::fs::write(&path, &text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = load(&path, "Client").unwrap_err().to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains("1 MiB"), "{e}");
    }

    #[test]
    fn deep_braces_are_refused_without_recursing() {
        // The grammar has no nesting: the second '{' is out of place, however
        // many follow.
        let text = format!("Client {}", "{".repeat(200_000));
        let e = refused(&text);
        assert_eq!(e, "line 1: expected a login module class or '}', found '{'");
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let login = parse(DIGEST, "Client").unwrap();
        let shown = format!("{login:?}");
        assert!(!shown.contains("s3cr"), "{shown}");
        assert!(shown.contains("bob"), "{shown}");
    }
}

//! No input makes the parsers of user input panic: connect strings,
//! threshold ranges, exclude globs, durations, credentials, paths. What they
//! accept round-trips or keeps its meaning, and what they refuse is named in
//! the error. Each property runs 4,096 cases of arbitrary and of near-valid
//! input.

use std::time::Duration;

use proptest::prelude::*;

use zkparity::connect::{validate_path, ConnectString};
use zkparity::duration::parse as duration;
use zkparity::exclude::Excludes;
use zkparity::nagios::range::Range;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 4096,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn connect_strings_never_panic(s in any::<String>()) {
        match ConnectString::parse(&s) {
            // What is accepted prints as a connect string that reads back the same.
            Ok(c) => {
                let text = c.to_string();
                let again = ConnectString::parse(&text);
                prop_assert!(again.is_ok(), "{text:?} does not parse again: {again:?}");
                prop_assert_eq!(again.unwrap().to_string(), text);
            }
            // What is refused is named, unless it may hold credentials
            // (`user:pw@host`): then it is shown without them.
            Err(e) => {
                let msg = e.to_string();
                if s.contains('@') {
                    prop_assert!(msg.contains("<not shown>@"), "{msg}");
                } else {
                    prop_assert!(msg.contains(&format!("{s:?}")), "{msg}");
                }
            }
        }
    }

    #[test]
    fn near_valid_connect_strings_round_trip(
        hosts in prop::collection::vec(("[a-z0-9.-]{1,12}", 1u16..), 1..4),
        chroot in prop::option::of("(/[a-z0-9]{1,6}){1,3}"),
    ) {
        let text = hosts
            .iter()
            .map(|(h, p)| format!("{h}:{p}"))
            .collect::<Vec<_>>()
            .join(",")
            + chroot.as_deref().unwrap_or("");
        let parsed = ConnectString::parse(&text).unwrap();
        prop_assert_eq!(parsed.to_string(), text);
    }

    #[test]
    fn ranges_never_panic(s in "[@~:0-9.+-]{0,12}|\\PC{0,12}", v in any::<f64>()) {
        match s.parse::<Range>() {
            Ok(r) => {
                // It prints as given, and `@` turns exactly its alerts around.
                let text = r.to_string();
                let again = text.parse::<Range>();
                prop_assert_eq!(again.as_ref(), Ok(&r));
                let (plain, inverted) = match text.strip_prefix('@') {
                    Some(body) => (body.to_string(), text.clone()),
                    None => (text.clone(), format!("@{text}")),
                };
                let plain: Range = plain.parse().expect("the range without '@' parses");
                let inverted: Range = inverted.parse().expect("the range with '@' parses");
                prop_assert_ne!(plain.alerts(v), inverted.alerts(v), "{} at {}", text, v);
                prop_assert_eq!(r.alerts(v), if text.starts_with('@') { inverted.alerts(v) } else { plain.alerts(v) });
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.contains(&format!("{s:?}")), "{msg}");
            }
        }
    }

    #[test]
    fn plain_ranges_alert_exactly_outside_zero_to_n(n in 0u32..1_000_000, v in -10.0f64..2e6) {
        let r: Range = n.to_string().parse().unwrap();
        prop_assert_eq!(r.alerts(v), v < 0.0 || v > f64::from(n));
    }

    #[test]
    fn excludes_never_panic(p in "/?[a-z*?\\[\\]{},/\\\\!-]{0,16}", path in "(/[a-z*]{0,4}){0,4}") {
        match Excludes::new(&[&p]) {
            Ok(ex) => {
                prop_assert!(p.starts_with('/'), "{p:?} accepted");
                prop_assert_eq!(ex.patterns(), std::slice::from_ref(&p));
                // A pattern without glob syntax excludes exactly its own path.
                if !p.contains(['*', '?', '[', ']', '{', '}', '\\']) {
                    prop_assert_eq!(ex.is_excluded(&path), path == p, "{} vs {}", p, path);
                    prop_assert!(ex.is_excluded(&p));
                }
                // Given twice, it excludes the same paths.
                let twice = Excludes::new(&[&p, &p]).expect("the same pattern twice");
                prop_assert_eq!(twice.is_excluded(&path), ex.is_excluded(&path));
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.contains(&format!("{p:?}")), "{msg}");
            }
        }
    }

    #[test]
    fn durations_never_panic(s in prop_oneof![any::<String>(), "[0-9. +-]{0,6}(ns|us|ms|s|m|h|d|x)?"]) {
        let parsed = duration("--flag", &s);
        if let Err(e) = &parsed {
            let msg = e.to_string();
            prop_assert!(msg.starts_with(&format!("--flag {s:?}: ")), "{msg}");
        }
        // Surrounding blanks change nothing.
        let padded = duration("--flag", &format!(" {s}\t"));
        prop_assert_eq!(padded.ok(), parsed.ok());
    }

    #[test]
    fn numeric_durations_never_panic(x in any::<f64>()) {
        // A plain number is seconds; what is not a duration (negative,
        // infinite, NaN, too large) is refused.
        let text = x.to_string();
        match duration("--flag", &text) {
            Ok(d) => prop_assert_eq!(Some(d), Duration::try_from_secs_f64(x).ok()),
            Err(e) => {
                prop_assert!(Duration::try_from_secs_f64(x).is_err(), "{text} refused: {e}");
                prop_assert!(e.to_string().contains("--flag"), "{e}");
            }
        }
    }

    #[test]
    fn paths_never_panic(s in prop_oneof![any::<String>(), "(/[a-z.\0]{0,3}){0,4}/?"]) {
        // Accepted exactly when it is a path the server would take:
        // absolute, without NUL, every name real.
        let valid = s.starts_with('/')
            && !s.contains('\0')
            && (s == "/" || s[1..].split('/').all(|n| !n.is_empty() && n != "." && n != ".."));
        match validate_path(&s) {
            Ok(()) => prop_assert!(valid, "{s:?} accepted"),
            Err(reason) => {
                prop_assert!(!valid, "{s:?} refused: {reason}");
                prop_assert!(!reason.is_empty(), "{s:?} refused without a reason");
            }
        }
    }
}

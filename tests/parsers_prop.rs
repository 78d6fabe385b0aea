//! No input makes the parsers of user input panic: connect strings,
//! threshold ranges, exclude globs, durations, credentials, paths. Each
//! property runs 4,096 cases of arbitrary and of near-valid input.

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
        let _ = ConnectString::parse(&s).map(|c| c.to_string());
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
        if let Ok(r) = s.parse::<Range>() {
            let _ = r.alerts(v);
        }
    }

    #[test]
    fn plain_ranges_alert_exactly_outside_zero_to_n(n in 0u32..1_000_000, v in -10.0f64..2e6) {
        let r: Range = n.to_string().parse().unwrap();
        prop_assert_eq!(r.alerts(v), v < 0.0 || v > f64::from(n));
    }

    #[test]
    fn excludes_never_panic(p in "/?[a-z*?\\[\\]{},/\\\\!-]{0,16}", path in "(/[a-z*]{0,4}){0,4}") {
        if let Ok(ex) = Excludes::new(&[p]) {
            let _ = ex.is_excluded(&path);
        }
    }

    #[test]
    fn durations_never_panic(s in any::<String>()) {
        let _ = duration("--flag", &s);
    }

    #[test]
    fn numeric_durations_never_panic(x in any::<f64>()) {
        let _ = duration("--flag", &x.to_string());
    }

    #[test]
    fn paths_never_panic(s in any::<String>()) {
        let _ = validate_path(&s);
    }
}

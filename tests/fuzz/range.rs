//! The `Range` header of downloads: any header text against any file length gives a range inside the file,
//! the whole file, or 416, never a panic or an out-of-bounds position.

use camera_service::files::download::{parse_range, Range};
use proptest::prelude::*;

use super::{cases, runner};

fn header() -> impl Strategy<Value = Option<String>> {
    let num = prop_oneof![
        Just(String::new()),
        "[0-9]{1,3}",
        "[0-9]{18,22}",
        Just(u64::MAX.to_string()),
        Just("18446744073709551616".to_string()),
        "-?[0-9 +x]{0,4}",
    ];
    let unit = prop_oneof![Just("bytes"), Just("BYTES"), Just(" bytes "), Just("items"), Just("")];
    let spec =
        (unit, num.clone(), prop_oneof![Just("-"), Just(""), Just("--")], num, prop_oneof![Just(""), Just(",0-1")])
            .prop_map(|(u, a, dash, b, more)| format!("{u}={a}{dash}{b}{more}"));
    prop_oneof![Just(None), spec.prop_map(Some), any::<String>().prop_map(Some)]
}

fn len() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), 1u64..1000, any::<u64>(), Just(u64::MAX)]
}

#[test]
fn ranges_stay_inside_the_file() {
    runner(cases())
        .run(&(header(), len()), |(h, len)| {
            match parse_range(h.as_deref(), len) {
                Range::Full => {}
                Range::Part(start, end) => {
                    prop_assert!(start <= end && end < len, "{h:?} on {len} bytes -> {start}-{end}");
                }
                Range::Unsatisfiable => prop_assert!(h.is_some()),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn well_formed_ranges_are_exact() {
    runner(cases())
        .run(&(0u64..10_000, 0u64..10_000, 1u64..10_000), |(a, b, len)| {
            let want = if a > b {
                Range::Full
            } else if a >= len {
                Range::Unsatisfiable
            } else {
                Range::Part(a, b.min(len - 1))
            };
            prop_assert_eq!(parse_range(Some(&format!("bytes={a}-{b}")), len), want);
            let suffix = if b == 0 { Range::Unsatisfiable } else { Range::Part(len.saturating_sub(b), len - 1) };
            prop_assert_eq!(parse_range(Some(&format!("bytes=-{b}")), len), suffix);
            Ok(())
        })
        .unwrap();
}

//! Also the request bodies of the scaling API, which share [`parse_body`].

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::scale_api::{ClusterScale, TenantScale};

#[test]
fn slots_print_as_ranges() {
    assert_eq!(slot_ranges(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    assert_eq!(slot_ranges(&[3]), "3");
    assert_eq!(slot_ranges(&[]), "");
    assert_eq!(parse_slots(&slot_ranges(&[0, 1, 2, 5, 7, 8])).unwrap(), vec![0, 1, 2, 5, 7, 8]);
}

/// Parse `body` as every request body type: each is a value or a 400
/// that says the body is invalid.
fn parse_all(body: &[u8]) -> Vec<Result<(), String>> {
    fn one<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<(), String> {
        match parse_body::<T>(body) {
            Ok(_) => Ok(()),
            Err(ApiError::BadRequest(e)) if e.starts_with("invalid request body: ") => Err(e),
            Err(e) => panic!("not a bad request: {e:?}"),
        }
    }
    vec![
        one::<MoveKind>(body),
        one::<MoveRequest>(body),
        one::<ReplicaMoveRequest>(body),
        one::<AddPrgsRequest>(body),
        one::<LeaderRequest>(body),
        one::<ClusterScale>(body),
        one::<TenantScale>(body),
    ]
}

/// JSON of the shapes the bodies have, with keys they know and do not
/// know, and values of every type.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::from),
        Just(Value::from("0-63,100")),
        Just(Value::from("default:1")),
        Just(Value::from("replica")),
    ];
    let keys = prop_oneof![
        proptest::sample::select(vec![
            "kind",
            "tenant",
            "slots",
            "from",
            "to",
            "prg",
            "count",
            "members",
            "operation",
            "target_count",
            "prgs",
            "dry_run",
            "cp_version",
            "gate_timeout_ms",
            "max_moves",
        ])
        .prop_map(str::to_string),
        "[a-z_]{1,8}",
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(keys.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_are_a_body_or_a_bad_request(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_all(&bytes);
    }

    #[test]
    fn arbitrary_json_is_a_body_or_a_bad_request(v in json_value()) {
        let _ = parse_all(&serde_json::to_vec(&v).unwrap());
    }

    /// Bodies written by a JSON encoder read back as written.
    #[test]
    fn bodies_round_trip(
        tenant in "[a-z]{1,8}",
        slots in proptest::collection::vec(any::<u32>(), 0..8),
        from in proptest::option::of("[a-z]{1,4}:[0-9]{1,3}"),
        to in "[a-z]{1,4}:[0-9]{1,3}",
        count in any::<u32>(),
        members in proptest::option::of(proptest::collection::vec(any::<u64>(), 0..5)),
        prgs in proptest::collection::btree_map("[a-z]{1,6}", any::<u32>(), 0..3),
        target_count in proptest::option::of(any::<u64>()),
        dry_run in any::<bool>(),
        cp_version in proptest::option::of(any::<u64>()),
    ) {
        let m: MoveRequest = parse_body(&serde_json::to_vec(
            &json!({ "tenant": tenant, "slots": slots, "from": from, "to": to }),
        ).unwrap()).unwrap();
        prop_assert_eq!((&m.kind, &m.tenant, &m.from, &m.to), (&"slots".to_string(), &tenant, &from, &to));
        prop_assert!(matches!(&m.slots, SlotsArg::List(l) if *l == slots));
        let a: AddPrgsRequest =
            parse_body(&serde_json::to_vec(&json!({ "count": count, "members": members })).unwrap()).unwrap();
        prop_assert_eq!((a.count, a.members), (count, members));
        let c: ClusterScale = parse_body(&serde_json::to_vec(&json!({
            "operation": "scale_out", "target_count": target_count, "prgs": prgs,
            "dry_run": dry_run, "cp_version": cp_version,
        })).unwrap()).unwrap();
        prop_assert_eq!((c.target_count, &c.prgs, c.dry_run, c.cp_version), (target_count, &prgs, dry_run, cp_version));
        let k: MoveKind = parse_body(br#"{"kind":"replica","prg":"default:0","from":1,"to":2}"#).unwrap();
        prop_assert_eq!(k.kind.as_deref(), Some("replica"));
    }

    /// A body cut short is a bad request, whatever its type.
    #[test]
    fn truncated_bodies_are_bad_requests(v in json_value(), cut in any::<prop::sample::Index>()) {
        let whole = serde_json::to_vec(&json!({ "tenant": "t", "slots": "0-3", "to": "t:1", "x": v })).unwrap();
        let cut = cut.index(whole.len());
        prop_assert!(parse_all(&whole[..cut]).iter().all(Result::is_err));
    }
}

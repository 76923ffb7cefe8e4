use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// A payload of `body` with a footer of `version` and the right checksum.
fn payload(body: &[u8], version: u16) -> Vec<u8> {
    let mut out = body.to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    let crc = CRC.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

// DUMP payloads from redis-server 7.0.15 (RDB 10).

#[test]
fn a_list_of_listpack_nodes_some_compressed_decodes() {
    // list-max-listpack-size 2, list-compress-depth 1: five nodes, the
    // middle ones LZF-compressed.
    let dumped = hex(
        "1205020d0d0000000200816102816202ff020d0d0000000200816302816402ff020d0d0000000200816502816602ff020f0f00000002\
         00816702f287d61204ff02c313405e0b5e0000000200dffd02e05178e047000153ff0a009b497d732e29a986",
    );
    let mut want: Vec<Vec<u8>> = ["a", "b", "c", "d", "e", "f", "g", "1234567", "-3"].iter().map(|s| b(s)).collect();
    want.push(vec![b'x'; 81]);
    assert_eq!(decode(&dumped), Ok(Value::List(want)));
}

#[test]
fn compressed_and_integer_strings_decode() {
    let lzf = hex("00c30e4051016161e03b00016263a0020162630a002a55111a159ca468");
    let want = [vec![b'a'; 69], b"abcabcabcabc".to_vec()].concat();
    assert_eq!(decode(&lzf), Ok(Value::String(want)));
    assert_eq!(decode(&hex("00c139300a009d94ea2793fc08b9")), Ok(Value::String(b("12345"))));
}

#[test]
fn an_intset_a_listpack_hash_and_a_listpack_zset_decode() {
    let intset = hex(
        "0bc32730040800000005200302d4feff60000001200b4000000240042000017011a01102f2052a200900000a0023817ce9c044439a",
    );
    let members = ["-300", "1", "2", "70000", "5000000000"].iter().map(|s| b(s)).collect();
    assert_eq!(decode(&intset), Ok(Value::Set(members)));
    let hash = hex("101d1d00000006008266310382763103816e026401836e656704f1a8e403ff0a00352a2cf3588ba3ad");
    let pairs = vec![(b("f1"), b("v1")), (b("n"), b("100")), (b("neg"), b("-7000"))];
    assert_eq!(decode(&hash), Ok(Value::Hash(pairs)));
    let zset = hex("111d1d0000000600816302842d696e660581610283312e35048162020201ff0a0017dce91ab8436c89");
    let members = vec![(b("c"), f64::NEG_INFINITY), (b("a"), 1.5), (b("b"), 2.0)];
    assert_eq!(decode(&zset), Ok(Value::ZSet(members)));
}

#[test]
fn ziplists_decode() {
    // Redis's own example: a ziplist of "2" and "5", to which "Hello
    // World" is added; then a 14-bit string, and the integer encodings.
    let mut zl = hex("00f302f6020b48656c6c6f20576f726c64");
    let long = vec![b'y'; 300];
    zl.extend_from_slice(&[0x0d, 0x41, 0x2c]);
    zl.extend_from_slice(&long);
    for entry in [&[0xfeu8, 0x80][..], &[0xc0, 0x00, 0x80], &[0xd0, 0x00, 0x00, 0x00, 0x80], &[0xf0, 0xff, 0xff, 0x7f]]
    {
        zl.push(0x05);
        zl.extend_from_slice(entry);
    }
    zl.extend_from_slice(&[0x05, 0xe0]);
    zl.extend_from_slice(&i64::MIN.to_le_bytes());
    zl.push(0xff);
    let mut blob = ((zl.len() + 10) as u32).to_le_bytes().to_vec();
    blob.extend_from_slice(&[0, 0, 0, 0, 9, 0]);
    blob.extend_from_slice(&zl);
    let mut body = vec![TYPE_LIST_ZIPLIST];
    put_string(&mut body, &blob);
    let want: Vec<Vec<u8>> = vec![
        b("2"),
        b("5"),
        b("Hello World"),
        long,
        b("-128"),
        b("-32768"),
        b("-2147483648"),
        b("8388607"),
        i64::MIN.to_string().into_bytes(),
    ];
    assert_eq!(decode(&payload(&body, 9)), Ok(Value::List(want)));
    // The same ziplist as a hash has an odd count: refused.
    body[0] = TYPE_HASH_ZIPLIST;
    assert_eq!(decode(&payload(&body, 9)), Err(Refusal::Format));
}

#[test]
fn every_value_round_trips() {
    let values = [
        Value::String(b("")),
        Value::String(vec![7; 70_000]),
        Value::List(vec![b("x"), b(""), b("x")]),
        Value::Set((0..100).map(|i| format!("m{i}").into_bytes()).collect()),
        Value::Hash(vec![(b("f"), b("v")), (b(""), vec![0; 20_000])]),
        Value::ZSet(vec![(b("a"), f64::NEG_INFINITY), (b("b"), -0.5), (b("c"), 1e300)]),
    ];
    for v in values {
        let dumped = encode(&v);
        assert_eq!(u16::from_le_bytes([dumped[dumped.len() - 10], dumped[dumped.len() - 9]]), WRITE_VERSION);
        assert_eq!(decode(&dumped), Ok(v));
    }
}

#[test]
fn damaged_payloads_are_refused() {
    let good = encode(&Value::Hash(vec![(b("f"), b("v"))]));
    assert_eq!(decode(&good[..9]), Err(Refusal::Footer), "shorter than a footer");
    let mut flipped = good.clone();
    flipped[3] ^= 1;
    assert_eq!(decode(&flipped), Err(Refusal::Footer), "checksum");
    let body = &good[..good.len() - 10];
    assert_eq!(decode(&payload(body, READ_VERSION + 1)), Err(Refusal::Footer), "a newer RDB version");
    assert_eq!(decode(&payload(&body[..body.len() - 1], 9)), Err(Refusal::Format), "cut short");
    assert_eq!(decode(&payload(&[body, &[0][..]].concat(), 9)), Err(Refusal::Format), "trailing bytes");
    let dup = encode(&Value::Set(vec![b("a"), b("a")]));
    assert_eq!(decode(&dup), Err(Refusal::Format), "a member twice");
    assert_eq!(decode(&encode(&Value::Hash(Vec::new()))), Err(Refusal::Format), "an empty hash");
    let nan = encode(&Value::ZSet(vec![(b("a"), f64::NAN)]));
    assert_eq!(decode(&nan), Err(Refusal::Format), "a NaN score");
    // A count far beyond the bytes present sizes no buffer.
    assert_eq!(decode(&payload(&[TYPE_SET, 0x81, 0, 0, 0, 1, 0, 0, 0, 0], 9)), Err(Refusal::Format));
    assert_eq!(decode(&payload(&[15, 0], 9)), Err(Refusal::Format), "a stream cut short");
}

#[test]
fn a_value_larger_than_one_write_is_refused_while_it_decodes() {
    // An LZF string that says it holds 100 MiB: refused before anything
    // is decompressed.
    let mut body = vec![TYPE_STRING, 0xc3];
    put_len(&mut body, 2);
    put_len(&mut body, 100 << 20);
    body.extend_from_slice(&[0x00, b'a']);
    assert_eq!(decode(&payload(&body, 9)), Err(Refusal::TooLarge));
    // Elements count against the limit as they come, listpack ones too.
    let hash = hex("101d1d00000006008266310382763103816e026401836e656704f1a8e403ff0a00352a2cf3588ba3ad");
    let size = decode(&hash).unwrap().size();
    assert_eq!(size, 2 + 2 + 1 + 3 + 3 + 5 + 6 * ELEMENT_COST);
    assert!(decode_within(&hash, size + 1).is_ok());
    assert_eq!(decode_within(&hash, size), Err(Refusal::TooLarge));
    let list = encode(&Value::List(vec![vec![b'x'; 1000]; 10]));
    assert_eq!(decode_within(&list, 5000), Err(Refusal::TooLarge));
}

#[test]
fn lzf_refuses_references_before_the_start_and_wrong_lengths() {
    assert_eq!(lzf_decompress(&[0x02, b'a', b'b', b'c'], 3), Some(b("abc")));
    // "ab", then a 3-byte copy from 2 back: "ab" + "aba".
    assert_eq!(lzf_decompress(&[0x01, b'a', b'b', 0x20, 0x01], 5), Some(b("ababa")));
    assert_eq!(lzf_decompress(&[0x20, 0x00], 2), None, "nothing to copy from");
    assert_eq!(lzf_decompress(&[0x02, b'a', b'b', b'c'], 4), None, "shorter than said");
    assert_eq!(lzf_decompress(&[0x02, b'a', b'b'], 3), None, "literal run cut short");
}

mod commands {
    use super::super::super::test_db::{bulk, err, int, Db};
    use super::*;

    fn dump(db: &mut Db, key: &str) -> Vec<u8> {
        match db.run(&["DUMP", key]) {
            Reply::Bulk(p) => p,
            other => panic!("DUMP {key}: {other:?}"),
        }
    }

    fn restore(db: &mut Db, key: &str, ttl: &str, payload: &[u8], opts: &[&str]) -> Reply {
        let mut args = vec![b("RESTORE"), b(key), b(ttl), payload.to_vec()];
        args.extend(opts.iter().map(|o| b(o)));
        db.run_bytes(args)
    }

    #[test]
    fn every_type_dumps_and_restores_under_another_key() {
        let mut db = Db::new();
        db.run(&["HSET", "h", "f", "1", "g", "two"]);
        db.run(&["SADD", "s", "x", "y", "3"]);
        db.run(&["RPUSH", "l", "a", "b", "a"]);
        db.run(&["ZADD", "z", "2", "b", "-1.5", "a"]);
        db.ok(&["SET", "str", "hello"]);
        for (key, read) in [("h", "HGETALL"), ("s", "SMEMBERS"), ("l", "LRANGE"), ("z", "ZRANGE"), ("str", "GET")] {
            let payload = dump(&mut db, key);
            let copy = format!("{key}2");
            assert_eq!(restore(&mut db, &copy, "0", &payload, &[]), Reply::Ok, "{key}");
            let args = |k: &str| match read {
                "LRANGE" => vec![read.to_string(), k.to_string(), "0".into(), "-1".into()],
                "ZRANGE" => vec![read.to_string(), k.into(), "0".into(), "-1".into(), "WITHSCORES".into()],
                _ => vec![read.to_string(), k.to_string()],
            };
            let (a, b) = (args(key), args(&copy));
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            let b: Vec<&str> = b.iter().map(String::as_str).collect();
            assert_eq!(db.run(&a), db.run(&b), "{key}");
            assert_eq!(db.run(&["TTL", &copy]), int(-1));
        }
        assert_eq!(db.run(&["DUMP", "missing"]), Reply::Nil);
    }

    #[test]
    fn restore_checks_the_key_before_the_payload_as_redis_does() {
        let mut db = Db::new();
        db.ok(&["SET", "k", "v"]);
        let payload = dump(&mut db, "k");
        let busy = Reply::Error("BUSYKEY Target key name already exists.".into());
        assert_eq!(restore(&mut db, "k", "0", &payload, &[]), busy);
        assert_eq!(restore(&mut db, "k", "0", b"...", &[]), busy, "the key first");
        assert_eq!(restore(&mut db, "k", "-1", &payload, &["REPLACE"]), err("ERR Invalid TTL value, must be >= 0"));
        assert_eq!(
            restore(&mut db, "k", "x", &payload, &["REPLACE"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            restore(&mut db, "k", "0", b"...", &["REPLACE"]),
            err("ERR DUMP payload version or checksum are wrong")
        );
        assert_eq!(restore(&mut db, "k", "0", &payload, &["REPLACE", "BOGUS"]), err("ERR syntax error"));
        assert_eq!(
            restore(&mut db, "k", "0", &payload, &["IDLETIME", "1", "FREQ", "2"]),
            err("ERR syntax error"),
            "IDLETIME and FREQ exclude each other"
        );
        assert_eq!(
            restore(&mut db, "k", "0", &payload, &["FREQ", "256"]),
            err("ERR Invalid FREQ value, must be >= 0 and <= 255")
        );
        assert_eq!(db.run(&["GET", "k"]), bulk("v"), "refusals change nothing");
        db.ok(&["SET", "k", "new"]);
        assert_eq!(restore(&mut db, "k", "0", &payload, &["REPLACE", "IDLETIME", "5"]), Reply::Ok);
        assert_eq!(db.run(&["GET", "k"]), bulk("v"));
    }

    #[test]
    fn restore_sets_relative_and_absolute_ttls_and_skips_a_past_one() {
        let mut db = Db::new();
        db.run(&["RPUSH", "l", "a"]);
        let payload = dump(&mut db, "l");
        assert_eq!(restore(&mut db, "r", "5000", &payload, &[]), Reply::Ok);
        assert_eq!(db.run(&["PTTL", "r"]), int(5000));
        let at = (db.now + 9000).to_string();
        assert_eq!(restore(&mut db, "a", &at, &payload, &["ABSTTL"]), Reply::Ok);
        assert_eq!(db.run(&["PTTL", "a"]), int(9000));
        let past = (db.now - 1).to_string();
        assert_eq!(restore(&mut db, "l", &past, &payload, &["ABSTTL", "REPLACE"]), Reply::Ok);
        assert_eq!(db.run(&["EXISTS", "l"]), int(0), "the old key went, and nothing came");
    }
}

mod damaged {
    use proptest::prelude::*;

    use super::*;

    /// Payloads Redis writes, in every form the decoder reads.
    fn seeds() -> Vec<Vec<u8>> {
        vec![
            hex("1205020d0d0000000200816102816202ff020d0d0000000200816302816402ff020d0d0000000200816502816602ff020f0f00000002\
                 00816702f287d61204ff02c313405e0b5e0000000200dffd02e05178e047000153ff0a009b497d732e29a986"),
            hex("00c30e4051016161e03b00016263a0020162630a002a55111a159ca468"),
            hex("0bc32730040800000005200302d4feff60000001200b4000000240042000017011a01102f2052a200900000a0023817ce9c044439a"),
            hex("101d1d00000006008266310382763103816e026401836e656704f1a8e403ff0a00352a2cf3588ba3ad"),
            hex("111d1d0000000600816302842d696e660581610283312e35048162020201ff0a0017dce91ab8436c89"),
            encode(&Value::ZSet(vec![(b("a"), 1.0), (b("b"), 2.0)])),
        ]
    }

    proptest! {
        /// Any change to a payload's body, with its checksum made right
        /// again, decodes or is refused: never a panic, never a huge
        /// allocation from a length it claims.
        #[test]
        fn a_damaged_body_is_refused_or_decoded(
            seed in 0usize..6,
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let good = &seeds()[seed];
            let mut body = good[..good.len() - 10].to_vec();
            for (at, byte) in edits {
                let i = at.index(body.len());
                body[i] = byte;
            }
            if truncate {
                body.truncate(cut.index(body.len()));
            }
            let _ = decode(&payload(&body, 10));
        }

        #[test]
        fn arbitrary_bytes_are_refused_or_decoded(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&payload(&body, 10));
        }
    }
}

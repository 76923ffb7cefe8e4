use super::*;
use proptest::prelude::*;
use redis_protocol::resp2::types::OwnedFrame as F2;
use redis_protocol::resp3::types::OwnedFrame as F3;

fn wire(reply: &Reply, proto: Proto) -> String {
    let mut out = BytesMut::new();
    encode(reply, proto, &mut out);
    String::from_utf8(out.to_vec()).unwrap()
}

fn both(reply: &Reply) -> (String, String) {
    (wire(reply, Proto::Resp2), wire(reply, Proto::Resp3))
}

#[test]
fn scalars() {
    assert_eq!(both(&Reply::Ok), ("+OK\r\n".into(), "+OK\r\n".into()));
    assert_eq!(wire(&Reply::simple("PONG"), Proto::Resp2), "+PONG\r\n");
    assert_eq!(wire(&Reply::err("syntax error"), Proto::Resp3), "-ERR syntax error\r\n");
    assert_eq!(wire(&Reply::Int(-42), Proto::Resp2), ":-42\r\n");
    assert_eq!(wire(&Reply::bulk("hi"), Proto::Resp2), "$2\r\nhi\r\n");
    assert_eq!(wire(&Reply::bulk(""), Proto::Resp3), "$0\r\n\r\n");
}

#[test]
fn booleans_are_integers_in_resp2() {
    assert_eq!(both(&Reply::Bool(true)), (":1\r\n".into(), "#t\r\n".into()));
    assert_eq!(both(&Reply::Bool(false)), (":0\r\n".into(), "#f\r\n".into()));
}

#[test]
fn nulls_differ_by_protocol() {
    assert_eq!(both(&Reply::Nil), ("$-1\r\n".into(), "_\r\n".into()));
    assert_eq!(both(&Reply::NilArray), ("*-1\r\n".into(), "_\r\n".into()));
}

#[test]
fn aggregates_differ_by_protocol() {
    let map = Reply::Map(vec![(Reply::bulk("a"), Reply::Int(1)), (Reply::bulk("b"), Reply::Nil)]);
    assert_eq!(
        both(&map),
        ("*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n$-1\r\n".into(), "%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n_\r\n".into())
    );
    let set = Reply::Set(vec![Reply::simple("x")]);
    assert_eq!(both(&set), ("*1\r\n+x\r\n".into(), "~1\r\n+x\r\n".into()));
    let arr = Reply::Array(vec![Reply::Array(vec![]), Reply::Int(0)]);
    assert_eq!(wire(&arr, Proto::Resp3), "*2\r\n*0\r\n:0\r\n");
}

/// Byte for byte what redis-server 7.0.15 sends for ZSCORE and ZRANGE
/// ... WITHSCORES in each protocol.
#[test]
fn scores_and_pairs() {
    assert_eq!(both(&Reply::Score(1.1)), ("$18\r\n1.1000000000000001\r\n".into(), ",1.1000000000000001\r\n".into()));
    assert_eq!(wire(&Reply::Score(f64::NEG_INFINITY), Proto::Resp3), ",-inf\r\n");
    let pairs = Reply::Pairs(vec![(Reply::bulk("m"), Reply::Score(1.5)), (Reply::bulk("n"), Reply::Score(2.0))]);
    assert_eq!(
        both(&pairs),
        (
            "*4\r\n$1\r\nm\r\n$3\r\n1.5\r\n$1\r\nn\r\n$1\r\n2\r\n".into(),
            "*2\r\n*2\r\n$1\r\nm\r\n,1.5\r\n*2\r\n$1\r\nn\r\n,2\r\n".into()
        )
    );
}

#[test]
fn doubles_and_verbatim() {
    assert_eq!(both(&Reply::Double(1.5)), ("$3\r\n1.5\r\n".into(), ",1.5\r\n".into()));
    assert_eq!(wire(&Reply::Double(f64::INFINITY), Proto::Resp3), ",inf\r\n");
    assert_eq!(wire(&Reply::Double(f64::NEG_INFINITY), Proto::Resp2), "$4\r\n-inf\r\n");
    assert_eq!(wire(&Reply::Double(f64::NAN), Proto::Resp3), ",nan\r\n");
    assert_eq!(both(&Reply::Verbatim("a:1\r\n".into())), ("$5\r\na:1\r\n\r\n".into(), "=9\r\ntxt:a:1\r\n\r\n".into()));
}

#[test]
fn line_replies_never_carry_crlf() {
    assert_eq!(wire(&Reply::err("bad\r\nthing"), Proto::Resp2), "-ERR bad  thing\r\n");
    assert_eq!(wire(&Reply::simple("a\nb"), Proto::Resp2), "+a b\r\n");
}

#[test]
fn double_layout() {
    for (d, want) in [
        (0.0, "0"),
        (-0.0, "-0"),
        (1.0, "1"),
        (-2.5, "-2.5"),
        (0.1, "0.1"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (123456789.0, "123456789"),
        (1e16, "10000000000000000"),
        (1e17, "1e+17"),
        (1.5e300, "1.5e+300"),
        (-3.25e-10, "-3.25e-10"),
    ] {
        assert_eq!(format_double(d), want, "{d:e}");
    }
}

fn to_reply2(f: F2) -> Reply {
    match f {
        F2::SimpleString(s) => Reply::Simple(String::from_utf8(s).unwrap()),
        F2::Error(e) => Reply::Error(e),
        F2::Integer(n) => Reply::Int(n),
        F2::BulkString(b) => Reply::Bulk(b),
        F2::Array(items) => Reply::Array(items.into_iter().map(to_reply2).collect()),
        F2::Null => Reply::Nil,
    }
}

fn to_reply3(f: F3) -> Reply {
    match f {
        F3::SimpleString { data, .. } => Reply::Simple(String::from_utf8(data).unwrap()),
        F3::SimpleError { data, .. } => Reply::Error(data),
        F3::Number { data, .. } => Reply::Int(data),
        F3::BlobString { data, .. } => Reply::Bulk(data),
        F3::Double { data, .. } => Reply::Double(data),
        F3::Array { data, .. } => Reply::Array(data.into_iter().map(to_reply3).collect()),
        F3::Null => Reply::Nil,
        other => panic!("unexpected frame {other:?}"),
    }
}

/// The reply as a RESP2 reader sees it.
fn as_resp2(r: &Reply) -> Reply {
    match r {
        Reply::Ok => Reply::simple("OK"),
        Reply::NilArray => Reply::Nil,
        Reply::Double(d) => Reply::bulk(format_double(*d)),
        Reply::Array(items) => Reply::Array(items.iter().map(as_resp2).collect()),
        other => other.clone(),
    }
}

/// The reply as a RESP3 reader sees it.
fn as_resp3(r: &Reply) -> Reply {
    match r {
        Reply::Ok => Reply::simple("OK"),
        Reply::NilArray => Reply::Nil,
        Reply::Array(items) => Reply::Array(items.iter().map(as_resp3).collect()),
        other => other.clone(),
    }
}

fn reply_strategy() -> impl Strategy<Value = Reply> {
    let leaf = prop_oneof![
        Just(Reply::Ok),
        Just(Reply::Nil),
        Just(Reply::NilArray),
        "[a-zA-Z0-9 ]{0,12}".prop_map(Reply::Simple),
        "[A-Z]{1,8} [a-z ]{0,12}".prop_map(Reply::Error),
        any::<i64>().prop_map(Reply::Int),
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(Reply::Bulk),
        any::<f64>().prop_filter("finite", |d| d.is_finite()).prop_map(Reply::Double),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| proptest::collection::vec(inner, 0..4).prop_map(Reply::Array))
}

proptest! {
    /// An independent RESP reader (the redis-protocol crate) reads back
    /// what tidal writes, in both protocols, consuming exactly one frame.
    #[test]
    fn independent_decoder_reads_our_frames(reply in reply_strategy()) {
        let mut out = BytesMut::new();
        encode(&reply, Proto::Resp2, &mut out);
        let (frame, used) = redis_protocol::resp2::decode::decode(&out).unwrap().unwrap();
        prop_assert_eq!(used, out.len());
        prop_assert_eq!(to_reply2(frame), as_resp2(&reply));

        let mut out = BytesMut::new();
        encode(&reply, Proto::Resp3, &mut out);
        let (frame, used) = redis_protocol::resp3::decode::complete::decode(&out).unwrap().unwrap();
        prop_assert_eq!(used, out.len());
        prop_assert_eq!(to_reply3(frame), as_resp3(&reply));
    }

    #[test]
    fn doubles_read_back_exactly(d in any::<f64>().prop_filter("finite", |d| d.is_finite())) {
        prop_assert_eq!(format_double(d).parse::<f64>().unwrap(), d);
    }
}

#[test]
fn pushes_are_arrays_in_resp2_and_pushes_in_resp3() {
    let items = [Reply::bulk("message"), Reply::bulk("ch"), Reply::bulk("hi")];
    let push = |proto| {
        let mut out = BytesMut::new();
        encode_push(&items, proto, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    };
    assert_eq!(push(Proto::Resp2), "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
    assert_eq!(push(Proto::Resp3), ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
}

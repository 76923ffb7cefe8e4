use super::*;
use proptest::prelude::*;

const MAX: usize = 512 * 1024 * 1024;

fn argv(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|a| a.as_bytes().to_vec()).collect()
}

/// What a client library sends: an array of bulk strings.
fn frame(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn decode_all(bytes: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
    let mut buf = BytesMut::from(bytes);
    let mut dec = RequestDecoder::new(MAX);
    let mut out = Vec::new();
    while let Some(args) = dec.decode(&mut buf)? {
        out.push(args);
    }
    assert!(buf.is_empty(), "left over: {:?}", String::from_utf8_lossy(&buf));
    Ok(out)
}

fn error_of(bytes: &[u8]) -> String {
    let mut buf = BytesMut::from(bytes);
    decode_request(&mut buf, MAX).unwrap_err().0
}

#[test]
fn one_array_request() {
    let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"[..]);
    assert_eq!(decode_request(&mut buf, MAX).unwrap(), Some(argv(&["GET", "k"])));
    assert!(buf.is_empty());
    assert_eq!(decode_request(&mut buf, MAX).unwrap(), None);
}

#[test]
fn binary_and_empty_arguments() {
    let args = vec![b"SET".to_vec(), Vec::new(), b"a\r\nb\0c".to_vec()];
    assert_eq!(decode_all(&frame(&args)).unwrap(), vec![args]);
}

#[test]
fn pipelined_requests_in_one_buffer() {
    let mut bytes = frame(&argv(&["SET", "k", "v"]));
    bytes.extend(b"PING\r\n");
    bytes.extend(frame(&argv(&["GET", "k"])));
    bytes.extend(b"*0\r\n*-1\r\n\r\n  \r\n");
    bytes.extend(b"ECHO hi\n");
    assert_eq!(
        decode_all(&bytes).unwrap(),
        vec![argv(&["SET", "k", "v"]), argv(&["PING"]), argv(&["GET", "k"]), argv(&["ECHO", "hi"])]
    );
}

#[test]
fn partial_input_is_not_consumed() {
    let bytes = frame(&argv(&["SET", "key", "value"]));
    for cut in 0..bytes.len() {
        let mut buf = BytesMut::from(&bytes[..cut]);
        assert_eq!(decode_request(&mut buf, MAX).unwrap(), None, "cut at {cut}");
        assert_eq!(&buf[..], &bytes[..cut], "cut at {cut} consumed bytes");
    }
}

#[test]
fn incremental_feeding_byte_by_byte() {
    let mut bytes = frame(&argv(&["MSET", "a", "1", "b", "2"]));
    bytes.extend(b"PING\r\n");
    let mut dec = RequestDecoder::new(MAX);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in bytes {
        buf.extend_from_slice(&[b]);
        while let Some(args) = dec.decode(&mut buf).unwrap() {
            got.push(args);
        }
    }
    assert_eq!(got, vec![argv(&["MSET", "a", "1", "b", "2"]), argv(&["PING"])]);
    assert!(buf.is_empty());
}

#[test]
fn malformed_frames_use_redis_texts() {
    assert_eq!(error_of(b"*abc\r\n"), "Protocol error: invalid multibulk length");
    assert_eq!(error_of(b"*1048577\r\n"), "Protocol error: invalid multibulk length");
    assert_eq!(error_of(b"*1\r\nx\r\n"), "Protocol error: expected '$', got 'x'");
    assert_eq!(error_of(b"*2\r\n$-1\r\n"), "Protocol error: invalid bulk length");
    assert_eq!(error_of(b"*1\r\n$x\r\n"), "Protocol error: invalid bulk length");
    assert_eq!(error_of(b"SET \"a\"b c\r\n"), "Protocol error: unbalanced quotes in request");
    assert_eq!(error_of(b"SET \"k\r\n"), "Protocol error: unbalanced quotes in request");
    let long_inline = vec![b'a'; MAX_INLINE_LEN + 1];
    assert_eq!(error_of(&long_inline), "Protocol error: too big inline request");
    let mut long_count = b"*".to_vec();
    long_count.extend(vec![b'1'; MAX_INLINE_LEN + 1]);
    assert_eq!(error_of(&long_count), "Protocol error: too big mbulk count string");
    let e = ProtocolError("Protocol error: invalid bulk length".into()).to_reply();
    assert_eq!(e, crate::kv::Reply::err("Protocol error: invalid bulk length"));
}

#[test]
fn declared_lengths_are_checked_before_buffering() {
    let mut buf = BytesMut::from(&b"*1\r\n$11\r\n"[..]);
    let e = decode_request(&mut buf, 10).unwrap_err();
    assert_eq!(e.0, "Protocol error: invalid bulk length");
    let mut buf = BytesMut::from(&b"*1\r\n$10\r\n0123456789\r\n"[..]);
    assert_eq!(decode_request(&mut buf, 10).unwrap(), Some(vec![b"0123456789".to_vec()]));
    let mut buf = BytesMut::from(&b"*1048576\r\n"[..]);
    assert_eq!(decode_request(&mut buf, MAX).unwrap(), None, "the largest count is accepted");
}

#[test]
fn crlf_after_data_is_skipped_unchecked_like_redis() {
    assert_eq!(decode_all(b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n").unwrap(), vec![argv(&["PING"]), argv(&["PING"])]);
}

#[test]
fn inline_forms() {
    assert_eq!(decode_all(b"PING\n").unwrap(), vec![argv(&["PING"])]);
    assert_eq!(decode_all(b"SET 'a b' \"c\\x41\"\r\n").unwrap(), vec![argv(&["SET", "a b", "cA"])]);
    let mut buf = BytesMut::from(&b"PING"[..]);
    assert_eq!(decode_request(&mut buf, MAX).unwrap(), None);
    assert_eq!(&buf[..], b"PING");
}

fn arg_strategy() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..20)
}

proptest! {
    /// Every limit holds at its exact value: a request within the bulk,
    /// argument, total and inline limits decodes; one byte or argument past
    /// any of them is a protocol error, never a request.
    #[test]
    fn limits_hold_at_their_exact_values(
        args in proptest::collection::vec(proptest::collection::vec(b'a'..=b'z', 1..40), 1..8),
        extra in 0usize..3,
    ) {
        let bytes = frame(&args);
        let longest = args.iter().map(Vec::len).max().unwrap();
        let exact = || RequestDecoder::new(longest).max_args(args.len() as i64).max_request(bytes.len());
        prop_assert_eq!(exact().decode(&mut BytesMut::from(&bytes[..])).unwrap(), Some(args.clone()));
        let mut loose = RequestDecoder::new(longest + extra).max_args((args.len() + extra) as i64);
        prop_assert!(loose.decode(&mut BytesMut::from(&bytes[..])).unwrap().is_some());
        let mut too_few_args = exact().max_args(args.len() as i64 - 1);
        prop_assert!(too_few_args.decode(&mut BytesMut::from(&bytes[..])).is_err());
        prop_assert!(RequestDecoder::new(longest - 1).decode(&mut BytesMut::from(&bytes[..])).is_err());
        prop_assert!(exact().max_request(bytes.len() - 1).decode(&mut BytesMut::from(&bytes[..])).is_err());
        // The same words inline: within the line limit, or refused.
        let line = args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>().join(" ");
        let inline = format!("{line}\r\n");
        let mut fits = RequestDecoder::new(longest).max_inline(inline.len());
        prop_assert_eq!(fits.decode(&mut BytesMut::from(inline.as_bytes())).unwrap(), Some(args.clone()));
        let mut short = RequestDecoder::new(longest).max_inline(line.len() - 1);
        prop_assert!(short.decode(&mut BytesMut::from(inline.as_bytes())).is_err());
    }

    /// Any pipeline of requests, delivered in chunks split at random points,
    /// decodes to exactly the requests sent.
    #[test]
    fn random_splits_round_trip(
        requests in proptest::collection::vec(proptest::collection::vec(arg_strategy(), 1..5), 1..5),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let bytes: Vec<u8> = requests.iter().flat_map(|r| frame(r)).collect();
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        points.push(0);
        points.push(bytes.len());
        points.sort_unstable();
        let mut dec = RequestDecoder::new(MAX);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for w in points.windows(2) {
            buf.extend_from_slice(&bytes[w[0]..w[1]]);
            while let Some(args) = dec.decode(&mut buf).unwrap() {
                got.push(args);
            }
        }
        prop_assert_eq!(got, requests);
        prop_assert!(buf.is_empty());
    }

    /// Frames built by the redis-protocol crate decode to the same arguments.
    #[test]
    fn agrees_with_redis_protocol_encoding(args in proptest::collection::vec(arg_strategy(), 1..6)) {
        use redis_protocol::resp2::{encode::encode, types::OwnedFrame};
        let frame_value = OwnedFrame::Array(args.iter().cloned().map(OwnedFrame::BulkString).collect());
        let mut bytes = vec![0u8; 1024];
        let n = encode(&mut bytes, &frame_value, false).unwrap();
        let mut buf = BytesMut::from(&bytes[..n]);
        prop_assert_eq!(decode_request(&mut buf, MAX).unwrap(), Some(args));
    }
}

#[test]
fn requests_are_limited_in_total_not_only_per_argument() {
    let args = argv(&["SET", "k", "0123456789"]);
    let bytes = frame(&args);
    // The limit counts every byte of the request, headers included.
    let mut exact = RequestDecoder::new(MAX).max_request(bytes.len());
    assert_eq!(exact.decode(&mut BytesMut::from(&bytes[..])).unwrap(), Some(args));
    let mut short = RequestDecoder::new(MAX).max_request(bytes.len() - 1);
    let e = short.decode(&mut BytesMut::from(&bytes[..])).unwrap_err();
    assert_eq!(e.0, format!("Protocol error: request of more than {} bytes", bytes.len() - 1));
    // Refused on the declared length, before the argument's bytes arrive.
    let mut dec = RequestDecoder::new(MAX).max_request(1000);
    let e = dec.decode(&mut BytesMut::from(&b"*2\r\n$3\r\nSET\r\n$2000\r\n"[..])).unwrap_err();
    assert!(e.0.contains("request of more than 1000 bytes"), "{e}");
    // Many small arguments add up.
    let many = frame(&vec![b"x".repeat(100); 20]);
    assert!(RequestDecoder::new(MAX).max_request(1000).decode(&mut BytesMut::from(&many[..])).is_err());
}

/// An argument written the way `redis-cli` quotes it: every byte as `\xHH`.
fn quoted(arg: &[u8]) -> String {
    let mut s = String::from("\"");
    for b in arg {
        s.push_str(&format!("\\x{b:02x}"));
    }
    s.push('"');
    s
}

/// Pieces of plausible requests, so random streams get past the first
/// byte: array and bulk headers (some with absurd lengths), CRLFs, words.
fn piece_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (-2i64..5).prop_map(|n| format!("*{n}\r\n").into_bytes()),
        (-2i64..12).prop_map(|n| format!("${n}\r\n").into_bytes()),
        any::<i64>().prop_map(|n| format!("${n}\r\n").into_bytes()),
        any::<i64>().prop_map(|n| format!("*{n}\r\n").into_bytes()),
        Just(b"\r\n".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"'".to_vec()),
        Just(b"\\x4".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..12),
        "[A-Z]{1,6} ".prop_map(String::into_bytes),
    ]
}

/// Feed `bytes` in chunks of `chunk` bytes, decoding after each as a
/// connection does, until the stream ends or a protocol error. Checks
/// that waiting for more never holds more than the limits allow.
fn feed(bytes: &[u8], chunk: usize, max_bulk: usize, max_request: usize) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
    let mut dec = RequestDecoder::new(max_bulk).max_request(max_request);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for part in bytes.chunks(chunk.max(1)) {
        buf.extend_from_slice(part);
        while let Some(args) = dec.decode(&mut buf)? {
            assert!(!args.is_empty(), "an empty request is skipped, never returned");
            out.push(args);
        }
        assert!(
            buf.len() <= max_request.max(MAX_INLINE_LEN) + MAX_INLINE_LEN + chunk,
            "waiting with {} bytes buffered",
            buf.len()
        );
    }
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Any bytes, in any chunks: requests or a protocol error, never a
    /// panic, and never a buffer beyond the limits while waiting.
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        chunk in 1usize..64,
    ) {
        let _ = feed(&bytes, chunk, 64, 256);
    }

    #[test]
    fn arbitrary_request_like_streams_never_panic(
        pieces in proptest::collection::vec(piece_strategy(), 0..24),
        chunk in 1usize..64,
        max_bulk in 0usize..16,
        max_request in 0usize..128,
    ) {
        let bytes: Vec<u8> = pieces.concat();
        let _ = feed(&bytes, chunk, max_bulk, max_request);
    }

    /// Any request cut short is waited on: nothing is consumed and no
    /// request comes out.
    #[test]
    fn truncated_requests_wait_for_the_rest(
        args in proptest::collection::vec(arg_strategy(), 1..5),
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = frame(&args);
        let cut = cut.index(bytes.len());
        let mut buf = BytesMut::from(&bytes[..cut]);
        prop_assert_eq!(decode_request(&mut buf, MAX), Ok(None));
        prop_assert_eq!(&buf[..], &bytes[..cut]);
    }

    /// Inline commands with every byte quoted read back as the bytes.
    #[test]
    fn quoted_inline_commands_round_trip(args in proptest::collection::vec(arg_strategy(), 1..5)) {
        let line = args.iter().map(|a| quoted(a)).collect::<Vec<_>>().join(" ") + "\r\n";
        prop_assert_eq!(decode_all(line.as_bytes()).unwrap(), vec![args]);
    }
}

#[test]
fn argument_and_inline_limits_are_the_decoders_own() {
    let mut d = RequestDecoder::new(1024).max_args(3).max_inline(16);
    let mut ok = BytesMut::from(&frame(&argv(&["SET", "k", "v"]))[..]);
    assert_eq!(d.decode(&mut ok).unwrap(), Some(argv(&["SET", "k", "v"])));
    let mut four = BytesMut::from(&frame(&argv(&["MSET", "a", "1", "b"]))[..]);
    assert_eq!(d.decode(&mut four).unwrap_err().0, "Protocol error: invalid multibulk length");
    let mut d = RequestDecoder::new(1024).max_inline(16);
    let mut short = BytesMut::from(&b"PING\r\n"[..]);
    assert_eq!(d.decode(&mut short).unwrap(), Some(argv(&["PING"])));
    // Past the limit, with or without its newline yet.
    let mut long = BytesMut::from(&b"SET key-that-is-long value\r\n"[..]);
    assert_eq!(d.decode(&mut long).unwrap_err().0, "Protocol error: too big inline request");
    let mut partial = BytesMut::from(&b"SET key-that-is-long"[..]);
    assert_eq!(d.decode(&mut partial).unwrap_err().0, "Protocol error: too big inline request");
}

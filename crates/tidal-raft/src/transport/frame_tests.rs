use openraft::EntryPayload;
use proptest::prelude::*;

use super::*;
use crate::types::{CommittedLeaderId, Entry, LogId, Proposal};

fn app(id: u64, body: Vec<u8>) -> Frame {
    Frame::Request { id, group: "default:0".into(), epoch: 7, body: Request::App(body) }
}

fn encoded(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(frame, &mut out, MAX_FRAME).unwrap();
    out
}

/// Read every frame of `bytes`, as a connection would, until the stream
/// ends or a frame is refused.
fn read_all(bytes: &[u8]) -> (Vec<Frame>, std::io::Result<()>) {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let mut r = bytes;
        let mut scratch = Vec::new();
        let mut frames = Vec::new();
        loop {
            match read_frame(&mut r, &mut scratch, MAX_FRAME).await {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => return (frames, Ok(())),
                Err(e) => return (frames, Err(e)),
            }
        }
    })
}

#[tokio::test]
async fn frames_round_trip_back_to_back() {
    let mut buf = Vec::new();
    encode_frame(&app(1, vec![1, 2]), &mut buf, MAX_FRAME).unwrap();
    encode_frame(&Frame::Response { id: 1, body: Err(WireError::NoHandler) }, &mut buf, MAX_FRAME).unwrap();
    let mut r = &buf[..];
    let mut scratch = Vec::new();
    match read_frame(&mut r, &mut scratch, MAX_FRAME).await.unwrap().unwrap() {
        Frame::Request { id, group, epoch, body: Request::App(b) } => {
            assert_eq!((id, group.as_str(), epoch, b), (1, "default:0", 7, vec![1, 2]));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        read_frame(&mut r, &mut scratch, MAX_FRAME).await.unwrap(),
        Some(Frame::Response { id: 1, body: Err(WireError::NoHandler) })
    ));
    assert!(read_frame(&mut r, &mut scratch, MAX_FRAME).await.unwrap().is_none());
}

#[tokio::test]
async fn oversized_and_garbage_frames_are_errors() {
    let mut r = &(u32::MAX.to_be_bytes())[..];
    let e = read_frame(&mut r, &mut Vec::new(), MAX_FRAME).await.unwrap_err();
    assert!(e.to_string().contains("exceeds this node's 67108864-byte limit"), "{e}");
    // A node set to take less refuses a frame past its own limit.
    let mut bytes = ((2u32 << 20) + 1).to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0u8; 16]);
    let e = read_frame(&mut &bytes[..], &mut Vec::new(), 2 << 20).await.unwrap_err();
    assert!(e.to_string().contains("exceeds this node's 2097152-byte limit"), "{e}");
    let garbage = [0, 0, 0, 3, 0xff, 0xff, 0xff];
    let mut r = &garbage[..];
    assert!(read_frame(&mut r, &mut Vec::new(), MAX_FRAME).await.is_err());
}

/// A header claiming the largest frame, from a peer that then sends a
/// few bytes and stops, costs the reader what arrived, not the 64 MiB
/// the header announced.
#[tokio::test]
async fn a_header_alone_does_not_reserve_the_length_it_declares() {
    let mut bytes = (MAX_FRAME as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0u8; 100]);
    let mut r = &bytes[..];
    let mut scratch = Vec::new();
    let e = read_frame(&mut r, &mut scratch, MAX_FRAME).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
    assert!(e.to_string().contains("100 bytes into a frame of 67108864"), "{e}");
    assert!(scratch.capacity() <= 2 * READ_CHUNK, "reserved {} bytes", scratch.capacity());
}

#[tokio::test]
async fn a_large_frame_is_read_whole_and_its_buffer_given_back() {
    let body = vec![9u8; 5 * READ_CHUNK + 17];
    let bytes = encoded(&app(3, body.clone()));
    let mut r = &bytes[..];
    let mut scratch = Vec::new();
    match read_frame(&mut r, &mut scratch, MAX_FRAME).await.unwrap() {
        Some(Frame::Request { body: Request::App(b), .. }) => assert_eq!(b, body),
        other => panic!("unexpected {other:?}"),
    }
    assert!(scratch.capacity() <= KEEP_CAPACITY);
}

#[tokio::test]
async fn a_stream_cut_inside_a_header_is_an_error_not_an_end() {
    let mut r = &[0u8, 0][..];
    let e = read_frame(&mut r, &mut Vec::new(), MAX_FRAME).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
}

#[test]
fn a_frame_over_the_limit_is_not_sent() {
    let mut out = vec![1, 2, 3];
    let e = encode_frame(&app(1, vec![0; MAX_FRAME]), &mut out, MAX_FRAME).unwrap_err();
    assert!(e.bytes > MAX_FRAME);
    assert_eq!(out, vec![1, 2, 3], "nothing appended");
    // The largest App body that still fits is sent.
    let overhead = encoded(&app(1, Vec::new())).len() - 4 + 3;
    assert!(encode_frame(&app(1, vec![0; MAX_FRAME - overhead]), &mut out, MAX_FRAME).is_ok());
}

/// Length prefixes inside a frame are checked against what the frame
/// holds: a byte string, or a sequence of entries, claiming far more than
/// is there fails at once. (Were its claimed length reserved up front,
/// these would abort the process: 2^60 entries do not fit in memory.)
#[test]
fn lengths_inside_a_frame_claiming_more_than_it_holds_fail() {
    // App(bytes) whose length claims 2^32 - 1 bytes.
    let mut body = encoded(&app(1, Vec::new()))[4..].to_vec();
    body.pop();
    body.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 1, 2, 3]);
    assert!(matches!(decode_frame(&body), Err(FrameError::Postcard(postcard::Error::DeserializeUnexpectedEnd))));
    // A sequence (the entries of an append) claiming 2^60 elements.
    let huge = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10];
    let mut seq = huge.to_vec();
    seq.extend_from_slice(&[1, 2, 3]);
    assert!(crate::types::decode::<Vec<Entry>>(&seq).is_err());
    assert!(crate::types::decode::<Vec<u64>>(&seq).is_err());
    assert!(crate::types::decode::<String>(&seq).is_err());
}

#[test]
fn bytes_after_a_frame_are_refused() {
    let mut body = encoded(&app(1, vec![5]))[4..].to_vec();
    body.push(0);
    assert_eq!(decode_frame(&body).unwrap_err(), FrameError::Trailing(1));
}

fn log_id(term: u64, node_id: u64, index: u64) -> LogId {
    LogId { leader_id: CommittedLeaderId { term, node_id }, index }
}

fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..64)
}

fn arb_entry() -> impl Strategy<Value = Entry> {
    (any::<u64>(), any::<u64>(), any::<u64>(), proptest::option::of((any::<u64>(), arb_bytes()))).prop_map(
        |(term, node, index, normal)| Entry {
            log_id: log_id(term, node, index),
            payload: match normal {
                Some((now_ms, body)) => EntryPayload::Normal(Proposal { now_ms, body }),
                None => EntryPayload::Blank,
            },
        },
    )
}

fn arb_request() -> impl Strategy<Value = Request> {
    let vote = (any::<u64>(), any::<u64>()).prop_map(|(t, n)| openraft::Vote::new(t, n));
    prop_oneof![
        arb_bytes().prop_map(Request::App),
        (vote.clone(), proptest::option::of((0..9u64, 0..9u64, any::<u64>()))).prop_map(|(v, last)| {
            Request::Vote(openraft::raft::VoteRequest::new(v, last.map(|(t, n, i)| log_id(t, n, i))))
        }),
        (vote.clone(), proptest::collection::vec(arb_entry(), 0..4), any::<u64>()).prop_map(|(v, entries, i)| {
            Request::Append(openraft::raft::AppendEntriesRequest {
                vote: v,
                prev_log_id: Some(log_id(1, 1, i)),
                entries,
                leader_commit: None,
            })
        }),
        (vote, any::<u64>(), arb_bytes(), any::<bool>()).prop_map(|(vote, offset, data, done)| Request::Snapshot {
            vote,
            meta: Default::default(),
            offset,
            data,
            done
        }),
    ]
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    let wire_error = prop_oneof![
        Just(WireError::NoHandler),
        ".{0,12}".prop_map(WireError::Raft),
        (any::<u64>(), ".{0,12}").prop_map(|(node, group)| WireError::UnknownGroup { node, group }),
    ];
    prop_oneof![
        (any::<u64>(), ".{0,16}", any::<u64>(), arb_request()).prop_map(|(id, group, epoch, body)| Frame::Request {
            id,
            group,
            epoch,
            body
        }),
        (any::<u64>(), prop_oneof![arb_bytes().prop_map(|b| Ok(Response::App(b))), wire_error.prop_map(Err)])
            .prop_map(|(id, body)| Frame::Response { id, body }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any bytes at all: frames, an end, or an error; never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_all(&bytes);
        let _ = decode_frame(&bytes);
    }

    /// A well-formed header in front of arbitrary bytes reaches the decoder.
    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&body);
        let (frames, end) = read_all(&bytes);
        prop_assert!(frames.len() + usize::from(end.is_err()) == 1);
    }

    /// Frames read back as they were written, one after another.
    #[test]
    fn frames_round_trip(frames in proptest::collection::vec(arb_frame(), 1..4)) {
        let mut bytes = Vec::new();
        for f in &frames {
            encode_frame(f, &mut bytes, MAX_FRAME).unwrap();
        }
        let (back, end) = read_all(&bytes);
        prop_assert!(end.is_ok());
        prop_assert_eq!(back.len(), frames.len());
        for (a, b) in frames.iter().zip(&back) {
            prop_assert_eq!(encoded(a), encoded(b));
        }
    }

    /// Whatever limit a node is set to: a frame within it reads back, one
    /// past it is refused before its body is read, whatever follows.
    #[test]
    fn the_frame_limit_holds_for_any_limit(frame in arb_frame(), slack in 0usize..64, junk in arb_bytes()) {
        let mut bytes = encoded(&frame);
        let len = bytes.len() - 4;
        bytes.extend_from_slice(&junk);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let read = |limit: usize| rt.block_on(read_frame(&mut &bytes[..], &mut Vec::new(), limit));
        let within = read(len + slack);
        prop_assert!(matches!(within, Ok(Some(_))));
        if len > slack {
            let refused = read(len - 1 - slack).unwrap_err();
            prop_assert!(refused.to_string().contains("exceeds this node's"), "{}", refused);
        }
    }

    /// A stream cut anywhere inside a frame is an error, never a frame and
    /// never a clean end.
    #[test]
    fn truncated_frames_are_errors(frame in arb_frame(), cut in any::<prop::sample::Index>()) {
        let bytes = encoded(&frame);
        let cut = 1 + cut.index(bytes.len() - 1);
        let (frames, end) = read_all(&bytes[..cut]);
        prop_assert!(frames.is_empty());
        prop_assert!(end.is_err());
        prop_assert!(decode_frame(&bytes[4..cut.max(4)]).is_err());
    }
}

#[test]
fn an_answer_longer_than_a_frame_is_sent_in_pieces() {
    let limit = 1 << 16;
    let answer: Vec<u8> = (0..(5 * limit + 17)).map(|i| (i % 253) as u8).collect();
    let out = encode_response(9, Ok(Response::App(answer.clone())), limit).concat();
    let mut rest = &out[..];
    let mut joined = Vec::new();
    let mut frames = 0;
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        assert!(len <= limit, "a frame of {len} bytes");
        let frame = decode_frame(&rest[4..4 + len]).unwrap();
        rest = &rest[4 + len..];
        frames += 1;
        match frame {
            Frame::Response { id: 9, body: Ok(Response::AppPart(b)) } if !rest.is_empty() => joined.extend(b),
            Frame::Response { id: 9, body: Ok(Response::App(b)) } if rest.is_empty() => joined.extend(b),
            other => panic!("frame {frames}: {other:?}"),
        }
    }
    assert_eq!(frames, 6);
    assert!(joined == answer);

    // One that fits is one frame, as before.
    let out = encode_response(3, Ok(Response::App(vec![1, 2, 3])), limit).concat();
    let frame = decode_frame(&out[4..]).unwrap();
    assert!(matches!(frame, Frame::Response { id: 3, body: Ok(Response::App(b)) } if b == [1, 2, 3]));

    // One past the longest answer is refused, saying so.
    let out = encode_response_within(5, Ok(Response::App(answer.clone())), limit, 4 * limit).concat();
    match decode_frame(&out[4..]).unwrap() {
        Frame::Response { id: 5, body: Err(WireError::AnswerTooLarge { bytes, limit: most }) } => {
            assert_eq!((bytes, most), (answer.len(), 4 * limit));
        }
        other => panic!("{other:?}"),
    }

    // Anything else too long is answered with why it was not sent.
    let out = encode_response(4, Err(WireError::Raft("x".repeat(2 * limit))), limit).concat();
    match decode_frame(&out[4..]).unwrap() {
        Frame::Response { id: 4, body: Err(WireError::Malformed(m)) } => {
            assert!(m.contains("response not sent"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

//! Bytes from a peer connection as the transport reads them: frames off
//! the stream with `read_frame`, and the app requests they carry decoded
//! as a PRG's and the control plane's handlers decode them. Frames, an end
//! or an error; a frame read back encodes and reads again the same.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tidal_raft::transport::{decode_frame, encode_frame, read_frame, Frame, Request};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().expect("runtime"))
}

fn check(frame: &Frame) {
    let mut bytes = Vec::new();
    if encode_frame(frame, &mut bytes).is_ok() {
        let again = decode_frame(&bytes[4..]).expect("a frame this node wrote reads back");
        let mut twice = Vec::new();
        encode_frame(&again, &mut twice).expect("it fitted once");
        assert_eq!(bytes, twice);
    }
    if let Frame::Request { body: Request::App(app), .. } = frame {
        let _ = tidal_node::forward::decode_request(app);
        let _ = tidal_control::api::decode_request(app);
    }
}

fuzz_target!(|data: &[u8]| {
    // The bytes as a whole frame body, and as a stream of frames.
    if let Ok(frame) = decode_frame(data) {
        check(&frame);
    }
    let frames = runtime().block_on(async {
        let mut r = data;
        let mut scratch = Vec::new();
        let mut frames = Vec::new();
        while let Ok(Some(f)) = read_frame(&mut r, &mut scratch).await {
            frames.push(f);
        }
        frames
    });
    for f in &frames {
        check(f);
    }
    let _ = tidal_node::forward::decode_request(data);
});

//! A node's TOML config file as `tidal node --config` reads it, then
//! layered over flags and validated. A config or errors, each naming the
//! key it is about (or the file, for text that is not TOML).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidal_node::RawConfig;

fn flags() -> RawConfig {
    RawConfig {
        node_id: Some(1),
        listen: Some("127.0.0.1:7001".into()),
        client_addr: Some("127.0.0.1:6380".into()),
        http_addr: Some("127.0.0.1:8001".into()),
        data_dir: Some("/tmp/tidal-fuzz".into()),
        peers: Some("1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003".into()),
        ..Default::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match RawConfig::from_toml(text) {
        Ok(file) => {
            // The file under the flags, and over them.
            for raw in [flags().or(file.clone()), file.or(flags())] {
                if let Err(errs) = raw.resolve() {
                    for e in &errs.0 {
                        let key = e.split(':').next().unwrap_or_default();
                        assert!(!key.is_empty() && !key.contains(' '), "no key named: {e}");
                    }
                }
            }
        }
        Err(errs) => {
            assert!(!errs.0.is_empty());
            for e in &errs.0 {
                // `config file: ...` for text that is not TOML, else `<key>: ...`.
                assert!(e.contains(": "), "an error names what it is about: {e}");
            }
        }
    }
});

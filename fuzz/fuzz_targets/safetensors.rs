//! Saved models (safetensors: header, config, weights, optimizer state) on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let path = std::env::temp_dir().join(format!("strata-fuzz-{}.safetensors", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let _ = strata::load_model(&path);
});

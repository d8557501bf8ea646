//! MNIST's IDX `.gz` reader on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let path = std::env::temp_dir().join(format!("strata-fuzz-idx-{}.gz", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let _ = strata::data::mnist::read_idx(&path, 0x0803);
    let _ = strata::data::mnist::read_idx(&path, 0x0801);
});

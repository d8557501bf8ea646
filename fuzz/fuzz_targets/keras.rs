//! The Keras `.keras` importer (zip, JSON config, HDF5 weights) on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = strata::io::import_keras_from(std::io::Cursor::new(bytes), "fuzz.keras");
});

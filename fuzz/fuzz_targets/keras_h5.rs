//! The legacy Keras `.h5` importer (HDF5 attributes, JSON config, weights) on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = strata::io::import_keras_h5_bytes(bytes, "fuzz.h5");
});

//! The ONNX importer (protocol buffer, tensors, graph order, operator mapping) on arbitrary
//! bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = strata::io::load_onnx_bytes(bytes, "fuzz.onnx");
});

//! Texts (read, tokenized by character) and tokenizer JSON on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata::data::text::{Tokenizer, load_text};

fuzz_target!(|bytes: &[u8]| {
    let path = std::env::temp_dir().join(format!("strata-fuzz-{}.txt", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    if let Ok(text) = load_text(&path) {
        let mut tokenizer = Tokenizer::new().char_level(true);
        if tokenizer.fit_on_texts(&[&text]).is_ok() {
            let _ = tokenizer.encode(&text);
        }
    }
    if let Ok(tokenizer) = Tokenizer::from_json(&String::from_utf8_lossy(bytes)) {
        let _ = tokenizer.encode("To be, or not to be");
    }
});

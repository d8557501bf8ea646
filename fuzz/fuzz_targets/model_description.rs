//! Model descriptions: the first byte picks TOML or JSON, the rest is the text. A description
//! that reads must also build or fail cleanly.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata::io::config::{Format, parse};

fuzz_target!(|bytes: &[u8]| {
    let Some((&first, rest)) = bytes.split_first() else {
        return;
    };
    let format = if first % 2 == 0 { Format::Toml } else { Format::Json };
    if let Ok(mut spec) = parse(&String::from_utf8_lossy(rest), format, "fuzz") {
        let _ = spec.model.summary();
    }
});

//! The CSV table reader on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata::data::csv::{LabelColumn, NonFinite, load_csv, load_csv_with};

fuzz_target!(|bytes: &[u8]| {
    let path = std::env::temp_dir().join(format!("strata-fuzz-{}.csv", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let _ = load_csv(&path, LabelColumn::Last);
    let _ = load_csv_with(&path, LabelColumn::Name("label".into()), NonFinite::Allow);
});

//! Text models and texts with more characters than the model was sized for (#24 item 4).

mod common;
use common::strata;

/// A text of exactly 100 distinct characters (the 95 printable ASCII ones and five accented
/// letters), long enough for many 40-character windows.
fn hundred_character_text() -> String {
    let alphabet: String = (' '..='~').chain("éüßñø".chars()).collect();
    assert_eq!(alphabet.chars().count(), 100);
    alphabet.repeat(30)
}

#[test]
fn char_rnn_on_a_larger_alphabet_names_both_sizes_without_rust_debug_values() {
    let dir = std::env::temp_dir().join(format!("strata-text-vocabulary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hundred.txt");
    std::fs::write(&path, hundred_character_text()).unwrap();
    let (code, _, stderr) = strata(&[
        "train",
        "--model",
        "char_rnn",
        "--data",
        path.to_str().unwrap(),
        "--epochs",
        "1",
        "--verbose",
        "0",
    ]);
    assert_eq!(code, 1, "{stderr}");
    // 100 characters and the padding id 0; char_rnn's Dense has 66 units.
    assert!(
        stderr.contains("101 tokens") && stderr.contains("(None, 66)") && stderr.contains("at least 101 units"),
        "{stderr}"
    );
    assert!(!stderr.contains("Some("), "a Rust debug value: {stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

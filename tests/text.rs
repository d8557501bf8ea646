//! Text for sequence models: the tokenizer's numbering and conversions as Keras's `Tokenizer`
//! does them, its JSON in Keras's shape, `pad_sequences` on Keras's documented examples, sliding
//! windows, and the bundled corpus. Expected values are worked out by hand in the comments.
mod common;

use strata::Error;
use strata::data::text::{
    PadOptions, Side, Tokenizer, load_shakespeare, load_text, pad_sequences, sliding_windows, sliding_windows_shifted,
};

/// Counts b 1, a 2, c 2: a and c tie at 2 and a appeared first, so a = 1, c = 2, b = 3.
fn fitted(tokenizer: Tokenizer) -> Tokenizer {
    let mut tokenizer = tokenizer;
    tokenizer.fit_on_texts(&["b a", "c a c"]).unwrap();
    tokenizer
}

fn rows(tensor: &strata::Tensor) -> Vec<Vec<f32>> {
    tensor
        .data()
        .chunks(tensor.row_len().max(1))
        .map(<[f32]>::to_vec)
        .collect()
}

#[test]
fn word_index_orders_by_count_then_first_appearance() {
    let tokenizer = fitted(Tokenizer::new());
    let index = tokenizer.word_index();
    assert_eq!((index["a"], index["c"], index["b"]), (1, 2, 3));
    assert_eq!(tokenizer.index_word(2), Some("c"));
    assert_eq!(tokenizer.index_word(0), None);
    assert_eq!(
        tokenizer.word_counts().collect::<Vec<_>>(),
        [("b", 1), ("a", 2), ("c", 2)]
    );
    assert_eq!(tokenizer.document_count(), 2);
    assert_eq!(tokenizer.vocabulary_size(), 4);
    // Fitting more adds to the counts: c reaches 3 and moves to the front.
    let mut tokenizer = tokenizer;
    tokenizer.fit_on_texts(&["c"]).unwrap();
    let index = tokenizer.word_index();
    assert_eq!((index["c"], index["a"], index["b"]), (1, 2, 3));
}

#[test]
fn words_are_lowered_filtered_and_split() {
    let mut tokenizer = Tokenizer::new();
    tokenizer
        .fit_on_texts(&["The cat sat on the mat.", "The dog ate my homework!"])
        .unwrap();
    // "the" 3 times; the rest once each, in order of appearance.
    let expected = ["the", "cat", "sat", "on", "mat", "dog", "ate", "my", "homework"];
    for (id, word) in (1..).zip(expected) {
        assert_eq!(tokenizer.word_index()[word], id, "{word}");
    }
    assert_eq!(
        tokenizer.tokenize("Hello,World!\thello-world").unwrap(),
        ["hello", "world", "hello", "world"]
    );
    let keep_case = Tokenizer::new().lower(false).filters("").split(",");
    assert_eq!(keep_case.tokenize("A b,,C!").unwrap(), ["A b", "C!"]);
}

#[test]
fn conversions_drop_or_replace_unknown_words_as_keras_does() {
    let plain = fitted(Tokenizer::new());
    // d is unknown: dropped.
    assert_eq!(plain.texts_to_sequences(&["a b d c"]).unwrap(), [vec![1, 3, 2]]);
    // The OOV token takes id 1: <OOV> 1, a 2, c 3, b 4.
    let oov = fitted(Tokenizer::new().oov_token("<OOV>"));
    assert_eq!(oov.word_index()["<OOV>"], 1);
    assert_eq!(oov.texts_to_sequences(&["a b d c"]).unwrap(), [vec![2, 4, 1, 3]]);
    // num_words = 3 keeps ids 1 and 2 only.
    let top = fitted(Tokenizer::new().num_words(3));
    assert_eq!(top.texts_to_sequences(&["a b d c"]).unwrap(), [vec![1, 2]]);
    assert_eq!(top.vocabulary_size(), 3);
    let top_oov = fitted(Tokenizer::new().num_words(3).oov_token("<OOV>"));
    assert_eq!(top_oov.texts_to_sequences(&["a b d c"]).unwrap(), [vec![2, 1, 1, 1]]);
    // Back to text: 0 and 99 are not ids, dropped without an OOV token.
    assert_eq!(plain.sequences_to_texts(&[vec![1, 3, 2, 0, 99]]), ["a b c"]);
    assert_eq!(oov.sequences_to_texts(&[vec![2, 99]]), ["a <OOV>"]);
    assert_eq!(top_oov.sequences_to_texts(&[vec![2, 3]]), ["a <OOV>"]);
}

#[test]
fn characters_are_tokens_at_char_level() {
    // "Abca, a" lowered: a 3, b 1, c 1, ',' 1, ' ' 1 (filters do not apply to characters).
    let mut tokenizer = Tokenizer::new().char_level(true);
    tokenizer.fit_on_texts(&["Abca, a"]).unwrap();
    let index = tokenizer.word_index();
    assert_eq!(
        (index["a"], index["b"], index["c"], index[","], index[" "]),
        (1, 2, 3, 4, 5)
    );
    assert_eq!(tokenizer.encode("Cab").unwrap(), [3, 1, 2]);
    assert_eq!(tokenizer.decode(&[0, 3, 1, 2]).unwrap(), "cab");
    // Keras joins with spaces at character level too.
    assert_eq!(tokenizer.sequences_to_texts(&[vec![3, 1, 2]]), ["c a b"]);
    let error = tokenizer.encode("abz!z").unwrap_err();
    assert!(
        matches!(&error, Error::Data(m) if m.contains("2 character(s)") && m.contains("\"z\", \"!\"")),
        "{error}"
    );
    match tokenizer.decode(&[1, 42]).unwrap_err() {
        Error::InvalidArgument { name, value, .. } => assert_eq!((name.as_str(), value.as_str()), ("ids", "42")),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    // With an OOV token, unknown characters map to it instead.
    let mut with_oov = Tokenizer::new().char_level(true).oov_token("?");
    with_oov.fit_on_texts(&["aab"]).unwrap();
    assert_eq!(with_oov.encode("abz").unwrap(), [2, 3, 1]);
    assert_eq!(with_oov.decode(&[2, 9]).unwrap(), "a?");
}

#[test]
fn empty_texts_and_bad_settings_are_errors() {
    let mut tokenizer = Tokenizer::new();
    let none: [&str; 0] = [];
    assert!(matches!(tokenizer.fit_on_texts(&none), Err(Error::Data(_))));
    assert!(matches!(tokenizer.fit_on_texts(&["", "!?."]), Err(Error::Data(m)) if m.contains("no tokens")));
    assert_eq!(tokenizer.document_count(), 0, "a failed fit changed the tokenizer");
    assert!(matches!(tokenizer.encode("a"), Err(Error::Usage(m)) if m.contains("fit_on_texts")));
    assert!(matches!(tokenizer.texts_to_sequences(&["a"]), Err(Error::Usage(_))));
    let invalid = |result: strata::Result<()>| match result {
        Err(Error::InvalidArgument { name, .. }) => name,
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    assert_eq!(invalid(Tokenizer::new().split("").fit_on_texts(&["a b"])), "split");
    assert_eq!(
        invalid(Tokenizer::new().num_words(0).fit_on_texts(&["a b"])),
        "num_words"
    );
}

#[test]
fn json_round_trips_in_keras_shape() {
    let tokenizer = fitted(Tokenizer::new().oov_token("<OOV>").num_words(10));
    let json = tokenizer.to_json();
    let restored = Tokenizer::from_json(&json).unwrap();
    assert_eq!(restored, tokenizer);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["class_name"], "Tokenizer");
    let config = &value["config"];
    assert_eq!(
        (config["num_words"].as_u64(), config["oov_token"].as_str()),
        (Some(10), Some("<OOV>"))
    );
    // The tables are JSON strings, as Python's json.dumps writes them, in insertion order.
    assert_eq!(config["word_counts"], r#"{"b": 1, "a": 2, "c": 2}"#);
    assert_eq!(config["word_index"], r#"{"<OOV>": 1, "a": 2, "c": 3, "b": 4}"#);
    assert_eq!(config["index_word"], r#"{"1": "<OOV>", "2": "a", "3": "c", "4": "b"}"#);
    assert_eq!(config["word_docs"], r#"{"b": 1, "a": 2, "c": 1}"#);
    assert_eq!(config["index_docs"], r#"{"4": 1, "2": 2, "3": 1}"#);
}

#[test]
fn keras_written_json_loads_and_refits() {
    // What Keras's Tokenizer().fit_on_texts(["b a", "c a c"]); .to_json() writes.
    let keras = r##"{"class_name": "Tokenizer", "config": {"num_words": null,
        "filters": "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n", "lower": true, "split": " ",
        "char_level": false, "oov_token": null, "document_count": 2,
        "word_counts": "{\"b\": 1, \"a\": 2, \"c\": 2}", "word_docs": "{\"a\": 2, \"b\": 1, \"c\": 1}",
        "index_docs": "{\"1\": 2, \"3\": 1, \"2\": 1}", "index_word": "{\"1\": \"a\", \"2\": \"c\", \"3\": \"b\"}",
        "word_index": "{\"a\": 1, \"c\": 2, \"b\": 3}"}}"##;
    let mut tokenizer = Tokenizer::from_json(keras).unwrap();
    assert_eq!(tokenizer, fitted(Tokenizer::new()));
    assert_eq!(tokenizer.texts_to_sequences(&["c b a"]).unwrap(), [vec![2, 3, 1]]);
    // word_counts' order survives, so a refit breaks the b–a tie (both 3) as Keras would: b first.
    tokenizer.fit_on_texts(&["b b", "a"]).unwrap();
    assert_eq!(
        tokenizer.word_counts().collect::<Vec<_>>(),
        [("b", 3), ("a", 3), ("c", 2)]
    );
    assert_eq!((tokenizer.word_index()["b"], tokenizer.word_index()["a"]), (1, 2));

    for bad in [
        "not json",
        r#"{"class_name": "TextVectorization", "config": {}}"#,
        r#"{"config": {"document_count": 1}}"#,
        r#"{"config": {"word_index": "{\"a\": 1, \"b\": 3}"}}"#,
        r#"{"config": {"word_index": {"a": 1}, "oov_token": "<OOV>"}}"#,
    ] {
        assert!(
            matches!(Tokenizer::from_json(bad), Err(Error::Data(_))),
            "{bad} was accepted"
        );
    }
}

#[test]
fn pad_sequences_matches_keras_examples() {
    let sequences = [vec![1], vec![2, 3], vec![4, 5, 6]];
    let pad = |options: PadOptions| rows(&pad_sequences(&sequences, &options).unwrap());
    assert_eq!(
        pad(PadOptions::default()),
        [[0.0, 0.0, 1.0], [0.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    );
    assert_eq!(
        pad(PadOptions::default().value(-1.0)),
        [[-1.0, -1.0, 1.0], [-1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    );
    assert_eq!(
        pad(PadOptions::default().padding(Side::Post)),
        [[1.0, 0.0, 0.0], [2.0, 3.0, 0.0], [4.0, 5.0, 6.0]]
    );
    // Truncating "pre" keeps the end, "post" the start.
    assert_eq!(
        pad(PadOptions::default().maxlen(2)),
        [[0.0, 1.0], [2.0, 3.0], [5.0, 6.0]]
    );
    assert_eq!(
        pad(PadOptions::default()
            .maxlen(2)
            .truncating(Side::Post)
            .padding(Side::Post)),
        [[1.0, 0.0], [2.0, 3.0], [4.0, 5.0]]
    );
    let padded = pad_sequences(&[vec![1, 2, 3], vec![4, 5]], &PadOptions::default().maxlen(4)).unwrap();
    assert_eq!(padded.shape(), &[2, 4]);
    assert_eq!(rows(&padded), [[0.0, 1.0, 2.0, 3.0], [0.0, 0.0, 4.0, 5.0]]);
    let with_empty: [Vec<usize>; 2] = [vec![], vec![7]];
    assert_eq!(
        rows(&pad_sequences(&with_empty, &PadOptions::default()).unwrap()),
        [[0.0], [7.0]]
    );
    let none: [Vec<usize>; 0] = [];
    assert_eq!(
        pad_sequences(&none, &PadOptions::default().maxlen(3)).unwrap().shape(),
        &[0, 3]
    );
}

#[test]
fn pad_sequences_rejects_bad_arguments() {
    let name = |error: Error| match error {
        Error::InvalidArgument { name, .. } => name,
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    let sequences = [vec![1, 2]];
    assert_eq!(
        name(pad_sequences(&sequences, &PadOptions::default().maxlen(0)).unwrap_err()),
        "maxlen"
    );
    let empty: [Vec<usize>; 2] = [vec![], vec![]];
    assert!(matches!(
        pad_sequences(&empty, &PadOptions::default()),
        Err(Error::Data(_))
    ));
    assert_eq!(
        name(pad_sequences(&[vec![1 << 25]], &PadOptions::default()).unwrap_err()),
        "sequences"
    );
    assert_eq!(Side::from_name("post", "padding").unwrap(), Side::Post);
    assert_eq!(name(Side::from_name("middle", "truncating").unwrap_err()), "truncating");
}

#[test]
fn sliding_windows_pair_each_window_with_the_next_id() {
    let ids: Vec<usize> = (1..=7).collect();
    let (x, y) = sliding_windows(&ids, 3, 1).unwrap();
    assert_eq!(x.shape(), &[4, 3]);
    assert_eq!(
        rows(&x),
        [[1.0, 2.0, 3.0], [2.0, 3.0, 4.0], [3.0, 4.0, 5.0], [4.0, 5.0, 6.0]]
    );
    assert_eq!((y.shape(), y.data()), (&[4][..], &[4.0, 5.0, 6.0, 7.0][..]));
    // Starts 0 and 3 (6 would leave no target).
    let (x, y) = sliding_windows(&ids, 3, 3).unwrap();
    assert_eq!(
        (rows(&x), y.data().to_vec()),
        (vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]], vec![4.0, 7.0])
    );
    let (x, y) = sliding_windows(&ids, 6, 4).unwrap();
    assert_eq!((x.shape(), y.data()), (&[1, 6][..], &[7.0][..]));

    let (x, y) = sliding_windows_shifted(&ids, 3, 2).unwrap();
    assert_eq!(rows(&x), [[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]]);
    assert_eq!(rows(&y), [[2.0, 3.0, 4.0], [4.0, 5.0, 6.0]]);

    let invalid = |result: strata::Result<(strata::Tensor, strata::Tensor)>| match result {
        Err(Error::InvalidArgument { name, .. }) => name,
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    assert_eq!(invalid(sliding_windows(&ids, 0, 1)), "window");
    assert_eq!(invalid(sliding_windows_shifted(&ids, 2, 0)), "stride");
    assert!(matches!(sliding_windows(&ids, 7, 1), Err(Error::Data(m)) if m.contains("at least 8")));
}

#[test]
fn hamlet_is_bundled_and_round_trips_through_a_char_tokenizer() {
    let text = load_shakespeare().unwrap();
    assert_eq!(text.len(), 173_942);
    assert!(text.starts_with("HAMLET, PRINCE OF DENMARK"));
    let mut tokenizer = Tokenizer::new().char_level(true).lower(false);
    tokenizer.fit_on_texts(&[&text]).unwrap();
    // 65 distinct characters; the space (26,843 times) is the most frequent, then 'e'.
    assert_eq!(tokenizer.vocabulary_size(), 66);
    assert_eq!((tokenizer.word_index()[" "], tokenizer.word_index()["e"]), (1, 2));
    let ids = tokenizer.encode(&text).unwrap();
    assert_eq!(ids.len(), text.len());
    assert_eq!(tokenizer.decode(&ids).unwrap(), text);
    let (x, y) = sliding_windows(&ids, 100, 50).unwrap();
    // Starts 0, 50, … up to 173,841 (the last with a target): 173,841 / 50 + 1 = 3,477 windows.
    assert_eq!((x.shape(), y.shape()), (&[3477, 100][..], &[3477][..]));

    let missing = std::env::temp_dir().join("strata-no-such-corpus.txt");
    assert!(matches!(load_text(&missing), Err(Error::File { .. })));
    let empty = std::env::temp_dir().join(format!("strata-empty-corpus-{}.txt", common::run_id()));
    std::fs::write(&empty, " \n").unwrap();
    let error = load_text(&empty).unwrap_err();
    std::fs::remove_file(&empty).ok();
    assert!(
        matches!(&error, Error::File { reason, .. } if reason.contains("empty")),
        "{error}"
    );
}

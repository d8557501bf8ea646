//! Every loader meets 10,000 mutated and truncated versions of a valid file and must answer
//! `Ok` or `Err` each time: never a panic, a hang or a huge allocation.

use flate2::write::GzEncoder;
use std::io::Write;
use strata::prelude::*;
use strata::rng::Rng;

const CASES: usize = 10_000;

/// A corrupted copy of `valid`: truncated, bytes overwritten, bytes inserted or deleted.
fn mutate(valid: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut bytes = valid.to_vec();
    match rng.below(4) {
        0 => bytes.truncate(rng.below(valid.len() + 1)),
        1 => {
            for _ in 0..1 + rng.below(8) {
                if !bytes.is_empty() {
                    let at = rng.below(bytes.len());
                    bytes[at] = rng.below(256) as u8;
                }
            }
        }
        2 => {
            let at = rng.below(bytes.len() + 1);
            let junk: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.below(256) as u8).collect();
            bytes.splice(at..at, junk);
        }
        _ => {
            if !bytes.is_empty() {
                let at = rng.below(bytes.len());
                let end = (at + 1 + rng.below(16)).min(bytes.len());
                bytes.drain(at..end);
            }
        }
    }
    bytes
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs `load` on `CASES` mutations of `valid` written to `path`; returns how many loaded.
fn hammer(valid: &[u8], path: &std::path::Path, seed: u64, load: impl Fn(&std::path::Path) -> bool) -> usize {
    let mut rng = Rng::new(seed);
    let mut accepted = 0;
    for _ in 0..CASES {
        std::fs::write(path, mutate(valid, &mut rng)).unwrap();
        accepted += load(path) as usize;
    }
    accepted
}

#[test]
fn mutated_idx_files_never_panic() {
    let mut raw = vec![0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 4];
    raw.extend((0..48).map(|i| i as u8));
    // Mutate both the decompressed content (re-gzipped) and the gzip bytes themselves.
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&raw).unwrap();
    let gz = encoder.finish().unwrap();
    let path = scratch("images.gz");
    hammer(&gz, &path, 1, |p| strata::data::mnist::read_idx(p, 0x0803).is_ok());
    let mut rng = Rng::new(2);
    for _ in 0..CASES {
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&mutate(&raw, &mut rng)).unwrap();
        std::fs::write(&path, encoder.finish().unwrap()).unwrap();
        let _ = strata::data::mnist::read_idx(&path, 0x0803);
    }
}

#[test]
fn mutated_model_files_never_panic() {
    let mut model = Sequential::new();
    model.add(Input::new(&[3])).add(Dense::new(2).activation("softmax"));
    model
        .compile("adam", "sparse_categorical_crossentropy", &["accuracy"])
        .unwrap();
    let path = scratch("model.safetensors");
    model.save(&path).unwrap();
    let valid = std::fs::read(&path).unwrap();
    let loaded = hammer(&valid, &path, 3, |p| strata::load_model(p).is_ok());
    assert!(loaded < CASES, "no mutation was caught");
}

#[test]
fn mutated_model_descriptions_never_panic() {
    use strata::io::config::{Format, parse};
    let toml = include_str!("../models/cnn.toml").as_bytes();
    let json = br#"{"class_name": "Sequential", "config": {"layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [null, 8, 8, 1]}},
        {"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": [3, 3], "strides": 1, "padding": "same"}},
        {"class_name": "MaxPooling2D", "config": {"pool_size": 2}},
        {"class_name": "Flatten", "config": {}},
        {"class_name": "Dense", "config": {"units": 3, "activation": "softmax"}}]}}"#;
    for (valid, format, seed) in [(toml, Format::Toml, 4), (&json[..], Format::Json, 5)] {
        let mut rng = Rng::new(seed);
        for _ in 0..CASES {
            let text = String::from_utf8_lossy(&mutate(valid, &mut rng)).into_owned();
            if let Ok(mut spec) = parse(&text, format, "fuzz") {
                // A description that parses must also build or fail cleanly.
                let _ = spec.model.summary();
            }
        }
    }
}

#[test]
fn mutated_csv_files_never_panic() {
    use strata::data::csv::{LabelColumn, load_csv};
    let valid = b"a,b,label\n1,2,0\n3.5,-4,1\n5,6e2,2\n";
    let path = scratch("table.csv");
    hammer(valid, &path, 6, |p| {
        load_csv(p, LabelColumn::Name("label".into())).is_ok()
    });
}

#[test]
fn mutated_keras_archives_never_panic() {
    use std::io::Read;
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras/cnn.keras");
    let valid = std::fs::read(fixture).unwrap();
    let path = scratch("model.keras");
    let loaded = hammer(&valid, &path, 7, |p| strata::io::import_keras(p).is_ok());
    assert!(loaded < CASES, "no mutation was caught");

    // The zip's checksums reject most mutated members before the HDF5 and JSON readers see
    // them, so also mutate one member and zip it again with correct checksums: members of the
    // CNN and of a functional model (a graph with a shared layer and merges) in turn.
    let members = |archive: &[u8]| {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(archive)).unwrap();
        let mut member = |name: &str| {
            let mut bytes = Vec::new();
            archive.by_name(name).unwrap().read_to_end(&mut bytes).unwrap();
            bytes
        };
        (member("config.json"), member("model.weights.h5"))
    };
    let functional = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras/residual.keras");
    let fixtures = [members(&valid), members(&std::fs::read(functional).unwrap())];
    let mut rng = Rng::new(8);
    let mut accepted = 0;
    for case in 0..CASES {
        let (config, weights) = &fixtures[case % 2];
        // Mostly the weights: the HDF5 reader is the larger surface.
        let (config, weights) = if case % 8 < 2 {
            (mutate(config, &mut rng), weights.clone())
        } else {
            (config.clone(), mutate(weights, &mut rng))
        };
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        zip.start_file("config.json", stored).unwrap();
        zip.write_all(&config).unwrap();
        zip.start_file("model.weights.h5", stored).unwrap();
        zip.write_all(&weights).unwrap();
        let bytes = zip.finish().unwrap().into_inner();
        accepted += strata::io::import_keras_from(std::io::Cursor::new(bytes), "fuzz.keras").is_ok() as usize;
    }
    assert!(accepted < CASES, "no mutation was caught");
}

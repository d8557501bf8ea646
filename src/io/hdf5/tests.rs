//! The HDF5 reader against model.weights.h5 files Keras wrote, intact and damaged by hand.

use super::*;
use crate::rng::Rng;
use std::io::Read;

/// `model.weights.h5` of a fixture archive.
fn weights(archive: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive)).unwrap();
    let mut bytes = Vec::new();
    zip.by_name("model.weights.h5")
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

fn mlp() -> Vec<u8> {
    weights(include_bytes!("../../../tests/fixtures/keras/mlp.keras"))
}

fn cnn() -> Vec<u8> {
    weights(include_bytes!("../../../tests/fixtures/keras/cnn.keras"))
}

fn read(bytes: &[u8], path: &str) -> H5Result<Dataset> {
    let file = Hdf5File::parse(bytes)?;
    let address = file.lookup(path)?.ok_or_else(|| format!("no {path}"))?;
    file.read_f32(address)
}

#[test]
fn reads_the_groups_and_datasets_keras_writes() {
    let bytes = mlp();
    let file = Hdf5File::parse(&bytes).unwrap();
    let root = file.lookup("").unwrap().unwrap();
    let names: Vec<String> = file.members(root).unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["layers", "optimizer", "vars"]);
    let layers = file.lookup("layers").unwrap().unwrap();
    let names: Vec<String> = file.members(layers).unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["dense", "dense_1", "dense_2"]);
    // Dense(5) on 6 inputs; Dense(4) without a bias; Dense(3).
    for (path, shape) in [
        ("layers/dense/vars/0", vec![6, 5]),
        ("layers/dense/vars/1", vec![5]),
        ("layers/dense_1/vars/0", vec![5, 4]),
        ("layers/dense_2/vars/1", vec![3]),
    ] {
        let dataset = read(&bytes, path).unwrap();
        assert_eq!(dataset.shape, shape, "{path}");
        assert_eq!(dataset.values.len(), shape.iter().product::<usize>());
        // The fixture's weights are uniform in [-1, 1).
        assert!(dataset.values.iter().all(|v| (-1.0..1.0).contains(v)), "{path}");
    }
    assert_eq!(file.lookup("layers/dense_1/vars/1").unwrap(), None);
    assert_eq!(file.lookup("layers/nothing/vars").unwrap(), None);
}

#[test]
fn refuses_what_it_does_not_read_by_name() {
    let bytes = mlp();
    // Adam's iteration counter is a scalar int64 (a counter, as Normalization's `count`): read
    // as a float; the model was never trained.
    let counter = read(&bytes, "optimizer/vars/0").unwrap();
    assert_eq!(
        (counter.shape.as_slice(), counter.values.as_slice()),
        (&[][..], &[0.0][..])
    );
    let err = read(&bytes, "layers/dense").unwrap_err();
    assert!(err.contains("not a dataset"), "{err}");
    let mut latest = bytes.clone();
    latest[8] = 2;
    let err = Hdf5File::parse(&latest).err().unwrap();
    assert!(err.contains("superblock version 2") && err.contains("libver"), "{err}");
    assert!(
        Hdf5File::parse(b"PK\x03\x04 not hdf5")
            .err()
            .unwrap()
            .contains("not an HDF5 file")
    );
}

#[test]
fn continuation_loops_are_errors() {
    let mut bytes = cnn();
    let file = Hdf5File::parse(&bytes).unwrap();
    // The `vars` group's header starts with a continuation message (Keras adds an attribute);
    // point it back at the header's own messages.
    let header = file.lookup("layers/conv2d/vars").unwrap().unwrap() as usize;
    let first_message = header + 16;
    assert_eq!(
        u16::from_le_bytes([bytes[first_message], bytes[first_message + 1]]),
        MSG_CONTINUATION
    );
    let body = first_message + 8;
    bytes[body..body + 8].copy_from_slice(&(first_message as u64).to_le_bytes());
    let file = Hdf5File::parse(&bytes).unwrap();
    let err = file.members(header as u64).unwrap_err();
    assert!(err.contains("loop"), "{err}");
}

#[test]
fn b_tree_cycles_are_errors() {
    let mut bytes = mlp();
    // The root group's B-tree node: make it an inner node whose first child is itself.
    let node = bytes.windows(4).position(|w| w == b"TREE").unwrap();
    bytes[node + 5] = 1;
    let first_child = node + 8 + 2 * 8 + 8;
    bytes[first_child..first_child + 8].copy_from_slice(&(node as u64).to_le_bytes());
    let file = Hdf5File::parse(&bytes).unwrap();
    let err = file.lookup("layers").unwrap_err();
    assert!(err.contains("twice"), "{err}");
}

#[test]
fn truncated_files_never_panic_and_datasets_cut_short_are_errors() {
    let bytes = mlp();
    let last = read(&bytes, "layers/dense_2/vars/1").unwrap();
    assert_eq!(last.shape, [3]);
    for end in 0..bytes.len() {
        let _ = read(&bytes[..end], "layers/dense_2/vars/1");
    }
    // Half the file holds neither the last layer's header nor its values.
    assert!(read(&bytes[..bytes.len() / 2], "layers/dense_2/vars/1").is_err());
}

#[test]
fn ten_thousand_mutations_never_panic() {
    let valid = cnn();
    let paths = ["layers/conv2d/vars/0", "layers/conv2d_1/vars/0", "layers/dense/vars/1"];
    let mut rng = Rng::new(11);
    let mut failed = 0;
    for _ in 0..10_000 {
        let mut bytes = valid.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len());
            bytes[at] = rng.below(256) as u8;
        }
        if rng.below(4) == 0 {
            bytes.truncate(rng.below(valid.len()));
        }
        failed += paths.iter().filter(|p| read(&bytes, p).is_err()).count().min(1);
    }
    assert!(failed > 0);
}

#[test]
fn reads_compact_datasets_and_names_the_layouts_and_types_it_refuses() {
    // Written by h5py (tools/make_keras_fixtures.py), not by Keras.
    let bytes = include_bytes!("../../../tests/fixtures/keras/hdf5_layouts.h5");
    let compact = read(bytes, "compact").unwrap();
    assert_eq!(compact.shape, [2, 3]);
    assert_eq!(compact.values, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    // Float64 (a model of Keras's `float64` policy) is rounded to float32.
    assert_eq!(read(bytes, "float64").unwrap().values, [1.0; 3]);
    for (path, says) in [("chunked", "chunked"), ("big_endian", "big-endian")] {
        let err = read(bytes, path).unwrap_err();
        assert!(err.contains(says), "{path}: {err}");
    }
}

/// A legacy Keras `.h5` fixture (tests/fixtures/keras/h5/).
fn legacy(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/keras/h5/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(path).unwrap()
}

fn strings(bytes: &[u8], path: &str, attribute: &str) -> H5Result<Option<Vec<String>>> {
    let file = Hdf5File::parse(bytes)?;
    let object = file.lookup(path)?.ok_or_else(|| format!("no {path}"))?;
    file.attribute_strings(object, attribute)
}

/// Where the parts of the version 1 attribute message named `name` start in `bytes`: its
/// dataspace's first dimension and its data.
fn attribute_at(bytes: &[u8], name: &str) -> (usize, usize) {
    let mut named = name.as_bytes().to_vec();
    named.push(0);
    let at = bytes.windows(named.len()).position(|w| w == named).unwrap();
    let size = |i: usize| u16::from_le_bytes([bytes[at - 8 + i], bytes[at - 7 + i]]) as usize;
    let pad = |n: usize| n.div_ceil(8) * 8;
    assert_eq!(bytes[at - 8], 1, "a version 1 attribute message");
    let dataspace = at + pad(size(2)) + pad(size(4));
    (dataspace + 8, dataspace + pad(size(6)))
}

#[test]
fn reads_variable_and_fixed_length_string_attributes() {
    for file in ["k2_mlp.h5", "k2_mlp_fixed.h5"] {
        let bytes = legacy(file);
        assert_eq!(
            strings(&bytes, "", "keras_version").unwrap(),
            Some(vec!["2.21.0".to_string()]),
            "{file}"
        );
        let config = strings(&bytes, "", "model_config").unwrap().unwrap();
        assert!(config[0].starts_with("{\"class_name\": \"Sequential\""), "{file}");
        assert_eq!(
            strings(&bytes, "model_weights/dense_1", "weight_names").unwrap(),
            Some(vec!["dense_1/kernel:0".to_string()]),
            "{file}"
        );
        assert_eq!(strings(&bytes, "", "no_such_attribute").unwrap(), None);
    }
    let split = legacy("k2_mlp_fixed.h5");
    assert_eq!(
        strings(&split, "model_weights", "layer_names1").unwrap().unwrap(),
        ["dense_1", "dense_2"]
    );
    // An empty float64 array (a layer without weights) is an empty list.
    let input = strings(&legacy("k2_merge.h5"), "model_weights/join", "weight_names").unwrap();
    assert_eq!(input, Some(Vec::new()));
}

#[test]
fn attributes_with_huge_counts_or_lengths_are_errors() {
    let valid = legacy("k2_mlp.h5");
    let (dimension, data) = attribute_at(&valid, "layer_names");
    for count in [1u64 << 40, u64::MAX - 1, 1000] {
        let mut bytes = valid.clone();
        bytes[dimension..dimension + 8].copy_from_slice(&count.to_le_bytes());
        let err = strings(&bytes, "model_weights", "layer_names").unwrap_err();
        assert!(
            err.contains("layer_names") && (err.contains("fit") || err.contains("overflows")),
            "{err}"
        );
    }
    // A string longer than its heap object, and an object the heap does not have.
    let mut bytes = valid.clone();
    bytes[data..data + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = strings(&bytes, "model_weights", "layer_names").unwrap_err();
    assert!(err.contains("longer than its heap object"), "{err}");
    let mut bytes = valid.clone();
    bytes[data + 12..data + 16].copy_from_slice(&999u32.to_le_bytes());
    let err = strings(&bytes, "model_weights", "layer_names").unwrap_err();
    assert!(err.contains("no object 999"), "{err}");
    // A global heap claiming more bytes than the file has.
    let mut bytes = valid.clone();
    let heap = bytes.windows(4).position(|w| w == b"GCOL").unwrap();
    bytes[heap + 8..heap + 16].copy_from_slice(&(1u64 << 50).to_le_bytes());
    assert!(strings(&bytes, "", "model_config").is_err());
    // A fixed-length string array whose elements claim to be huge.
    let fixed = legacy("k2_mlp_fixed.h5");
    let (dimension, _) = attribute_at(&fixed, "layer_names1");
    let mut bytes = fixed.clone();
    bytes[dimension..dimension + 8].copy_from_slice(&(1u64 << 33).to_le_bytes());
    assert!(strings(&bytes, "model_weights", "layer_names1").is_err());
}

#[test]
fn truncated_and_mutated_attributes_never_panic() {
    let bytes = legacy("k2_nested.h5");
    for end in (0..bytes.len()).step_by(7) {
        let _ = strings(&bytes[..end], "", "model_config");
        let _ = strings(&bytes[..end], "model_weights/inner", "weight_names");
    }
    let mut rng = Rng::new(5);
    let mut failed = 0;
    for _ in 0..5_000 {
        let mut mutated = bytes.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(mutated.len());
            mutated[at] = rng.below(256) as u8;
        }
        let results = [
            strings(&mutated, "", "model_config"),
            strings(&mutated, "model_weights", "layer_names"),
            strings(&mutated, "model_weights/inner", "weight_names"),
        ];
        failed += results.iter().any(Result::is_err) as usize;
    }
    assert!(failed > 0);
}

//! Every loader meets thousands of mutated and truncated versions of a valid file and must
//! answer `Ok` or `Err` each time: never a panic, a hang or a huge allocation. A counting
//! allocator measures each case's peak, so "no huge allocation" is checked, not assumed.
mod common;

#[path = "common/datasets.rs"]
mod data_folders;

use flate2::write::GzEncoder;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use strata::prelude::*;
use strata::rng::Rng;

/// Cases per loader: thousands, the whole file well within a minute on two cores.
const CASES: usize = 10_000;

/// The most one case may have allocated at once, on top of what was live before it.
const BUDGET: usize = 512 << 20;

/// Counts the bytes live on each thread and their peak, and the largest single request on any
/// thread (a pool thread's allocation is caught by the latter).
struct PeakTracking;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}
static LARGEST: AtomicUsize = AtomicUsize::new(0);

fn track(grow: isize) {
    // `try_with`: the thread-locals may be gone while a thread shuts down.
    let _ = LIVE.try_with(|live| {
        live.set(live.get() + grow);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counting neither
// allocates nor touches the memory.
unsafe impl GlobalAlloc for PeakTracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        track(layout.size() as isize);
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as isize));
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        track(new_size as isize - layout.size() as isize);
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: PeakTracking = PeakTracking;

/// `run`'s result and the most bytes it had allocated at once on this thread.
fn peak_of<T>(run: impl FnOnce() -> T) -> (T, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(start));
    let result = run();
    (result, (PEAK.with(Cell::get) - start).max(0) as usize)
}

/// Runs one case of a loader and checks it stayed within [`BUDGET`].
fn within_budget<T>(what: &str, run: impl FnOnce() -> T) -> T {
    let (result, peak) = peak_of(run);
    assert!(peak < BUDGET, "{what}: a case allocated {peak} bytes at once");
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(largest < BUDGET, "{what}: one allocation of {largest} bytes");
    result
}

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

/// A path for one test's mutated files: in memory (`/dev/shm`) where there is one, since the
/// cases write thousands of files.
fn scratch(name: &str) -> std::path::PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("strata-hostile-{}", common::run_id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs `load` on `cases` mutations of `valid` written to `path`, each within [`BUDGET`];
/// returns how many loaded.
fn hammer_n(
    cases: usize,
    valid: &[u8],
    path: &std::path::Path,
    seed: u64,
    mut load: impl FnMut(&std::path::Path) -> bool,
) -> usize {
    let mut rng = Rng::new(seed);
    let mut accepted = 0;
    let what = path.display().to_string();
    for _ in 0..cases {
        std::fs::write(path, mutate(valid, &mut rng)).unwrap();
        accepted += within_budget(&what, || load(path)) as usize;
    }
    let _ = std::fs::remove_file(path);
    accepted
}

/// [`hammer_n`] with [`CASES`] cases.
fn hammer(valid: &[u8], path: &std::path::Path, seed: u64, load: impl FnMut(&std::path::Path) -> bool) -> usize {
    hammer_n(CASES, valid, path, seed, load)
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
        let _ = within_budget("re-gzipped IDX", || strata::data::mnist::read_idx(&path, 0x0803));
    }
    std::fs::remove_file(&path).unwrap();
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
            // A description that parses must also summarize (shape inference only, no
            // weights) or fail cleanly, within the budget whatever sizes the mutation wrote.
            within_budget("model description", || {
                if let Ok(mut spec) = parse(&text, format, "fuzz") {
                    let _ = spec.model.summary();
                }
            });
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
        accepted += within_budget("re-zipped .keras", || {
            strata::io::import_keras_from(std::io::Cursor::new(bytes), "fuzz.keras").is_ok()
        }) as usize;
    }
    assert!(accepted < CASES, "no mutation was caught");
}

#[test]
fn mutated_weight_files_never_panic() {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[4, 4, 1]))
        .add(Conv2D::new(2, (3, 3)).activation("relu"))
        .add(Flatten::new())
        .add(Dense::new(2).activation("softmax"));
    model.build(&[4, 4, 1]).unwrap();
    let path = scratch("weights.safetensors");
    model.save_weights(&path).unwrap();
    let valid = std::fs::read(&path).unwrap();
    let loaded = hammer(&valid, &path, 9, |p| model.load_weights(p).is_ok());
    assert!(loaded < CASES, "no mutation was caught");
}

/// A small picture in `format`, as a file's bytes.
fn picture(format: image::ImageFormat) -> Vec<u8> {
    let pixels = image::RgbImage::from_fn(8, 6, |x, y| image::Rgb([(x * 30) as u8, (y * 40) as u8, 128]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(pixels)
        .write_to(&mut bytes, format)
        .unwrap();
    bytes.into_inner()
}

#[test]
fn mutated_images_never_panic() {
    use strata::data::{ImageDatasetOptions, image_dataset_from_directory};
    let dir = scratch("images");
    let class = dir.join("class_a");
    std::fs::create_dir_all(&class).unwrap();
    let options = ImageDatasetOptions {
        image_size: (6, 8),
        ..ImageDatasetOptions::default()
    };
    for (name, format, seed) in [
        ("picture.png", image::ImageFormat::Png, 10),
        ("picture.jpg", image::ImageFormat::Jpeg, 11),
    ] {
        let valid = picture(format);
        let path = class.join(name);
        // Through the image-folder loader, as `strata train --data FOLDER` reads them.
        let loaded = hammer_n(CASES / 2, &valid, &path, seed, |_| {
            image_dataset_from_directory(&dir, &options).is_ok()
        });
        assert!(loaded < CASES / 2, "{name}: no mutation was caught");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mutated_texts_and_tokenizers_never_panic() {
    use strata::data::text::{Tokenizer, load_text};
    let hamlet = include_str!("../data/shakespeare/hamlet.txt");
    let valid = &hamlet.as_bytes()[..2000];
    let path = scratch("text.txt");
    hammer(valid, &path, 12, |p| {
        let Ok(text) = load_text(p) else { return false };
        let mut tokenizer = Tokenizer::new().char_level(true);
        tokenizer.fit_on_texts(&[&text]).is_ok() && tokenizer.encode(&text).is_ok()
    });
    let mut tokenizer = Tokenizer::new().char_level(true);
    tokenizer.fit_on_texts(&[&hamlet[..2000]]).unwrap();
    let json = tokenizer.to_json();
    let mut rng = Rng::new(13);
    for _ in 0..CASES {
        let text = String::from_utf8_lossy(&mutate(json.as_bytes(), &mut rng)).into_owned();
        if let Ok(tokenizer) = within_budget("tokenizer JSON", || Tokenizer::from_json(&text)) {
            let _ = tokenizer.encode("To be, or not to be");
        }
    }
}

#[test]
fn an_idx_header_claiming_millions_of_images_fails_fast_with_a_small_peak() {
    let gzip = |bytes: &[u8]| {
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    };
    let idx = |magic: u8, shape: &[u32], values: usize| {
        let mut bytes = vec![0, 0, 8, magic];
        shape.iter().for_each(|d| bytes.extend_from_slice(&d.to_be_bytes()));
        bytes.resize(bytes.len() + values, 0);
        gzip(&bytes)
    };
    let dir = scratch("idx-bomb");
    std::fs::create_dir_all(&dir).unwrap();
    let images = dir.join("train-images-idx3-ubyte.gz");
    // The issue's header: 1.3 M images (just under the 2³⁰-value limit) in a tiny file;
    // before, a 1 GB buffer was allocated before the error.
    std::fs::write(&images, idx(3, &[1_300_000, 28, 28], 784)).unwrap();
    let (result, peak) = peak_of(|| strata::data::mnist::read_idx(&images, 0x0803));
    assert!(result.is_err() && peak < 1 << 20, "{peak} bytes");
    // 12,000 images really present and 60,000 labels: the counts differ, which is found
    // before the images are decoded (before: 47 MB of images and floats first).
    std::fs::write(&images, idx(3, &[12_000, 28, 28], 12_000 * 784)).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), idx(1, &[60_000], 60_000)).unwrap();
    let (result, peak) = peak_of(|| strata::data::mnist::load_data_from(&dir));
    let message = result.err().unwrap().to_string();
    assert!(message.contains("differ") && peak < 1 << 20, "{peak} bytes: {message}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mutated_keras_h5_files_never_panic() {
    // A tf.keras 2 model with a nested model (variable-length strings), and one with
    // fixed-length strings and a split layer_names.
    for (name, seed) in [("k2_nested.h5", 21), ("k2_mlp_fixed.h5", 22)] {
        let fixture = format!("{}/tests/fixtures/keras/h5/{name}", env!("CARGO_MANIFEST_DIR"));
        let valid = std::fs::read(fixture).unwrap();
        let path = scratch(name);
        let loaded = hammer(&valid, &path, seed, |p| strata::io::import_keras_h5(p).is_ok());
        assert!(loaded < CASES, "{name}: no mutation was caught");
    }
    // Weights-only files, loaded into a model of their architecture.
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras/h5/k2_cnn.h5");
    let mut model = strata::io::import_keras_h5(fixture).unwrap();
    let weights = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras/h5/k2_cnn_weights.h5");
    let valid = std::fs::read(weights).unwrap();
    let path = scratch("k2_cnn_weights.h5");
    let loaded = hammer(&valid, &path, 23, |p| model.load_weights(p).is_ok());
    assert!(loaded < CASES, "weights: no mutation was caught");
}

#[test]
fn mutated_onnx_files_never_panic() {
    // A small CNN, the many-operator model (constant folding, shape chains), one whose weights
    // are in an external file beside it, a tiny BERT (GELU fusion, attention, embeddings) and
    // 1-D convolutions.
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/onnx_import");
    let weights = scratch("small_cnn_external.weights");
    std::fs::copy(format!("{folder}/small_cnn_external.weights"), &weights).unwrap();
    for (name, seed) in [
        ("small_cnn.onnx", 31),
        ("ops.onnx", 32),
        ("small_cnn_external.onnx", 33),
        ("tiny_bert.onnx", 34),
        ("conv1d.onnx", 35),
    ] {
        let valid = std::fs::read(format!("{folder}/{name}")).unwrap();
        let path = scratch(name);
        let loaded = hammer(&valid, &path, seed, |p| strata::io::load_onnx(p).is_ok());
        assert!(loaded < CASES, "{name}: no mutation was caught");
    }
    std::fs::remove_file(weights).unwrap();
}

/// CIFAR batches (Python pickles, checked opcode by opcode before serde-pickle builds them)
/// mutated: each an error or a load, within the budget.
#[test]
fn mutated_cifar_batches_never_panic() {
    let folders = data_folders::DataFolders::new("hostile-cifar");
    folders.copy("cifar-10-python.tar.gz", &folders.strata);
    strata::datasets::cifar10::load_data().unwrap();
    let batch = folders.strata.join("cifar-10-batches-py/data_batch_1");
    let valid = std::fs::read(&batch).unwrap();
    let loaded = hammer_n(2_000, &valid, &batch, 7, |_| {
        strata::datasets::cifar10::load_data().is_ok()
    });
    assert!(loaded < 2_000, "some mutations must be refused");
}

//! Sizes a user chose never wrap around, never allocate beyond the memory budget, and never
//! cost time beyond the input's size (issue 21: checked arithmetic, the budget, linear naming,
//! pooling windows larger than the input).
//!
//! A peak-tracking global allocator measures what each test allocates at most. The counters
//! and the budget are global to the process, so every test takes [`serial`] first.
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use strata::io::config::{self, Format};
use strata::layers::Pooling;
use strata::prelude::*;

/// The system allocator, recording the most memory live at once.
struct PeakAllocator;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grow(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counters have no
// effect on the memory handed out.
unsafe impl GlobalAlloc for PeakAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        grow(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: PeakAllocator = PeakAllocator;

/// The most bytes live at once while `f` ran, above what was live before.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let result = f();
    (result, PEAK.load(Ordering::Relaxed).saturating_sub(before))
}

/// One test at a time: the allocator's counters and the memory budget are the process's.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    strata::limits::clear_memory_budget();
    guard
}

const MB: usize = 1 << 20;

/// 2⁶³ + 392: twice it is 784 in wrapping arithmetic, the size of an MNIST image.
const WRAPS_TO_784: usize = 9_223_372_036_854_776_200;

fn sequential(layers: &str, input: &str) -> String {
    format!(
        r#"{{"class_name": "Sequential", "config": {{"layers": [
            {{"class_name": "InputLayer", "config": {{"batch_shape": [null, {input}]}}}}, {layers}]}}}}"#
    )
}

#[test]
fn a_reshape_whose_size_wraps_around_is_an_error_before_conv_pooling_or_lstm() {
    let _serial = serial();
    let followers: [(&str, Box<dyn Layer>); 3] = [
        ("[1, 2, 1]", Box::new(Conv2D::new(2, 1))),
        ("[1, 2, 1]", Box::new(GlobalAveragePooling2D::new())),
        ("[1, 2]", Box::new(LSTM::new(4))),
    ];
    for (tail, follower) in followers {
        let class = follower.class_name();
        let target: Vec<usize> = match tail {
            "[1, 2, 1]" => vec![WRAPS_TO_784, 2, 1],
            _ => vec![WRAPS_TO_784, 2],
        };
        let mut model = Sequential::new();
        model
            .add(Input::new(&[784]))
            .add(Reshape::new(&target))
            .add_boxed(follower);
        let error = model.compile("sgd", "mse", &[]).unwrap_err().to_string();
        assert!(error.contains("'reshape'"), "{class}: {error}");
        assert!(error.contains("9223372036854776200"), "{class}: {error}");
        assert!(error.contains("more than 2^64 bytes"), "{class}: {error}");
    }
}

#[test]
fn shapes_beyond_2_64_values_are_refused_and_never_printed_wrapped() {
    let _serial = serial();
    let mut model = Sequential::new();
    model
        .add(Input::new(&[1 << 32, 1 << 32, 1 << 32]))
        .add(Flatten::new())
        .add(Dense::new(10));
    let error = model.compile("sgd", "mse", &[]).unwrap_err().to_string();
    assert!(error.contains("(None, 4294967296, 4294967296, 4294967296)"), "{error}");
    assert!(!error.contains("(None, 0)"), "{error}");
    assert!(model.summary().is_err());
}

/// A folder of its own for one test's files (removed when the test passes).
fn scratch(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-size-budget-{test}-{}", common::run_id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A safetensors file holding only a header whose metadata is a strata model of
/// `architecture` for inputs of `input_shape`, and no tensor.
fn saved_without_tensors(dir: &std::path::Path, architecture: &str, input_shape: &str) -> std::path::PathBuf {
    let metadata = serde_json::json!({"__metadata__": {
        "format": "strata", "architecture": architecture, "input_shape": input_shape,
    }});
    let header = metadata.to_string();
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    let path = dir.join("model.safetensors");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_saved_model_whose_architecture_wraps_around_is_refused_by_load_and_summary() {
    let _serial = serial();
    let dir = scratch("wraps");
    let architecture = sequential(
        &format!(
            r#"{{"class_name": "Reshape", "config": {{"target_shape": [{WRAPS_TO_784}, 2, 1]}}}},
               {{"class_name": "GlobalAveragePooling2D", "config": {{}}}}"#
        ),
        "784",
    );
    let path = saved_without_tensors(&dir, &architecture, "[784]");
    let error = strata::load_model(&path).unwrap_err().to_string();
    assert!(
        error.contains("'reshape'") && error.contains("more than 2^64 bytes"),
        "{error}"
    );
    let error = strata::io::weights::saved_model_summary(&path).unwrap_err().to_string();
    assert!(error.contains("'reshape'"), "{error}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_small_saved_file_with_a_huge_architecture_and_no_tensors_allocates_nothing_big() {
    let _serial = serial();
    let dir = scratch("no-tensors");
    // 32,768 × 32,768 weights: 4 GB, under the default budget, in a file of a few hundred bytes.
    let architecture = sequential(r#"{"class_name": "Dense", "config": {"units": 32768}}"#, "32768");
    let path = saved_without_tensors(&dir, &architecture, "[32768]");
    assert!(std::fs::metadata(&path).unwrap().len() < 1024);
    let (result, peak) = peak_during(|| strata::load_model(&path));
    let error = result.unwrap_err().to_string();
    assert!(
        error.contains("1073774592 weights") && error.contains("weights are missing"),
        "{error}"
    );
    assert!(peak < 16 * MB, "loading allocated {} MB", peak / MB);
    // Its summary needs no weight at all.
    let (summary, peak) = peak_during(|| strata::io::weights::saved_model_summary(&path));
    assert!(summary.unwrap().contains("1,073,774,592"));
    assert!(peak < 16 * MB, "the summary allocated {} MB", peak / MB);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn summaries_of_huge_descriptions_make_no_weights() {
    let _serial = serial();
    // The 296-byte description of the issue (4 GB of weights) and Dense(units = 1000000).
    let cases = [
        (
            sequential(r#"{"class_name": "Dense", "config": {"units": 32768}}"#, "32768"),
            "1,073,774,592",
        ),
        (
            sequential(r#"{"class_name": "Dense", "config": {"units": 1000000}}"#, "784"),
            "785,000,000",
        ),
    ];
    for (text, count) in cases {
        let ((summary, params), peak) = peak_during(|| {
            let mut spec = config::parse(&text, Format::Json, "wide.json").unwrap();
            (spec.model.summary().unwrap(), spec.model.count_params())
        });
        assert!(summary.contains(count), "{summary}");
        assert_eq!(
            params.to_string(),
            count.replace(',', ""),
            "count_params before building"
        );
        assert!(peak < 16 * MB, "the summary allocated {} MB", peak / MB);
    }
}

#[test]
fn building_or_training_beyond_the_budget_is_refused_before_allocating() {
    let _serial = serial();
    strata::limits::set_memory_budget(64 << 20);
    let mut model = Sequential::new();
    model
        .add(Input::new(&[784]))
        .add(Dense::new(100_000))
        .add(Dense::new(10));
    let (result, peak) = peak_during(|| model.compile("sgd", "mse", &[]));
    let error = result.unwrap_err();
    assert!(matches!(error, Error::OverBudget { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("'dense'") && message.contains("64.00 MB"), "{message}");
    assert!(peak < 16 * MB, "refusing allocated {} MB", peak / MB);
    // Without a declared input, fit builds: it refuses the same way.
    let mut undeclared = Sequential::new();
    undeclared.add(Dense::new(100_000)).add(Dense::new(10));
    undeclared.compile("sgd", "mse", &[]).unwrap();
    let (x, y) = (Tensor::zeros(&[2, 784]), Tensor::zeros(&[2, 10]));
    let (result, peak) = peak_during(|| undeclared.fit(&x, &y, FitOptions::default().epochs(1).verbose(0)));
    let error = result.unwrap_err();
    assert!(matches!(error, Error::OverBudget { .. }), "{error:?}");
    assert!(peak < 16 * MB, "refusing allocated {} MB", peak / MB);
    // Under a budget that fits, the same model builds.
    strata::limits::set_memory_budget(1 << 30);
    model.compile("sgd", "mse", &[]).unwrap();
    assert_eq!(model.count_params(), 784 * 100_000 + 100_000 + 100_000 * 10 + 10);
    strata::limits::clear_memory_budget();
}

#[test]
fn ten_thousand_unnamed_layers_get_keras_names() {
    let _serial = serial();
    let mut model = Sequential::new();
    model.add(Input::new(&[1]));
    model.add(Dense::new(1).name("dense_3"));
    for _ in 0..10_000 {
        model.add(Dense::new(1));
    }
    let names: Vec<&str> = model.layers().iter().skip(2).map(|l| l.name()).collect();
    // Keras's names, skipping the one taken by hand: dense, dense_1, dense_2, dense_4, ...
    assert_eq!(&names[..5], ["dense", "dense_1", "dense_2", "dense_4", "dense_5"]);
    assert_eq!(names[9_999], "dense_10000");
    let unique: std::collections::HashSet<&str> = model.layers().iter().map(|l| l.name()).collect();
    assert_eq!(unique.len(), model.layers().len());
}

/// The model `Input(5, 5, 8) → pooling`, predicting one image whose values are 0, 1, 2, ...
fn pool_one_image(pooling: Pooling) -> Result<Tensor> {
    let mut model = Sequential::new();
    model.add(Input::new(&[5, 5, 8])).add(pooling);
    let x = Tensor::from_vec(vec![1, 5, 5, 8], (0..200).map(|v| v as f32).collect())?;
    model.predict(&x, 1)
}

#[test]
fn a_pooling_window_larger_than_a_valid_input_is_an_error_naming_both_sizes() {
    let _serial = serial();
    let error = pool_one_image(MaxPooling2D::new(1_000_000).name("big_pool")).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("'big_pool'"), "{message}");
    assert!(
        message.contains("1000000") && message.contains("(None, 5, 5, 8)"),
        "{message}"
    );
}

#[test]
fn same_padded_pooling_windows_larger_than_the_input_cost_only_the_input() {
    let _serial = serial();
    // Each window covers the whole image: every output is the maximum or mean of a channel.
    let channel_max: Vec<f32> = (192..200).map(|v| v as f32).collect();
    let channel_mean: Vec<f32> = (0..8).map(|c| (c + 96) as f32).collect();
    let max = pool_one_image(MaxPooling2D::new(1_000_000).padding("same")).unwrap();
    assert_eq!((max.shape(), max.data()), (&[1, 1, 1, 8][..], &channel_max[..]));
    // A window of 2^63 × 2 taps: its product wraps to 0 in wrapping arithmetic.
    let max = pool_one_image(MaxPooling2D::new((1 << 63, 2)).padding("same").strides(1)).unwrap();
    assert_eq!(max.shape(), &[1, 5, 5, 8]);
    let average = pool_one_image(AveragePooling2D::new(30_000).padding("same").strides(1)).unwrap();
    assert_eq!(average.shape(), &[1, 5, 5, 8]);
    for position in average.data().chunks(8) {
        assert_eq!(position, &channel_mean[..]);
    }
    let average = pool_one_image(AveragePooling2D::new(usize::MAX >> 1).padding("same")).unwrap();
    assert_eq!(average.data(), &channel_mean[..]);
}

#[test]
fn a_batch_whose_activations_exceed_the_budget_is_refused_before_the_first_step() {
    let _serial = serial();
    // A Dense layer of 4,096 units: 16 KB of activations a sample, a 3 MB kernel.
    let mut model = Sequential::new();
    model.add(Input::new(&[784])).add(Dense::new(4096)).add(Dense::new(10));
    model.compile("adam", "mse", &[]).unwrap();
    let (x, y) = (Tensor::zeros(&[4096, 784]), Tensor::zeros(&[4096, 10]));
    strata::limits::set_memory_budget(80 << 20);
    // 4,096 samples at once need about 20 KB × 4,096 × 2 (values and gradients) = 160 MB, and
    // the weights 13 MB × 4 (values, gradients, Adam's two slots); 256 samples 62 MB in all.
    let fit =
        |model: &mut Model, batch| model.fit(&x, &y, FitOptions::default().epochs(1).batch_size(batch).verbose(0));
    let (result, peak) = peak_during(|| fit(&mut model, 4096));
    let message = result.unwrap_err().to_string();
    assert!(
        message.contains("training") && message.contains("batches of 4096"),
        "{message}"
    );
    assert!(peak < 16 * MB, "refusing allocated {} MB", peak / MB);
    let message = model.predict(&x, 4096).unwrap_err().to_string();
    assert!(
        message.contains("predict") && message.contains("batches of 4096"),
        "{message}"
    );
    // A batch larger than the data costs only the data; smaller batches fit.
    fit(&mut model, 256).unwrap();
    assert_eq!(model.predict(&x.slice_rows(0, 100), 4096).unwrap().shape(), &[100, 10]);
    strata::limits::clear_memory_budget();
}

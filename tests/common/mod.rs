//! Helpers shared by the integration tests: random tensors, gradient checks of layer stacks.
#![allow(dead_code)]

use strata::Result;
use strata::Tensor;
use strata::autograd::gradcheck::max_gradient_error;
use strata::autograd::{Graph, ParamStore, Tape, Var};
use strata::layers::Layer;
use strata::rng::Rng;

/// Step of the central differences.
pub const EPS: f32 = 1e-2;
/// Largest accepted error, relative to `max(1, |gradient|)`.
pub const TOLERANCE: f32 = 1e-2;

/// Values uniform in `[low, high)`.
pub fn uniform(shape: &[usize], low: f32, high: f32, seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    let n: usize = shape.iter().product();
    let data = (0..n).map(|_| rng.uniform(low, high)).collect();
    Tensor::from_vec(shape.to_vec(), data).unwrap()
}

/// Values drawn from the standard normal distribution.
pub fn normal(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    let n: usize = shape.iter().product();
    let data = (0..n).map(|_| rng.normal()).collect();
    Tensor::from_vec(shape.to_vec(), data).unwrap()
}

/// `sum(y ⊙ w)` for a fixed random `w` shaped like `y`: a scalar whose gradient with respect to
/// `y` is `w`, so every element of `y` is checked with a distinct weight.
pub fn project(g: &mut Graph, y: Var, seed: u64) -> Result<Var> {
    let shape = g.shape(y).to_vec();
    let w = g.constant(&uniform(&shape, -1.0, 1.0, seed.wrapping_add(1000)));
    let weighted = g.mul(y, w)?;
    Ok(g.sum(weighted))
}

/// A layer, boxed.
pub fn boxed(layer: impl Layer + 'static) -> Box<dyn Layer> {
    Box::new(layer)
}

/// Builds `layers` in order for the per-sample shape of `x`, names unnamed ones, and returns
/// each layer's per-sample output shape.
pub fn build_stack(layers: &mut [Box<dyn Layer>], x_shape: &[usize], params: &mut ParamStore) -> Vec<Vec<usize>> {
    let mut rng = Rng::new(42);
    let mut shape = x_shape[1..].to_vec();
    let mut shapes = Vec::new();
    for (i, layer) in layers.iter_mut().enumerate() {
        if layer.name().is_empty() {
            layer.set_name(format!("layer_{i}"));
        }
        shape = layer.build_one(&shape, params, &mut rng).unwrap();
        shapes.push(shape.clone());
    }
    shapes
}

/// The worst gradient error of every trainable weight of `layers` (applied in order, in a
/// training pass) and of the input batch `x`, which is made a trainable parameter so the input
/// gradient is checked too. `prepare` may change the weights once they are built.
pub fn layer_gradient_error(mut layers: Vec<Box<dyn Layer>>, x: Tensor, prepare: impl FnOnce(&mut ParamStore)) -> f32 {
    let mut params = ParamStore::new();
    build_stack(&mut layers, x.shape(), &mut params);
    prepare(&mut params);
    let x = params.add("x", x, true);
    max_gradient_error(&mut params, EPS, |g| {
        let mut y = g.param(x);
        for layer in &layers {
            y = layer.forward_one(g, y)?;
        }
        project(g, y, 7)
    })
    .unwrap()
}

/// The output of `layers` (built for `x`'s per-sample shape) on `x`, in a training or an
/// inference pass, and the weights they hold.
pub fn run_layers(mut layers: Vec<Box<dyn Layer>>, x: &Tensor, training: bool) -> (Tensor, Vec<Tensor>) {
    let mut params = ParamStore::new();
    build_stack(&mut layers, x.shape(), &mut params);
    let mut tape = Tape::new();
    let mut g = Graph::new(&mut tape, &params, training);
    let mut y = g.constant(x);
    for layer in &layers {
        y = layer.forward_one(&mut g, y).unwrap();
    }
    let out = g.value(y).clone();
    let weights = params.ids().map(|id| params.value(id).clone()).collect();
    (out, weights)
}

/// Asserts `|actual − expected| ≤ tolerance · max(1, |expected|)` element by element.
pub fn assert_close(actual: &[f32], expected: &[f32], tolerance: f32, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= tolerance * 1f32.max(e.abs()),
            "{what}: element {i} is {a}, expected {e}"
        );
    }
}

/// Writes the first `per_class` zeros and ones of the bundled MNIST training set as PNG files,
/// one folder per class (`zero`, `one`) under `dir`: a data set for `--data DIR`.
pub fn write_digit_folders(dir: &std::path::Path, per_class: usize) {
    let ((x_train, y_train), _) = strata::data::mnist::load_data().unwrap();
    let mut written = [0usize; 2];
    for i in 0..x_train.rows() {
        let label = y_train.data()[i] as usize;
        if label > 1 || written[label] == per_class {
            continue;
        }
        let folder = dir.join(["zero", "one"][label]);
        std::fs::create_dir_all(&folder).unwrap();
        let pixels: Vec<u8> = x_train.data()[i * 784..(i + 1) * 784]
            .iter()
            .map(|&v| v as u8)
            .collect();
        image::GrayImage::from_raw(28, 28, pixels)
            .unwrap()
            .save(folder.join(format!("{i}.png")))
            .unwrap();
        written[label] += 1;
        if written == [per_class; 2] {
            break;
        }
    }
}

/// Runs the `strata` binary with `args`: its exit code (-1 when killed), stdout and stderr.
#[cfg(feature = "cli")]
pub fn strata(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Runs `strata train --model cnn --epochs 1000 --verbose 2` with `extra` flags and sends it
/// SIGINT when its first epoch's header appears (printed after the Ctrl-C handler is installed
/// and the data has loaded, just before the first batch): the run waits for an event, never for
/// a time, and has far more epochs than it can finish first on any machine. Returns the exit
/// status, the rest of stdout and stderr.
#[cfg(feature = "cli")]
pub fn interrupt_cnn_training(extra: &[&str]) -> (Option<i32>, String, String) {
    use std::io::{BufRead, Read};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["train", "--model", "cnn", "--epochs", "1000", "--verbose", "2"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("Epoch 1/") {
        line.clear();
        let read = stdout.read_line(&mut line).unwrap();
        assert!(read > 0, "strata ended before training started");
    }
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code(), rest, String::from_utf8_lossy(&out.stderr).into())
}

/// Writes the first `train` and `test` images of the bundled MNIST as a folder of IDX files.
pub fn small_mnist(dir: &std::path::Path, train: usize, test: usize) {
    use std::io::Write;
    let ((x_train, y_train), (x_test, y_test)) = strata::data::mnist::load_data().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let write = |name: &str, magic: u32, dims: &[u32], values: &[f32]| {
        let file = std::fs::File::create(dir.join(name)).unwrap();
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        gz.write_all(&magic.to_be_bytes()).unwrap();
        for dim in dims {
            gz.write_all(&dim.to_be_bytes()).unwrap();
        }
        gz.write_all(&values.iter().map(|&v| v as u8).collect::<Vec<u8>>())
            .unwrap();
        gz.finish().unwrap();
    };
    for (prefix, x, y, n) in [("train", &x_train, &y_train, train), ("t10k", &x_test, &y_test, test)] {
        let count = n as u32;
        write(
            &format!("{prefix}-images-idx3-ubyte.gz"),
            0x0803,
            &[count, 28, 28],
            &x.data()[..n * 784],
        );
        write(
            &format!("{prefix}-labels-idx1-ubyte.gz"),
            0x0801,
            &[count],
            &y.data()[..n],
        );
    }
}

/// A Keras Applications fixture's path (`tests/fixtures/keras/applications/NAME`).
pub fn application_fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/keras/applications/{name}"))
}

/// The gzipped application fixture `NAME.gz` unpacked under its own name into a folder of its
/// own (Keras tells its formats apart by name: `x.weights.h5`, `w.h5`), under Cargo's scratch
/// folder for tests (`target/tmp`), where the next run of the same test binary writes over it
/// instead of leaving a new folder behind in the system's temporary folder.
pub fn unpacked_application_fixture(name: &str) -> std::path::PathBuf {
    let mut bytes = Vec::new();
    let file = std::fs::File::open(application_fixture(&format!("{name}.gz"))).unwrap();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(file), &mut bytes).unwrap();
    // A folder per call: tests run in parallel and may unpack the same fixture.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("applications-{}", env!("CARGO_CRATE_NAME")))
        .join(call.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A part of a temporary file's name unique to this run of this test binary: the process id and
/// the time it started. Process ids alone repeat from run to run on CI machines, whose temporary
/// folder can keep an earlier run's files, and a test must never meet another run's leftovers.
pub fn run_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        let nanos = since_epoch.map(|d| d.as_nanos()).unwrap_or(0);
        format!("{}-{nanos}", std::process::id())
    })
    .clone()
}

/// The input batches and a source framework's outputs of a fixture written as
/// `{"inputs": [...], "outputs": [...]}`, each tensor as `{"shape", "values"}`.
pub fn keras_io(path: &std::path::Path) -> (Vec<Tensor>, Vec<Tensor>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tensors = |key: &str| -> Vec<Tensor> {
        let read = |t: &serde_json::Value| {
            let shape: Vec<usize> = serde_json::from_value(t["shape"].clone()).unwrap();
            let values: Vec<f32> = serde_json::from_value(t["values"].clone()).unwrap();
            Tensor::from_vec(shape, values).unwrap()
        };
        json[key].as_array().unwrap().iter().map(read).collect()
    };
    (tensors("inputs"), tensors("outputs"))
}

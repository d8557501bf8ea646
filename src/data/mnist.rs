//! MNIST from its original IDX `.gz` files, as `keras.datasets.mnist.load_data()` returns it.
//!
//! The files ship with strata under `data/mnist/` (see its README for the attribution).

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

/// `((x_train, y_train), (x_test, y_test))`: images `(N, 28, 28)` with pixel values 0–255,
/// labels `(N)` holding 0–9.
pub type Split = ((Tensor, Tensor), (Tensor, Tensor));

const IMAGES_MAGIC: u32 = 0x0803;
const LABELS_MAGIC: u32 = 0x0801;

/// The bundled MNIST: looks in `data/mnist` under the current directory, then in the
/// directory strata was built from.
pub fn load_data() -> Result<Split> {
    load_data_from(default_dir())
}

/// Where [`load_data`] reads from.
pub fn default_dir() -> PathBuf {
    let local = PathBuf::from("data/mnist");
    if local.join("train-images-idx3-ubyte.gz").exists() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist")
}

/// MNIST from a directory holding the four standard files
/// (`train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`, `t10k-...`).
pub fn load_data_from(dir: impl AsRef<Path>) -> Result<Split> {
    let dir = dir.as_ref();
    let train = load_pair(dir, "train")?;
    let test = load_pair(dir, "t10k")?;
    Ok((train, test))
}

fn load_pair(dir: &Path, prefix: &str) -> Result<(Tensor, Tensor)> {
    let images = read_idx(&dir.join(format!("{prefix}-images-idx3-ubyte.gz")), IMAGES_MAGIC)?;
    let labels = read_idx(&dir.join(format!("{prefix}-labels-idx1-ubyte.gz")), LABELS_MAGIC)?;
    if images.rows() != labels.rows() {
        return Err(Error::file(
            dir,
            format!(
                "{prefix} images ({}) and labels ({}) differ in count",
                images.rows(),
                labels.rows()
            ),
        ));
    }
    Ok((images, labels))
}

/// Reads one gzipped IDX file of unsigned bytes into a tensor of its declared shape.
pub fn read_idx(path: &Path, expected_magic: u32) -> Result<Tensor> {
    let file = std::fs::File::open(path).map_err(|e| {
        Error::file(
            path,
            format!("cannot open ({e}); MNIST's four IDX .gz files are expected in this directory"),
        )
    })?;
    let mut bytes = Vec::new();
    GzDecoder::new(file).read_to_end(&mut bytes).map_err(|e| {
        Error::file(
            path,
            format!("not a readable gzip file ({e}); it may be truncated or corrupt"),
        )
    })?;
    let word = |at: usize| -> Result<u32> {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| Error::file(path, format!("truncated IDX header ({} bytes)", bytes.len())))
    };
    let magic = word(0)?;
    if magic != expected_magic {
        return Err(Error::file(
            path,
            format!("IDX magic is {magic:#010x}, expected {expected_magic:#010x}"),
        ));
    }
    let rank = (magic & 0xff) as usize;
    let shape: Vec<usize> = (0..rank)
        .map(|i| word(4 + 4 * i).map(|d| d as usize))
        .collect::<Result<_>>()?;
    let header = 4 + 4 * rank;
    let count: usize = shape.iter().product();
    if bytes.len() < header + count {
        return Err(Error::file(
            path,
            format!(
                "truncated: the header promises {count} values of shape {shape:?} but the file holds {}",
                bytes.len() - header
            ),
        ));
    }
    let values = bytes[header..header + count].iter().map(|&b| b as f32).collect();
    Tensor::from_vec(shape, values)
}

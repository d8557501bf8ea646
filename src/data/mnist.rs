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
    // Stream: read and check the header first, then exactly the values it promises, so a
    // corrupt or hostile file can neither make us allocate more than its header's (limited)
    // size nor decompress without end.
    let mut reader = GzDecoder::new(file);
    let corrupt = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            Error::file(path, "truncated: the file ends before the data its header promises")
        }
        _ => Error::file(
            path,
            format!("not a readable gzip file ({e}); it may be truncated or corrupt"),
        ),
    };
    let mut word = [0u8; 4];
    reader.read_exact(&mut word).map_err(corrupt)?;
    let magic = u32::from_be_bytes(word);
    if magic != expected_magic {
        return Err(Error::file(
            path,
            format!("IDX magic is {magic:#010x}, expected {expected_magic:#010x}"),
        ));
    }
    let rank = (magic & 0xff) as usize;
    let mut shape = Vec::with_capacity(rank);
    for _ in 0..rank {
        reader.read_exact(&mut word).map_err(corrupt)?;
        shape.push(u32::from_be_bytes(word) as usize);
    }
    let count = shape
        .iter()
        .try_fold(1usize, |total, &d| total.checked_mul(d))
        .filter(|&n| n <= MAX_IDX_VALUES)
        .ok_or_else(|| {
            Error::file(
                path,
                format!("the header declares shape {shape:?}, more than {MAX_IDX_VALUES} values"),
            )
        })?;
    let mut bytes = vec![0u8; count];
    reader.read_exact(&mut bytes).map_err(corrupt)?;
    Tensor::from_vec(shape, bytes.iter().map(|&b| b as f32).collect())
}

/// The largest IDX file strata reads: 2³⁰ values (1 GiB of bytes, 4 GiB as f32), far above
/// MNIST's 47 million.
const MAX_IDX_VALUES: usize = 1 << 30;

//! The IDX `.gz` files MNIST and Fashion-MNIST ship as: a big-endian header (magic, one size
//! per dimension) and unsigned bytes.

use super::Split;
use crate::error::{Error, Result};
use crate::tensor::{Tensor, budgeted_numel};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

const IMAGES_MAGIC: u32 = 0x0803;
const LABELS_MAGIC: u32 = 0x0801;

/// Images and labels from a folder holding the four IDX files MNIST and Fashion-MNIST ship as
/// (`train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`, `t10k-...`).
pub fn load_folder(dir: &Path) -> Result<Split> {
    let train = load_pair(dir, "train")?;
    let test = load_pair(dir, "t10k")?;
    Ok((train, test))
}

/// Whether `dir` holds the first of the four IDX files.
pub fn has_idx_files(dir: &Path) -> bool {
    dir.join("train-images-idx3-ubyte.gz").is_file()
}

fn load_pair(dir: &Path, prefix: &str) -> Result<(Tensor, Tensor)> {
    let (image_path, label_path) = (
        dir.join(format!("{prefix}-images-idx3-ubyte.gz")),
        dir.join(format!("{prefix}-labels-idx1-ubyte.gz")),
    );
    let images = IdxFile::open(&image_path, IMAGES_MAGIC)?;
    let labels = IdxFile::open(&label_path, LABELS_MAGIC)?;
    // The two headers agree before either body is decoded: a header claiming millions of
    // images fails here, not after gigabytes are decompressed.
    let (image_count, label_count) = (images.shape.first(), labels.shape.first());
    if image_count != label_count {
        return Err(Error::file(
            dir,
            format!(
                "{prefix} images ({}) and labels ({}) differ in count",
                image_count.unwrap_or(&0),
                label_count.unwrap_or(&0)
            ),
        ));
    }
    Ok((images.read()?, labels.read()?))
}

/// Reads one gzipped IDX file of unsigned bytes into a tensor of its declared shape.
pub fn read_idx(path: &Path, expected_magic: u32) -> Result<Tensor> {
    IdxFile::open(path, expected_magic)?.read()
}

/// An IDX file whose header has been read and checked; its values are still compressed.
struct IdxFile<'a> {
    path: &'a Path,
    shape: Vec<usize>,
    /// How many values the header promises (the product of `shape`).
    count: usize,
    reader: GzDecoder<std::io::BufReader<std::fs::File>>,
}

impl<'a> IdxFile<'a> {
    /// Opens `path` and reads its header: the magic, then one size per dimension. The size the
    /// header promises is checked against what the compressed file could possibly hold, so a
    /// small file claiming a huge shape fails before anything is allocated.
    fn open(path: &'a Path, expected_magic: u32) -> Result<Self> {
        crate::fs::refuse_special(path)?;
        let file = std::fs::File::open(path).map_err(|e| {
            Error::file(
                path,
                format!("cannot open ({e}); the four IDX .gz files are expected in this folder"),
            )
        })?;
        let compressed = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
        let mut reader = GzDecoder::new(std::io::BufReader::new(file));
        let mut word = [0u8; 4];
        reader.read_exact(&mut word).map_err(|e| corrupt(path, e))?;
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
            reader.read_exact(&mut word).map_err(|e| corrupt(path, e))?;
            shape.push(u32::from_be_bytes(word) as usize);
        }
        let count = shape
            .iter()
            .try_fold(1usize, |total, &d| total.checked_mul(d))
            .filter(|&n| n <= MAX_IDX_VALUES)
            .ok_or_else(|| {
                Error::file(
                    path,
                    format!(
                        "the header declares shape {}, more than {MAX_IDX_VALUES} values",
                        crate::error::array_shape(&shape)
                    ),
                )
            })?;
        budgeted_numel(
            || {
                format!(
                    "{}: the IDX array of shape {}",
                    path.display(),
                    crate::error::array_shape(&shape)
                )
            },
            &shape,
        )?;
        if count as u64 > compressed.saturating_mul(MAX_DEFLATE_RATIO) {
            return Err(Error::file(
                path,
                format!(
                    "the header declares shape {} ({count} values), more than a {compressed}-byte \
                     gzip file can hold; the file is corrupt or truncated",
                    crate::error::array_shape(&shape)
                ),
            ));
        }
        Ok(IdxFile {
            path,
            shape,
            count,
            reader,
        })
    }

    /// The values, read to the end of the gzip stream so that its CRC-32 and length are
    /// verified: a flipped byte is an error, not a changed pixel.
    fn read(mut self) -> Result<Tensor> {
        let path = self.path;
        // Grows with the data actually decompressed, never to the header's claim alone.
        let mut bytes = Vec::new();
        (&mut self.reader)
            .take(self.count as u64)
            .read_to_end(&mut bytes)
            .map_err(|e| corrupt(path, e))?;
        if bytes.len() < self.count {
            return Err(Error::file(
                path,
                format!(
                    "truncated: the header promises {} values, the file holds {}",
                    self.count,
                    bytes.len()
                ),
            ));
        }
        let mut rest = [0u8; 1];
        match self.reader.read(&mut rest).map_err(|e| corrupt(path, e))? {
            0 => Tensor::from_vec(self.shape, bytes.iter().map(|&b| b as f32).collect()),
            _ => Err(Error::file(
                path,
                format!(
                    "holds more data than its header's shape {} declares",
                    crate::error::array_shape(&self.shape)
                ),
            )),
        }
    }
}

/// A read error of a gzip stream, as a file error naming `path`.
fn corrupt(path: &Path, e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            Error::file(path, "truncated: the file ends before the data its header promises")
        }
        _ => Error::file(
            path,
            format!(
                "not a readable gzip file ({e}); it is truncated or corrupt (its checksum or length does not match)"
            ),
        ),
    }
}

/// The largest IDX file strata reads: 2³⁰ values (1 GiB of bytes, 4 GiB as f32), far above
/// MNIST's 47 million. The memory budget is checked too.
const MAX_IDX_VALUES: usize = 1 << 30;

/// Deflate expands its input at most 1032-fold; a header promising more values than that
/// times the file's size cannot be telling the truth.
const MAX_DEFLATE_RATIO: u64 = 1032;

//! numpy's `.npz` archives (a zip of `.npy` files), as Keras's `mnist.npz`, `imdb.npz`,
//! `reuters.npz` and `boston_housing.npz` are: numeric arrays through `npyz`, object arrays
//! (ragged sequences) through their pickle ([`super::pickle`]).
//!
//! `npyz`'s own `npz` feature would bring a second, older `zip`; strata's `zip` opens the archive.

use super::pickle::{ArrayData, integers, numpy_array, read_pickle};
use crate::error::{Error, Result};
use crate::tensor::{Tensor, budgeted_numel};
use npyz::{DType, NpyFile, Order, TypeChar};
use serde_pickle::Value;
use std::io::{Chain, Cursor, Read};
use std::path::{Path, PathBuf};

/// The longest .npy header read (numpy's own `max_header_size`).
const MAX_NPY_HEADER: usize = 10_000;

/// Deflate expands its input at most 1032-fold: a member claiming more is lying.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// An open `.npz` archive.
pub struct Npz {
    path: PathBuf,
    archive: zip::ZipArchive<std::io::BufReader<std::fs::File>>,
}

impl Npz {
    /// Opens `path`; a file that is not a zip archive is an error naming it.
    pub fn open(path: &Path) -> Result<Self> {
        crate::fs::refuse_special(path)?;
        let file = std::fs::File::open(path).map_err(|e| Error::file(path, format!("cannot open ({e})")))?;
        let archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| {
            Error::file(
                path,
                format!("not a readable .npz (zip) archive ({e}); it is truncated or corrupt"),
            )
        })?;
        Ok(Npz {
            path: path.to_path_buf(),
            archive,
        })
    }

    /// The archive's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The numeric array `name` as f32 (Keras's uint8 images, int labels, float64 tables keep
    /// their values; float64 is rounded to f32), in its shape.
    pub fn tensor(&mut self, name: &str) -> Result<Tensor> {
        let path = self.path.clone();
        let what = format!("array '{name}'");
        let bad = |reason: String| Error::file(&path, format!("{what}: {reason}"));
        let member = self.member(name)?;
        let npy = open_npy(member).map_err(bad)?;
        let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
        if npy.order() == Order::Fortran && shape.len() > 1 {
            return Err(bad("Fortran-ordered arrays are not read".into()));
        }
        budgeted_numel(
            || {
                format!(
                    "{}: {what} of shape {}",
                    path.display(),
                    crate::error::array_shape(&shape)
                )
            },
            &shape,
        )?;
        let DType::Plain(type_str) = npy.dtype() else {
            return Err(bad(format!("has a structured dtype ({:?}), not numbers", npy.dtype())));
        };
        let read = |e: std::io::Error| {
            bad(format!(
                "cannot read its values ({e}); the file is truncated or corrupt"
            ))
        };
        let values: Vec<f32> = match (type_str.type_char(), type_str.size_field()) {
            (TypeChar::Uint, 1) => convert(npy.into_vec::<u8>().map_err(read)?),
            (TypeChar::Int, 1) => convert(npy.into_vec::<i8>().map_err(read)?),
            (TypeChar::Uint, 2) => convert(npy.into_vec::<u16>().map_err(read)?),
            (TypeChar::Int, 2) => convert(npy.into_vec::<i16>().map_err(read)?),
            (TypeChar::Uint, 4) => convert(npy.into_vec::<u32>().map_err(read)?),
            (TypeChar::Int, 4) => convert(npy.into_vec::<i32>().map_err(read)?),
            (TypeChar::Uint, 8) => npy
                .into_vec::<u64>()
                .map_err(read)?
                .into_iter()
                .map(|v| v as f32)
                .collect(),
            (TypeChar::Int, 8) => npy
                .into_vec::<i64>()
                .map_err(read)?
                .into_iter()
                .map(|v| v as f32)
                .collect(),
            (TypeChar::Float, 4) => npy.into_vec::<f32>().map_err(read)?,
            (TypeChar::Float, 8) => npy
                .into_vec::<f64>()
                .map_err(read)?
                .into_iter()
                .map(|v| v as f32)
                .collect(),
            _ => return Err(bad(format!("has dtype {type_str}, not an integer or float type"))),
        };
        Tensor::from_vec(shape, values).map_err(|e| bad(e.to_string()))
    }

    /// The object array `name` of integer sequences (IMDB's and Reuters' reviews and newswires:
    /// Python lists, or int arrays, of word ranks).
    pub fn sequences(&mut self, name: &str) -> Result<Vec<Vec<usize>>> {
        let path = self.path.clone();
        let what = format!("array '{name}'");
        let bad = |reason: String| Error::file(&path, format!("{what}: {reason}"));
        let member = self.member(name)?;
        let npy = open_npy(member).map_err(bad)?;
        if !npy.dtype().uses_pickled_array() {
            return Err(bad(format!(
                "has dtype {:?}; sequences are an object array",
                npy.dtype()
            )));
        }
        let array = numpy_array(read_pickle(npy.into_inner(), &path)?, &what, &path)?;
        let ArrayData::Objects(items) = array.data else {
            return Err(bad("holds numbers, not sequences".into()));
        };
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| sequence(item, &format!("{what}[{i}]"), &path))
            .collect()
    }

    /// The `.npy` member `name`, after checking its size is believable.
    fn member(&mut self, name: &str) -> Result<zip::read::ZipFile<'_, std::io::BufReader<std::fs::File>>> {
        let path = &self.path;
        let names: Vec<String> = self
            .archive
            .file_names()
            .filter_map(|n| n.ok().map(|n| n.to_string()))
            .collect();
        let member = self
            .archive
            .by_name(&format!("{name}.npy"))
            .map_err(|_| Error::file(path, format!("has no array '{name}' (it holds {})", names.join(", "))))?;
        if member.size() > member.compressed_size().saturating_mul(MAX_DEFLATE_RATIO) {
            return Err(Error::file(
                path,
                format!(
                    "array '{name}' claims {} bytes, more than its compressed size allows; the file is corrupt",
                    member.size()
                ),
            ));
        }
        Ok(member)
    }
}

/// Integers of up to 32 bits as f32 (exact up to 2^24, far above any pixel, label or word id).
fn convert<T: Into<f64>>(values: Vec<T>) -> Vec<f32> {
    values.into_iter().map(|v| v.into() as f32).collect()
}

/// One sequence of an object array: a Python list of non-negative ints, or an int array.
fn sequence(item: Value, what: &str, path: &Path) -> Result<Vec<usize>> {
    let bad = || Error::file(path, format!("{what} is not a sequence of non-negative integers"));
    match item {
        Value::List(_) | Value::Tuple(_) => super::pickle::int_list(&item).ok_or_else(bad),
        other => match numpy_array(other, what, path)?.data {
            ArrayData::Bytes {
                bytes,
                itemsize,
                big_endian,
            } => integers(&bytes, itemsize, big_endian)
                .ok_or_else(bad)?
                .into_iter()
                .map(|v| usize::try_from(v).map_err(|_| bad()))
                .collect(),
            ArrayData::Objects(_) => Err(bad()),
        },
    }
}

/// A .npy member as npyz reads it: its header's bytes, read first, then the rest.
type Npy<R> = NpyFile<Chain<Cursor<Vec<u8>>, R>>;

/// A .npy member opened with npyz, once its header's shape is known to have fewer than 2⁶⁴
/// values: npyz multiplies the shape unchecked (a panic in a debug build, a wrapped count in a
/// release one), so the header is read and its shape checked here first, and its bytes handed
/// to npyz ahead of the rest. Errors are reasons, for the caller to name the file and array.
fn open_npy<R: Read>(mut member: R) -> std::result::Result<Npy<R>, String> {
    let unreadable = |e: std::io::Error| format!("not a readable .npy ({e})");
    let mut start = vec![0u8; 10];
    member.read_exact(&mut start).map_err(unreadable)?;
    let length = match start[6] {
        1 => usize::from(u16::from_le_bytes([start[8], start[9]])),
        _ => {
            let mut high = [0u8; 2];
            member.read_exact(&mut high).map_err(unreadable)?;
            start.extend_from_slice(&high);
            u32::from_le_bytes([start[8], start[9], high[0], high[1]]) as usize
        }
    };
    if length > MAX_NPY_HEADER {
        return Err(format!(
            "its .npy header of {length} bytes is longer than {MAX_NPY_HEADER}"
        ));
    }
    let mut header = vec![0u8; length];
    member.read_exact(&mut header).map_err(unreadable)?;
    if let Some(dims) = header_shape(&String::from_utf8_lossy(&header))
        && dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d)).is_none()
    {
        let dims: Vec<String> = dims.iter().map(u64::to_string).collect();
        return Err(format!(
            "its .npy header's shape ({}) has more values than 2^64",
            dims.join(", ")
        ));
    }
    start.extend_from_slice(&header);
    NpyFile::new(Cursor::new(start).chain(member)).map_err(unreadable)
}

/// The sizes of the `'shape': (...)` entry of a .npy header, when it is a tuple of numbers
/// (anything else is left for npyz to refuse).
fn header_shape(header: &str) -> Option<Vec<u64>> {
    let after = &header[header.find("'shape'")? + "'shape'".len()..];
    let tuple = after.trim_start().strip_prefix(':')?.trim_start().strip_prefix('(')?;
    let inside = &tuple[..tuple.find(')')?];
    inside
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.trim_end_matches('L').parse().ok())
        .collect()
}

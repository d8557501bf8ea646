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
use std::path::{Path, PathBuf};

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
        let npy = NpyFile::new(member).map_err(|e| bad(format!("not a readable .npy ({e})")))?;
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
        let npy = NpyFile::new(member).map_err(|e| bad(format!("not a readable .npy ({e})")))?;
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

//! Constant tensors of an imported ONNX file: initializers and `Constant` nodes decoded into
//! floats or integers, from `raw_data`, the typed lists, or an external data file beside the
//! model. Every size is a number the file chose, so each is checked (checked arithmetic, the
//! memory budget of [`crate::limits`], the bytes really there) before anything is allocated.

use super::proto::{BFLOAT16, DOUBLE, EXTERNAL, FLOAT, FLOAT16, INT8, INT16, INT32, INT64, TensorProto, UINT8, UINT16};
use std::path::{Path, PathBuf};

/// ONNX's boolean data type (masks exporters compute); strata holds booleans as the integers
/// 0 and 1.
pub(super) const BOOL: i32 = 9;

/// Stands for the batch size in integer tensors that hold shapes (`Shape` of a computed
/// tensor): strata's batch size is not known at import, so arithmetic on it is refused, and a
/// `Reshape` keeps the batch axis where it finds this. Far from `i64::MIN + 1` and
/// `i64::MAX`, which exporters write for "to the end" in `Slice`.
pub(super) const BATCH: i64 = i64::MIN + 0x5eed_ba7c;

/// The largest multiple of the batch size [`batch_times`] stands for.
const MAX_BATCH_FACTOR: i64 = 1 << 32;

/// Stands for `k` times the batch size (`k` ≥ 1; [`BATCH`] itself for 1), as shape arithmetic
/// makes it (PyTorch's attention reshapes `(steps, N, features)` to `(steps, N·heads, width)`
/// with `N·heads` computed from `Shape`); `None` past [`MAX_BATCH_FACTOR`].
pub(super) fn batch_times(k: i64) -> Option<i64> {
    (1..=MAX_BATCH_FACTOR).contains(&k).then(|| BATCH + (k - 1))
}

/// `k` when `value` stands for `k` times the batch size ([`batch_times`]).
pub(super) fn batch_factor(value: i64) -> Option<i64> {
    let k = value.checked_sub(BATCH)?.checked_add(1)?;
    (1..=MAX_BATCH_FACTOR).contains(&k).then_some(k)
}

/// The values of a constant tensor.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Values {
    /// FLOAT and DOUBLE tensors (doubles rounded to f32).
    Float(Vec<f32>),
    /// INT64 and INT32 tensors (shapes, axes, indices); may hold [`BATCH`].
    Int(Vec<i64>),
}

/// A constant tensor: its shape (row-major, batch axis included when it has one) and values.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Constant {
    pub shape: Vec<usize>,
    pub values: Values,
}

impl Constant {
    /// A float tensor; `values` holds the product of `shape` numbers.
    pub fn float(shape: Vec<usize>, values: Vec<f32>) -> Constant {
        Constant {
            shape,
            values: Values::Float(values),
        }
    }

    /// An integer tensor; `values` holds the product of `shape` numbers.
    pub fn int(shape: Vec<usize>, values: Vec<i64>) -> Constant {
        Constant {
            shape,
            values: Values::Int(values),
        }
    }

    /// How many values it holds.
    pub fn len(&self) -> usize {
        match &self.values {
            Values::Float(v) => v.len(),
            Values::Int(v) => v.len(),
        }
    }

    /// The values as floats (integers converted), for weights and scales.
    pub fn floats(&self) -> Vec<f32> {
        match &self.values {
            Values::Float(v) => v.clone(),
            Values::Int(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// The values as floats for arithmetic folded at import; the batch stand-in is an error (a
    /// number computed from the batch size, `x / x.shape[0]`, would be folded for one batch
    /// size, and the stand-in itself is no number at all).
    pub fn numbers(&self, what: &str) -> Result<Vec<f32>, String> {
        match &self.values {
            Values::Int(v) if v.iter().any(|&d| batch_factor(d).is_some()) => Err(format!(
                "{what} computes a number from the batch size, which strata does not fix at import"
            )),
            _ => Ok(self.floats()),
        }
    }

    /// The values as integers (shapes, axes, pads); floats and the batch stand-in are errors.
    pub fn ints(&self, what: &str) -> Result<Vec<i64>, String> {
        match &self.values {
            Values::Int(v) if v.iter().any(|&d| batch_factor(d).is_some()) => Err(format!(
                "{what} depends on the batch size, which strata does not fix at import"
            )),
            Values::Int(v) => Ok(v.clone()),
            Values::Float(_) => Err(format!("{what} must be an integer tensor, not a float one")),
        }
    }
}

/// Where external data files may be read: the model's folder, and how many bytes all the
/// tensors read so far take (against the memory budget).
pub(super) struct TensorReader {
    /// The folder of the model file, canonical; `None` for bytes with no file (external data
    /// is then refused).
    folder: Option<PathBuf>,
    /// Bytes of tensor values decoded so far.
    total: u64,
    /// The memory budget in force.
    budget: u64,
}

impl TensorReader {
    /// A reader for a model file at `origin` (its folder holds any external data).
    pub fn new(origin: &Path, has_file: bool) -> crate::Result<TensorReader> {
        let folder = match has_file {
            true => {
                let parent = origin.parent().filter(|p| !p.as_os_str().is_empty());
                let parent = parent.unwrap_or_else(|| Path::new("."));
                parent.canonicalize().ok()
            }
            false => None,
        };
        Ok(TensorReader {
            folder,
            total: 0,
            budget: crate::limits::memory_budget()?,
        })
    }

    /// Decodes `tensor` (its shape checked, its values counted against the budget).
    pub fn read(&mut self, tensor: &TensorProto) -> Result<Constant, String> {
        let name = &tensor.name;
        let mut shape = Vec::with_capacity(tensor.dims.len().min(64));
        if tensor.dims.len() > 64 {
            return Err(format!("tensor '{name}' has {} dimensions", tensor.dims.len()));
        }
        for &d in &tensor.dims {
            let d = usize::try_from(d).map_err(|_| format!("tensor '{name}' has a negative dimension {d}"))?;
            shape.push(d);
        }
        let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or_else(|| {
            format!(
                "tensor '{name}' has more values than memory can hold ({:?})",
                tensor.dims
            )
        })?;
        let width: u64 = match tensor.data_type {
            BOOL | INT8 | UINT8 => 1,
            INT16 | UINT16 | FLOAT16 | BFLOAT16 => 2,
            FLOAT | INT32 => 4,
            INT64 | DOUBLE => 8,
            other => {
                return Err(format!(
                    "tensor '{name}' has data type {other} ({}), which strata does not read (it reads float, \
                     float16, bfloat16, double, bool and integers of 8 to 64 bits)",
                    type_name(other)
                ));
            }
        };
        let bytes = (count as u64)
            .checked_mul(width)
            .ok_or_else(|| format!("tensor '{name}' is too large"))?;
        self.total = self.total.saturating_add(bytes);
        if self.total > self.budget {
            return Err(format!(
                "tensor '{name}' {shape:?} takes the weights to {} bytes, past the memory budget of {} (STRATA_MAX_MEMORY sets it)",
                self.total,
                crate::limits::format_bytes(Some(self.budget)),
            ));
        }
        let raw;
        let raw_data: &[u8] = if tensor.data_location == EXTERNAL {
            raw = self.external(tensor, bytes)?;
            &raw
        } else {
            &tensor.raw_data
        };
        let values = if !raw_data.is_empty() || count == 0 {
            if raw_data.len() as u64 != bytes {
                return Err(format!(
                    "tensor '{name}' of shape {shape:?} needs {bytes} bytes of data, but has {}",
                    raw_data.len()
                ));
            }
            decode_raw(tensor.data_type, raw_data)
        } else {
            let typed = match tensor.data_type {
                FLOAT => (tensor.float_data.len(), Values::Float(tensor.float_data.clone())),
                DOUBLE => (
                    tensor.double_data.len(),
                    Values::Float(tensor.double_data.iter().map(|&v| v as f32).collect()),
                ),
                INT32 | BOOL | INT8 | UINT8 | INT16 | UINT16 => (
                    tensor.int32_data.len(),
                    Values::Int(tensor.int32_data.iter().map(|&v| v as i64).collect()),
                ),
                // Half-precision values are kept as their 16 bits in `int32_data`.
                FLOAT16 | BFLOAT16 => (
                    tensor.int32_data.len(),
                    Values::Float(
                        tensor
                            .int32_data
                            .iter()
                            .map(|&bits| half_to_f32(tensor.data_type, bits as u16))
                            .collect(),
                    ),
                ),
                _ => (tensor.int64_data.len(), Values::Int(tensor.int64_data.clone())),
            };
            if typed.0 != count {
                return Err(format!(
                    "tensor '{name}' of shape {shape:?} needs {count} values, but has {}",
                    typed.0
                ));
            }
            typed.1
        };
        Ok(Constant { shape, values })
    }

    /// The raw bytes of an external tensor: `length` bytes (or all) from `offset` in the file
    /// `location` names, which must be inside the model's folder.
    fn external(&self, tensor: &TensorProto, expected: u64) -> Result<Vec<u8>, String> {
        let name = &tensor.name;
        let entry = |key: &str| {
            tensor
                .external_data
                .iter()
                .find(|e| e.key == key)
                .map(|e| e.value.as_str())
        };
        let number = |key: &str| -> Result<Option<u64>, String> {
            entry(key)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| format!("tensor '{name}': external data {key} '{v}' is not a number"))
                })
                .transpose()
        };
        let location = entry("location").ok_or_else(|| format!("tensor '{name}' is external but names no location"))?;
        let folder = self.folder.as_ref().ok_or_else(|| {
            format!("tensor '{name}' is kept in the external file '{location}', but the model was not read from a file")
        })?;
        let relative = Path::new(location);
        let escapes = relative.is_absolute()
            || relative
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir));
        let path = folder.join(relative);
        let inside = path.canonicalize().map(|p| p.starts_with(folder));
        match (escapes, inside) {
            (true, _) | (false, Ok(false)) => {
                return Err(format!(
                    "tensor '{name}': external data location '{location}' points outside the model's folder {}",
                    folder.display()
                ));
            }
            (false, Err(e)) => return Err(format!("tensor '{name}': cannot read external data '{location}' ({e})")),
            (false, Ok(true)) => {}
        }
        let offset = number("offset")?.unwrap_or(0);
        let length = number("length")?.unwrap_or(expected);
        if length != expected {
            return Err(format!(
                "tensor '{name}': external data length {length} is not the {expected} bytes its shape needs"
            ));
        }
        use std::io::{Read, Seek, SeekFrom};
        let mut file =
            std::fs::File::open(&path).map_err(|e| format!("tensor '{name}': cannot read '{location}' ({e})"))?;
        let size = file
            .metadata()
            .map_err(|e| format!("tensor '{name}': cannot read '{location}' ({e})"))?
            .len();
        if offset.checked_add(length).is_none_or(|end| end > size) {
            return Err(format!(
                "tensor '{name}': external data '{location}' holds {size} bytes, fewer than offset {offset} + length {length}"
            ));
        }
        let mut bytes = vec![0u8; length as usize];
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_exact(&mut bytes))
            .map_err(|e| format!("tensor '{name}': cannot read '{location}' ({e})"))?;
        Ok(bytes)
    }
}

/// Little-endian values of `data_type` (one of those [`TensorReader::read`] accepts).
fn decode_raw(data_type: i32, raw: &[u8]) -> Values {
    match data_type {
        FLOAT => Values::Float(
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        DOUBLE => Values::Float(
            raw.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
        ),
        BOOL => Values::Int(raw.iter().map(|&b| i64::from(b != 0)).collect()),
        INT8 => Values::Int(raw.iter().map(|&b| i64::from(b as i8)).collect()),
        UINT8 => Values::Int(raw.iter().map(|&b| i64::from(b)).collect()),
        INT16 => Values::Int(
            raw.chunks_exact(2)
                .map(|c| i64::from(i16::from_le_bytes([c[0], c[1]])))
                .collect(),
        ),
        UINT16 => Values::Int(
            raw.chunks_exact(2)
                .map(|c| i64::from(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
        ),
        FLOAT16 | BFLOAT16 => Values::Float(
            raw.chunks_exact(2)
                .map(|c| half_to_f32(data_type, u16::from_le_bytes([c[0], c[1]])))
                .collect(),
        ),
        INT32 => Values::Int(
            raw.chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect(),
        ),
        _ => Values::Int(
            raw.chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
        ),
    }
}

/// The f32 value (exact) of a float16 or bfloat16 `bits`, as `data_type` says.
fn half_to_f32(data_type: i32, bits: u16) -> f32 {
    match data_type {
        FLOAT16 => half::f16::from_bits(bits).to_f32(),
        _ => half::bf16::from_bits(bits).to_f32(),
    }
}

/// ONNX's name of a `TensorProto.DataType`, for errors.
fn type_name(data_type: i32) -> &'static str {
    match data_type {
        2 => "uint8",
        3 => "int8",
        4 => "uint16",
        5 => "int16",
        8 => "string",
        9 => "bool",
        10 => "float16",
        12 => "uint32",
        13 => "uint64",
        14 => "complex64",
        15 => "complex128",
        16 => "bfloat16",
        _ => "unknown",
    }
}

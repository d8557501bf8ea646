//! [`Tensor`]: an n-dimensional, row-major array of `f32` with a checked shape.
//!
//! A tensor owns its values in one contiguous `Vec<f32>`. Shapes are checked when a tensor is
//! made or reshaped; the kernels that compute on tensors run on already-checked shapes.
//!
//! ```
//! use strata::Tensor;
//! let t = Tensor::from_vec(vec![2, 3], vec![1., 2., 3., 4., 5., 6.]).unwrap();
//! assert_eq!(t.shape(), &[2, 3]);
//! assert_eq!(t.get(&[1, 2]), 6.0);
//! ```

mod shape;

pub(crate) use shape::{Dims, broadcast_dims, broadcast_strides as shape_broadcast_strides};
pub use shape::{broadcast_shapes, budgeted_numel, checked_numel, numel};

use crate::error::{Error, Result};

/// An n-dimensional array of `f32`, row-major.
#[derive(Debug, Default)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
    /// How many values at the start of `data`'s allocation have been written since it was
    /// allocated: `data.len()` or more, never above its capacity. A recycled buffer that
    /// held a larger value before grows back within them without being cleared again.
    written: usize,
}

impl Clone for Tensor {
    fn clone(&self) -> Self {
        Tensor::with_data(self.shape.clone(), self.data.clone())
    }
}

impl PartialEq for Tensor {
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape && self.data == other.data
    }
}

impl Tensor {
    /// A tensor of `shape` holding `data`, which the caller has checked has its length.
    fn with_data(shape: Vec<usize>, data: Vec<f32>) -> Self {
        let written = data.len();
        Tensor { shape, data, written }
    }

    /// Sets the number of values to `len` for the caller to overwrite: only values never
    /// written in this allocation are cleared (zeroed), so a buffer going back and forth
    /// between sizes is not cleared on every pass.
    fn set_len_for_overwrite(&mut self, len: usize) {
        if len <= self.written {
            // SAFETY: `written <= capacity`, and the first `written` values of the allocation
            // have all been written since it was allocated (an `f32` has no invalid bits, and
            // shortening a `Vec<f32>` leaves its memory as it was).
            unsafe { self.data.set_len(len) }
        } else {
            self.data.resize(len, 0.0);
            self.written = len;
        }
    }

    /// `data` at its full written length, for handing on with the information it carries.
    fn take_written(&mut self) -> Vec<f32> {
        // SAFETY: as in `set_len_for_overwrite`.
        unsafe { self.data.set_len(self.written) }
        self.written = 0;
        std::mem::take(&mut self.data)
    }

    /// A tensor of the given shape from its values in row-major order.
    pub fn from_vec(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let expected = numel(&shape);
        if expected != data.len() {
            return Err(Error::DataLength {
                shape,
                expected,
                received: data.len(),
            });
        }
        Ok(Tensor::with_data(shape, data))
    }

    /// A tensor filled with `value`.
    pub fn full(shape: &[usize], value: f32) -> Self {
        Tensor::with_data(shape.to_vec(), vec![value; numel(shape)])
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, 0.0)
    }

    /// A tensor of ones.
    pub fn ones(shape: &[usize]) -> Self {
        Self::full(shape, 1.0)
    }

    /// A scalar (shape `[]`).
    pub fn scalar(value: f32) -> Self {
        Tensor::with_data(vec![], vec![value])
    }

    /// A 1-D tensor from a slice.
    pub fn from_slice(values: &[f32]) -> Self {
        Tensor::with_data(vec![values.len()], values.to_vec())
    }

    /// A 2-D tensor from rows of equal length.
    pub fn from_rows(rows: &[Vec<f32>]) -> Result<Self> {
        let cols = rows.first().map_or(0, Vec::len);
        if let Some(bad) = rows.iter().find(|row| row.len() != cols) {
            return Err(Error::Data(format!(
                "rows of different lengths: {cols} and {}",
                bad.len()
            )));
        }
        Ok(Tensor::with_data(vec![rows.len(), cols], rows.concat()))
    }

    /// The shape, outermost dimension first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor holds no values.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The values in row-major order.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The values in row-major order, writable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Consumes the tensor and returns its values.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// The value at a multi-dimensional index.
    ///
    /// # Panics
    ///
    /// If `index` has not one entry per axis, or an entry is not below its axis's size: an
    /// index computed from the tensor's own shape is always in range, so a bad one is a bug.
    pub fn get(&self, index: &[usize]) -> f32 {
        assert_eq!(index.len(), self.shape.len(), "index rank");
        let mut flat = 0;
        for (i, (&at, &dim)) in index.iter().zip(&self.shape).enumerate() {
            assert!(at < dim, "index {at} out of range for axis {i} of size {dim}");
            flat = flat * dim + at;
        }
        self.data[flat]
    }

    /// The single value of a one-element tensor (the first value of a larger one).
    ///
    /// # Panics
    ///
    /// If the tensor holds no values.
    pub fn item(&self) -> f32 {
        self.data[0]
    }

    /// The same values under another shape with the same number of elements.
    pub fn reshape(mut self, shape: &[usize]) -> Result<Self> {
        if numel(shape) != self.data.len() {
            return Err(Error::DataLength {
                shape: shape.to_vec(),
                expected: numel(shape),
                received: self.data.len(),
            });
        }
        self.shape = shape.to_vec();
        Ok(self)
    }

    /// Number of samples: the size of the first axis (0 for a scalar).
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    /// Values per sample: the product of all axes but the first.
    pub fn row_len(&self) -> usize {
        numel(self.shape.get(1..).unwrap_or(&[]))
    }

    /// The samples at `indices` (along the first axis), in that order.
    ///
    /// # Panics
    ///
    /// If the tensor is a scalar (it has no first axis), or an index is not below
    /// [`Tensor::rows`].
    pub fn gather_rows(&self, indices: &[usize]) -> Tensor {
        let mut out = Tensor::with_data(self.shape.clone(), Vec::new());
        self.gather_rows_into(indices, &mut out);
        out
    }

    /// Starts loading rows `indices` into the CPU's caches (a hint; out-of-range rows are
    /// skipped), so a [`Tensor::gather_rows_into`] of them soon after waits less on memory.
    pub fn prefetch_rows(&self, indices: &[usize]) {
        crate::kernels::prefetch_rows(&self.data, self.row_len(), indices);
    }

    /// Like [`Tensor::gather_rows`], reusing `out`'s buffer.
    ///
    /// # Panics
    ///
    /// As [`Tensor::gather_rows`].
    pub fn gather_rows_into(&self, indices: &[usize], out: &mut Tensor) {
        let row = self.row_len();
        out.shape.clear();
        out.shape.push(indices.len());
        out.shape.extend_from_slice(&self.shape[1..]);
        out.set_len_for_overwrite(indices.len() * row);
        crate::kernels::gather_rows(&self.data, row, indices, &mut out.data);
    }

    /// Rows `start..end` along the first axis.
    ///
    /// # Panics
    ///
    /// If the tensor is a scalar, `start > end`, or `end` is past [`Tensor::rows`]: as slicing
    /// a `Vec` does, since callers take their ranges from the tensor's own row count.
    pub fn slice_rows(&self, start: usize, end: usize) -> Tensor {
        let row = self.row_len();
        let mut shape = self.shape.clone();
        shape[0] = end - start;
        Tensor::with_data(shape, self.data[start * row..end * row].to_vec())
    }

    /// Like [`Tensor::slice_rows`], reusing `out`'s buffer.
    ///
    /// # Panics
    ///
    /// As [`Tensor::slice_rows`].
    pub fn slice_rows_into(&self, start: usize, end: usize, out: &mut Tensor) {
        let row = self.row_len();
        out.shape.clear();
        out.shape.push(end - start);
        out.shape.extend_from_slice(&self.shape[1..]);
        // The source first: a bad range fails on the slice, before `out` is resized to it.
        let source = &self.data[start * row..end * row];
        out.set_len_for_overwrite(source.len());
        crate::kernels::copy(&mut out.data, source);
    }

    /// Index of the largest value in each row of a 2-D (or higher) tensor.
    pub fn argmax_rows(&self) -> Vec<usize> {
        let row = self.row_len().max(1);
        self.data.chunks(row).map(crate::kernels::argmax).collect()
    }

    /// Applies `f` to every value.
    pub fn map(&self, f: impl Fn(f32) -> f32) -> Tensor {
        Tensor::with_data(self.shape.clone(), self.data.iter().map(|&v| f(v)).collect())
    }

    /// Applies `f` to every value in place (no copy: for preprocessing large datasets).
    pub fn map_in_place(&mut self, f: impl Fn(f32) -> f32) {
        self.data.iter_mut().for_each(|v| *v = f(*v));
    }

    /// Largest absolute difference to another tensor of the same shape (compared over the
    /// shorter of the two when the shapes differ: this never panics).
    pub fn max_abs_diff(&self, other: &Tensor) -> f32 {
        self.data
            .iter()
            .zip(&other.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    /// Resizes in place to `shape`, keeping the allocation when it is large enough.
    /// Values are unspecified afterwards; callers overwrite them.
    pub(crate) fn resize_for(&mut self, shape: &[usize]) {
        if self.shape != shape {
            self.shape.clear();
            self.shape.extend_from_slice(shape);
        }
        self.set_len_for_overwrite(numel(shape));
    }

    /// Takes the tensor's buffer, leaving it empty (shape `[0]`): for handing the buffer on
    /// to another tensor (see `autograd/recycle.rs`).
    pub(crate) fn take_data(&mut self) -> Vec<f32> {
        if self.shape.capacity() > 0 {
            self.shape.clear();
            self.shape.push(0);
        }
        self.take_written()
    }

    /// Gives the tensor `data` (its contents stale until written) in place of its own buffer,
    /// which it returns; its shape is set by the next [`Tensor::resize_for`].
    pub(crate) fn replace_data(&mut self, data: Vec<f32>) -> Vec<f32> {
        let old = self.take_written();
        self.written = data.len();
        self.data = data;
        old
    }

    /// Makes this tensor a copy of `other`, reusing the allocation.
    pub(crate) fn copy_from(&mut self, other: &Tensor) {
        self.shape.clear();
        self.shape.extend_from_slice(&other.shape);
        self.data.clear();
        self.data.extend_from_slice(&other.data);
        // Growing reallocates only past the old capacity, which `written` never exceeds.
        self.written = self.written.max(self.data.len());
    }
}

#[cfg(test)]
mod tests {
    use super::Tensor;

    /// A buffer shrunk and grown again within what it held keeps its values (it is not
    /// cleared again), through a hand-on between tensors too; values never held read as zero.
    #[test]
    fn regrowing_within_written_values_keeps_them() {
        let values: Vec<f32> = (1..=8).map(|v| v as f32).collect();
        let mut tensor = Tensor::from_vec(vec![8], values.clone()).unwrap();
        tensor.resize_for(&[2]);
        assert_eq!(tensor.data(), &values[..2]);
        tensor.resize_for(&[2, 4]);
        assert_eq!(tensor.data(), &values[..]);
        tensor.resize_for(&[3]);
        let mut other = Tensor::default();
        drop(other.replace_data(tensor.take_data()));
        assert!(tensor.is_empty());
        other.resize_for(&[8]);
        assert_eq!(other.data(), &values[..]);
        other.resize_for(&[10]);
        assert_eq!(&other.data()[8..], &[0.0, 0.0]);
        // A copy holds only its own values, and compares by shape and values alone.
        other.resize_for(&[4]);
        let copy = other.clone();
        assert_eq!(copy, Tensor::from_vec(vec![4], values[..4].to_vec()).unwrap());
        let mut target = Tensor::from_vec(vec![1], vec![9.0]).unwrap();
        target.copy_from(&copy);
        target.resize_for(&[4]);
        assert_eq!(target.data(), &values[..4]);
    }
}

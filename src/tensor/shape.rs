//! Shape arithmetic: element counts and numpy-style broadcasting.

use crate::error::{Error, Result};
use smallvec::SmallVec;

/// A shape held inline up to rank 6 (on the heap beyond): the autograd operations copy their
/// inputs' shapes on every step, and a `Vec` there would allocate on every step.
pub(crate) type Dims = SmallVec<[usize; 6]>;

/// Number of elements in a tensor of this shape (1 for a scalar), for shapes already checked
/// (a tensor's, or one [`checked_numel`] accepted): on sizes a user chose, use that instead.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Number of elements of `shape`, or `None` when it does not fit in a `usize` (a product
/// computed with wrapping arithmetic could pass any size check).
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// Number of elements of `shape` when its f32 values fit in the memory budget
/// ([`crate::limits`]); else an error naming `what` (e.g. the layer and the shape) and the
/// size, which is never printed wrapped around.
pub fn budgeted_numel(what: impl FnOnce() -> String, shape: &[usize]) -> Result<usize> {
    let elements = checked_numel(shape);
    crate::limits::check_memory(what, elements.and_then(crate::limits::f32_bytes))?;
    Ok(elements.unwrap_or_default())
}

/// The shape two operands broadcast to under numpy's rules (align right; a 1 stretches).
pub fn broadcast_shapes(op: &'static str, lhs: &[usize], rhs: &[usize]) -> Result<Vec<usize>> {
    broadcast_dims(op, lhs, rhs).map(|dims| dims.to_vec())
}

/// [`broadcast_shapes`] without a heap allocation for ranks up to 6.
pub(crate) fn broadcast_dims(op: &'static str, lhs: &[usize], rhs: &[usize]) -> Result<Dims> {
    let rank = lhs.len().max(rhs.len());
    let mut out = Dims::from_elem(0, rank);
    for (axis, size) in out.iter_mut().enumerate() {
        let l = dim_from_right(lhs, rank - 1 - axis);
        let r = dim_from_right(rhs, rank - 1 - axis);
        *size = match (l, r) {
            (a, b) if a == b => a,
            (1, b) => b,
            (a, 1) => a,
            _ => {
                return Err(Error::ShapeMismatch {
                    op,
                    lhs: lhs.to_vec(),
                    rhs: rhs.to_vec(),
                });
            }
        };
    }
    Ok(out)
}

/// Size of the axis `from_right` places from the last one, 1 past the front.
fn dim_from_right(shape: &[usize], from_right: usize) -> usize {
    if from_right < shape.len() {
        shape[shape.len() - 1 - from_right]
    } else {
        1
    }
}

/// Row-major strides of `shape` as seen from an output of rank `rank`, 0 on broadcast axes.
pub(crate) fn broadcast_strides(shape: &[usize], out: &[usize]) -> Dims {
    let rank = out.len();
    let mut strides = Dims::from_elem(0, rank);
    let mut stride = 1;
    for from_right in 0..shape.len() {
        let axis = rank - 1 - from_right;
        let dim = shape[shape.len() - 1 - from_right];
        strides[axis] = if dim == 1 && out[axis] != 1 { 0 } else { stride };
        stride *= dim;
    }
    strides
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasts_like_numpy() {
        assert_eq!(broadcast_shapes("add", &[4, 1, 3], &[2, 1]).unwrap(), vec![4, 2, 3]);
        assert_eq!(broadcast_shapes("add", &[], &[5]).unwrap(), vec![5]);
        assert!(broadcast_shapes("add", &[3], &[4]).is_err());
        assert_eq!(broadcast_strides(&[2, 1], &[4, 2, 3]).as_slice(), [0, 1, 0]);
    }

    #[test]
    fn element_counts_never_wrap() {
        assert_eq!(checked_numel(&[2, 3, 4]), Some(24));
        assert_eq!(checked_numel(&[]), Some(1));
        // 2^32 × 2^32 × 2^32 wraps to 0 and [9223372036854776200, 2] to 784 in wrapping arithmetic.
        assert_eq!(checked_numel(&[1 << 32, 1 << 32, 1 << 32]), None);
        assert_eq!(checked_numel(&[9223372036854776200, 2]), None);
        let error = budgeted_numel(|| "the shape".into(), &[1 << 32, 1 << 32, 1 << 32]).unwrap_err();
        assert!(error.to_string().contains("more than 2^64 bytes"), "{error}");
    }
}

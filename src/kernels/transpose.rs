//! How a matrix operand is read: as stored or transposed. Its own file so that the product
//! kernels `matmul` hands shapes to can name it without importing `matmul` back.

/// Whether an operand is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transpose {
    /// Use the matrix as stored (row-major).
    No,
    /// Use its transpose.
    Yes,
}

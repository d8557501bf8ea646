//! The compute boundary: every loop over tensor values that matters for speed lives here.
//!
//! The rest of the crate calls these `pub(crate)` functions on plain slices and never touches
//! `gemm` or `rayon` directly, so a second backend (another SIMD library, a GPU) replaces this
//! folder and nothing else.

mod conv;
mod elementwise;
mod matmul;
mod reduce;

pub use conv::{Padding, Window2d};
pub(crate) use conv::{
    avg_pool, avg_pool_backward, col2im_accumulate, im2col, max_pool, max_pool_backward, output_size,
};
pub(crate) use elementwise::*;
// Public (but hidden from the documentation) for the benchmarks and the allocation test; the
// layers reach the product through `Graph`.
#[doc(hidden)]
pub use matmul::{Transpose, matmul, products_in_flight};
pub(crate) use reduce::*;

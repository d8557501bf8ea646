//! The compute boundary: every loop over tensor values that matters for speed lives here.
//!
//! The rest of the crate calls these `pub(crate)` functions on plain slices and never touches
//! `gemm` or `rayon` directly, so a second backend (another SIMD library, a GPU) replaces this
//! folder and nothing else.

mod conv;
mod direct_conv;
mod elementwise;
mod matmul;
mod reduce;
mod simd;
mod small_gemm;
mod winograd;
mod winograd_tiles;

pub use conv::{Padding, Window2d};
pub(crate) use conv::{
    avg_pool, avg_pool_backward, col2im_accumulate, im2col, max_pool, max_pool_backward, output_size,
};
pub(crate) use direct_conv::Direct;
pub(crate) use elementwise::*;
pub(crate) use matmul::{Transpose, matmul};
pub(crate) use reduce::*;
pub(crate) use winograd::Winograd;

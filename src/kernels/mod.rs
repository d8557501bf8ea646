//! The compute boundary: every loop over tensor values that matters for speed lives here.
//!
//! The rest of the crate calls these `pub(crate)` functions on plain slices and never touches
//! `gemm` or `rayon` directly, so a second backend (another SIMD library, a GPU) replaces this
//! folder and nothing else.

mod activation;
mod attention;
mod batch_norm;
mod batch_products;
mod bf16_matmul;
mod conv;
mod conv_transpose;
mod depthwise;
mod depthwise_3x3;
mod direct_conv;
mod elementwise;
mod int8_conv;
mod int8_depthwise;
mod int8_matmul;
mod int8_pool;
mod inverted_residual;
mod layer_norm;
mod matmul;
mod packed_product;
mod permute;
mod pointwise;
mod pooling;
#[cfg(test)]
mod product_checks;
mod recurrent;
mod reduce;
mod resize;
mod row_product;
mod scratch;
mod simd;
mod skinny_products;
mod small_gemm;
mod softmax;
mod spatial;
mod squash;
mod threads;
mod transpose;
mod update;
mod winograd;
mod winograd_tiles;

pub(crate) use attention::{AttentionDims, attention_backward, attention_forward};
pub(crate) use batch_norm::{
    Normalization, batch_norm_forward, batch_norm_input_grad, batch_norm_moments, batch_norm_scaled_grad,
    batch_norm_sums,
};
pub use bf16_matmul::{ComputeDtype, round_through_bf16};
// Public (but hidden from the documentation) for the benchmarks, as `matmul` is.
pub(crate) use activation::{Activation as OutputActivation, bias_activation};
#[doc(hidden)]
pub use bf16_matmul::matmul_bf16;
pub(crate) use bf16_matmul::product;
pub(crate) use conv::{OutputGrad, col2im_accumulate, im2col, output_size, pool_folds};
pub use conv::{Padding, Window2d};
pub(crate) use conv_transpose::{conv_transpose, conv_transpose_backward, transposed_size};
pub(crate) use depthwise::{depthwise_conv, depthwise_conv_input_grad, depthwise_conv_kernel_grad};
pub(crate) use direct_conv::{Direct, max_pool_folds_forward};
pub(crate) use elementwise::*;
pub(crate) use int8_conv::{
    INT8_IMAGE_SLACK, Int8Conv, Int8Rows, direct_window, int8_reads_flipped, pad_int8_images, widen_int8_kernel,
};
pub(crate) use int8_depthwise::int8_depthwise_conv;
pub use int8_matmul::PackedInt8;
pub(crate) use int8_matmul::{
    Int8Linear, MAX_DEPTH as INT8_MAX_DEPTH, Rescale, RowScaling, Scales, group_factors, quantize_row, quantize_rows,
    scale_of, with_int8_scratch,
};
pub(crate) use int8_pool::int8_max_pool;
pub(crate) use inverted_residual::{
    InvertedResidual, Pointwise as BlockPointwise, handles as inverted_residual_handles, inverted_residual,
    pays as inverted_residual_pays,
};
pub(crate) use layer_norm::{Affine, layer_norm_backward, layer_norm_forward};
pub(crate) use packed_product::{handles as packed_handles, packed_conv, packed_conv_len};
pub(crate) use pointwise::{Finish as PointwiseFinish, handles as pointwise_handles, pointwise_conv};
// Public (but hidden from the documentation) for the benchmarks and the allocation test; the
// layers reach the product through `Graph`.
#[doc(hidden)]
pub use matmul::{Transpose, matmul, products_in_flight};
pub(crate) use pooling::{avg_pool, avg_pool_backward, max_pool, max_pool_backward, max_pool_zero_padded};
// The recurrent cells' kinds and functions are named by the layers (`autograd` re-exports them).
pub(crate) use permute::{MAX_PERMUTED_AXES, inverse_axes, permute};
pub use recurrent::Cell;
pub(crate) use recurrent::{BackwardState, ForwardState, Squashes, StepInputs, step_backward, step_forward};
pub(crate) use reduce::*;
pub(crate) use resize::{resize_bilinear, resize_bilinear_backward, resize_nearest, resize_nearest_backward};
pub use simd::{SimdLevel, bf16_dot, limit_simd_on_this_thread, simd_level};
pub(crate) use softmax::softmax_rows;
pub(crate) use spatial::{frame, place, upsample_nearest, upsample_nearest_backward};
pub use squash::Squash;
pub(crate) use threads::{enter_pool, keep_others_awake, row_band};
pub use threads::{join_pool, set_stay_awake, threads};
pub(crate) use update::update_slots;
pub(crate) use winograd::Winograd;

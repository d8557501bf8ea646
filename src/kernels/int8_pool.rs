//! Max pooling of int8 images, between the int8 convolutions of a calibrated model.
//!
//! Quantizing is monotone (scale, round, clip never reverse an order), so the maximum of
//! quantized values is the quantized maximum: pooling int8 values gives the bits that pooling
//! in `f32` and quantizing after would, with a quarter of the memory to read.

use super::Window2d;
use super::simd::widest;
use rayon::prelude::*;

/// Max pooling of `x (N, H, W, C)` into `out (N, OH, OW, C)`, taps in the padding skipped (as
/// the `f32` kernel, whose padding is `-inf`; a window with no tap inside gives -127, the
/// quantized `-inf`).
pub(crate) fn int8_max_pool(x: &[i8], g: &Window2d, out: &mut [i8]) {
    let (c, image_out) = (g.channels, g.positions() * g.channels);
    assert!(x.len() >= g.batch * g.image_len(), "int8 pooling input too short");
    assert!(out.len() >= g.batch * image_out, "int8 pooling output too short");
    if image_out == 0 {
        return;
    }
    out[..g.batch * image_out]
        .par_chunks_mut(image_out)
        .zip(x.par_chunks(g.image_len().max(1)))
        .for_each(|(out, image)| {
            widest(|| {
                for oy in 0..g.out_h {
                    for ox in 0..g.out_w {
                        let best = &mut out[(oy * g.out_w + ox) * c..][..c];
                        best.fill(-127);
                        for ky in g.rows_inside(oy) {
                            for kx in g.cols_inside(ox) {
                                if let Some((y, x)) = g.source(oy, ox, ky, kx) {
                                    let values = &image[(y * g.width + x) * c..][..c];
                                    for (b, &v) in best.iter_mut().zip(values) {
                                        *b = (*b).max(v);
                                    }
                                }
                            }
                        }
                    }
                }
            })
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pooling quantized values equals quantizing the `f32` pooling's output, with "same"
    /// padding, overlapping windows and a stride that leaves columns out.
    #[test]
    fn int8_pooling_equals_quantizing_after_f32_pooling() {
        let g = Window2d {
            batch: 2,
            height: 7,
            width: 6,
            channels: 5,
            window_h: 3,
            window_w: 2,
            stride_h: 2,
            stride_w: 3,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 1,
            pad_left: 0,
            out_h: 4,
            out_w: 2,
        };
        let x: Vec<f32> = (0..g.batch * g.image_len())
            .map(|i| ((i * 7919 % 301) as f32 - 150.0) / 40.0)
            .collect();
        let scale = 127.0 / 3.5;
        let quantize = |v: &[f32]| -> Vec<i8> {
            let mut q = vec![0i8; v.len()];
            super::super::quantize_row(v, scale, &mut q);
            q
        };
        let mut pooled = vec![0.0f32; g.batch * g.positions() * g.channels];
        let mut argmax = pooled.clone();
        super::super::max_pool(&x, &g, &mut pooled, &mut argmax);
        let mut got = vec![0i8; pooled.len()];
        int8_max_pool(&quantize(&x), &g, &mut got);
        assert_eq!(got, quantize(&pooled));
    }
}

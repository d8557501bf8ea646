//! Weights as TensorBoard summaries: a histogram of a tensor's values and a grayscale picture
//! of it.

use super::proto::{Histogram, Image};
use crate::io::picture::{Compression, encode_png};

/// Buckets of a weight histogram: TensorFlow 2's default for `tf.summary.histogram`.
pub(crate) const BUCKETS: usize = 30;

/// The histogram of `values` in [`BUCKETS`] equal buckets from their minimum to their maximum
/// (one bucket when they are all equal). Non-finite values are left out: one NaN weight should
/// not hide the others' distribution.
pub(crate) fn histogram(values: &[f32]) -> Histogram {
    let finite = || values.iter().copied().filter(|v| v.is_finite()).map(f64::from);
    let (min, max) = finite().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if min > max {
        return Histogram::default();
    }
    let buckets = if min == max { 1 } else { BUCKETS };
    let width = (max - min) / buckets as f64;
    let mut counts = vec![0.0; buckets];
    let (mut num, mut sum, mut sum_squares) = (0.0, 0.0, 0.0);
    for v in finite() {
        let index = if width > 0.0 { ((v - min) / width) as usize } else { 0 };
        counts[index.min(buckets - 1)] += 1.0;
        num += 1.0;
        sum += v;
        sum_squares += v * v;
    }
    let mut bucket_limit: Vec<f64> = (1..=buckets).map(|i| min + width * i as f64).collect();
    bucket_limit[buckets - 1] = max;
    Histogram {
        min,
        max,
        num,
        sum,
        sum_squares,
        bucket_limit,
        bucket: counts,
    }
}

/// A weight tensor of `shape` as a grayscale PNG, darkest at its smallest value, as Keras's
/// `write_images`: a vector is one row; a matrix is shown wide (transposed when it has more
/// rows than columns, so a `784×128` kernel is 128 rows of 784); a tensor of higher rank is
/// read as a matrix of its last dimension's columns. `None` for an empty tensor.
pub(crate) fn weight_image(shape: &[usize], values: &[f32]) -> Option<Image> {
    let columns = shape.last().copied().unwrap_or(1).max(1);
    let rows = values.len() / columns;
    if values.is_empty() || rows * columns != values.len() {
        return None;
    }
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let scale = if hi > lo { 255.0 / (hi - lo) } else { 0.0 };
    let gray = |v: f32| {
        if v.is_finite() {
            ((v - lo) * scale).round() as u8
        } else {
            0
        }
    };
    let transpose = rows > columns;
    let (height, width) = if transpose { (columns, rows) } else { (rows, columns) };
    let mut pixels = Vec::with_capacity(values.len());
    for y in 0..height {
        for x in 0..width {
            let index = if transpose { x * columns + y } else { y * columns + x };
            pixels.push(gray(values[index]));
        }
    }
    // Fast compression: a 784×128 kernel every epoch must not slow training.
    let png = encode_png(&pixels, width as u32, height as u32, 1, Compression::Fast).ok()?;
    Some(Image {
        height: height as i32,
        width: width as i32,
        colorspace: 1,
        encoded_image_string: png,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_every_finite_value_once() {
        let values: Vec<f32> = (0..100).map(|i| i as f32 / 10.0).chain([f32::NAN]).collect();
        let h = histogram(&values);
        assert_eq!((h.min, h.max, h.num), (0.0, f64::from(9.9f32), 100.0));
        assert_eq!(h.bucket.len(), BUCKETS);
        assert_eq!(h.bucket.iter().sum::<f64>(), 100.0);
        assert_eq!(h.bucket_limit.last(), Some(&f64::from(9.9f32)));
        assert!(h.bucket_limit.windows(2).all(|w| w[0] < w[1]));
        assert!((h.sum - 495.0).abs() < 1e-3, "{}", h.sum);
        let flat = histogram(&[2.0; 5]);
        assert_eq!((flat.bucket.clone(), flat.bucket_limit.clone()), (vec![5.0], vec![2.0]));
        assert_eq!(histogram(&[]), Histogram::default());
    }

    #[test]
    fn a_tall_kernel_is_drawn_wide_from_black_to_white() {
        // 3 rows × 2 columns: drawn as 2 rows × 3 columns, the transpose.
        let image = weight_image(&[3, 2], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!((image.height, image.width, image.colorspace), (2, 3, 1));
        let decoded = image::load_from_memory(&image.encoded_image_string).unwrap().to_luma8();
        assert_eq!(decoded.dimensions(), (3, 2));
        assert_eq!(decoded.as_raw(), &[0, 102, 204, 51, 153, 255]);
        assert!(weight_image(&[0], &[]).is_none());
    }
}

//! Preprocessing helpers with Keras's names: `to_categorical`, scaling, standardizing,
//! seeded shuffling and splitting, batches.

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::Tensor;

/// One-hot encodes integer labels `(N)` into `(N, num_classes)`, as
/// `keras.utils.to_categorical`.
pub fn to_categorical(labels: &Tensor, num_classes: usize) -> Result<Tensor> {
    let mut out = Tensor::zeros(&[labels.len(), num_classes]);
    for (row, &label) in labels.data().iter().enumerate() {
        if label < 0.0 || label.fract() != 0.0 || label as usize >= num_classes {
            return Err(Error::Data(format!(
                "label {label} at index {row} is not a class index below num_classes={num_classes}"
            )));
        }
        out.data_mut()[row * num_classes + label as usize] = 1.0;
    }
    Ok(out)
}

/// Multiplies every value by `factor` (`scale(&x, 1.0 / 255.0)` maps pixels to [0, 1]).
pub fn scale(x: &Tensor, factor: f32) -> Tensor {
    x.map(|v| v * factor)
}

/// [`scale`] without a copy: the same product, so data prepared either way is bit-identical
/// (the command line prepares MNIST with it, the examples with `scale`).
pub fn scale_in_place(x: &mut Tensor, factor: f32) {
    x.map_in_place(|v| v * factor);
}

/// Standardizes each feature (column of a `(N, F)` table) to mean 0 and standard deviation 1;
/// returns the result with the means and standard deviations used, to apply to test data.
pub fn standardize(x: &Tensor) -> (Tensor, Vec<f32>, Vec<f32>) {
    let (rows, cols) = (x.rows().max(1), x.row_len().max(1));
    let mut mean = vec![0.0f64; cols];
    let mut var = vec![0.0f64; cols];
    for row in x.data().chunks(cols) {
        row.iter().zip(&mut mean).for_each(|(&v, m)| *m += v as f64);
    }
    mean.iter_mut().for_each(|m| *m /= rows as f64);
    for row in x.data().chunks(cols) {
        row.iter()
            .zip(&mean)
            .zip(&mut var)
            .for_each(|((&v, m), s)| *s += (v as f64 - m).powi(2));
    }
    let std: Vec<f32> = var
        .iter()
        .map(|s| ((s / rows as f64).sqrt() as f32).max(1e-7))
        .collect();
    let mean: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
    let mut out = x.clone();
    for row in out.data_mut().chunks_mut(cols) {
        row.iter_mut()
            .zip(&mean)
            .zip(&std)
            .for_each(|((v, m), s)| *v = (*v - m) / s);
    }
    (out, mean, std)
}

/// Shuffles the samples of `x` and `y` with the same seeded permutation.
pub fn shuffle(x: &Tensor, y: &Tensor, seed: u64) -> Result<(Tensor, Tensor)> {
    check_rows(x, y)?;
    let mut order: Vec<usize> = (0..x.rows()).collect();
    Rng::new(seed).shuffle(&mut order);
    Ok((x.gather_rows(&order), y.gather_rows(&order)))
}

/// Splits `(x, y)` into training and test parts after a seeded shuffle; `test_fraction` of the
/// samples go to the test part. Returns `((x_train, y_train), (x_test, y_test))`.
pub fn train_test_split(
    x: &Tensor,
    y: &Tensor,
    test_fraction: f32,
    seed: u64,
) -> Result<((Tensor, Tensor), (Tensor, Tensor))> {
    if !(0.0..1.0).contains(&test_fraction) {
        return Err(Error::invalid("test_fraction", test_fraction, "must be in [0, 1)"));
    }
    let (x, y) = shuffle(x, y, seed)?;
    let keep = x.rows() - (test_fraction as f64 * x.rows() as f64).round() as usize;
    Ok((
        (x.slice_rows(0, keep), y.slice_rows(0, keep)),
        (x.slice_rows(keep, x.rows()), y.slice_rows(keep, y.rows())),
    ))
}

fn check_rows(x: &Tensor, y: &Tensor) -> Result<()> {
    if x.rows() != y.rows() {
        return Err(Error::Data(format!(
            "x has {} samples but y has {}",
            x.rows(),
            y.rows()
        )));
    }
    Ok(())
}

/// Iterator over `(x, y)` mini-batches in order; the last one may be smaller.
pub struct Batches<'a> {
    x: &'a Tensor,
    y: &'a Tensor,
    batch_size: usize,
    start: usize,
}

/// Mini-batches of `batch_size` samples of `(x, y)`.
pub fn batches<'a>(x: &'a Tensor, y: &'a Tensor, batch_size: usize) -> Result<Batches<'a>> {
    check_rows(x, y)?;
    if batch_size == 0 {
        return Err(Error::invalid("batch_size", 0, "must be at least 1"));
    }
    Ok(Batches {
        x,
        y,
        batch_size,
        start: 0,
    })
}

impl Iterator for Batches<'_> {
    type Item = (Tensor, Tensor);

    fn next(&mut self) -> Option<Self::Item> {
        if self.start >= self.x.rows() {
            return None;
        }
        let end = (self.start + self.batch_size).min(self.x.rows());
        let batch = (self.x.slice_rows(self.start, end), self.y.slice_rows(self.start, end));
        self.start = end;
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hot_and_bad_label() {
        let y = to_categorical(&Tensor::from_slice(&[2.0, 0.0]), 3).unwrap();
        assert_eq!(y.data(), &[0., 0., 1., 1., 0., 0.]);
        assert!(
            to_categorical(&Tensor::from_slice(&[3.0]), 3)
                .unwrap_err()
                .to_string()
                .contains("label 3")
        );
    }

    #[test]
    fn standardize_gives_zero_mean_unit_std() {
        let x = Tensor::from_vec(vec![3, 2], vec![1., 10., 2., 20., 3., 30.]).unwrap();
        let (z, mean, _) = standardize(&x);
        assert_eq!(mean, vec![2.0, 20.0]);
        assert!((z.get(&[0, 0]) + 1.2247449).abs() < 1e-5 && (z.get(&[2, 1]) - 1.2247449).abs() < 1e-5);
    }

    #[test]
    fn split_and_batches_keep_pairs_together() {
        let x = Tensor::from_vec(vec![10, 1], (0..10).map(|v| v as f32).collect()).unwrap();
        let ((xa, ya), (xb, yb)) = train_test_split(&x, &x.clone().reshape(&[10]).unwrap(), 0.3, 1).unwrap();
        assert_eq!((xa.rows(), xb.rows()), (7, 3));
        assert_eq!(xa.data(), ya.data());
        assert_eq!(xb.data(), yb.data());
        let sizes: Vec<usize> = batches(&xa, &ya, 3).unwrap().map(|(bx, _)| bx.rows()).collect();
        assert_eq!(sizes, vec![3, 3, 1]);
    }
}

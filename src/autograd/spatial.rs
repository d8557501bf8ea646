//! Operations that move whole pixels of channels-last images `(N, H, W, C)`: framing (zero
//! padding and cropping, one operation with a signed offset, each the other's gradient),
//! upsampling and resizing (nearest-neighbour or bilinear), with their backward rules.

use super::buffers::{GradTargets, Inputs, Node};
use super::op::{Op, Var};
use super::tape::Graph;
use crate::error::{Error, Result};
use crate::kernels;

/// Amounts to add to (padding) or take from (cropping) each side of an image:
/// `((top, bottom), (left, right))`, as Keras writes them.
pub type Sides = ((usize, usize), (usize, usize));

impl Graph<'_> {
    /// `x` with `sides` rows and columns of zeros around each image (Keras's `ZeroPadding2D`).
    pub fn zero_pad2d(&mut self, x: Var, sides: Sides) -> Result<Var> {
        let ((top, bottom), (left, right)) = sides;
        let [n, h, w, c] = self.image_dims("zero_pad2d", x, sides)?;
        let grown = |size: usize, a: usize, b: usize| size.checked_add(a)?.checked_add(b);
        let (Some(out_h), Some(out_w)) = (grown(h, top, bottom), grown(w, left, right)) else {
            return Err(self.sides_error("zero_pad2d", x, sides));
        };
        let offset = self.offset("zero_pad2d", x, sides, (top, left), 1)?;
        Ok(self.frame(x, offset, [n, out_h, out_w, c]))
    }

    /// `x` without `sides` rows and columns at its edges (Keras's `Cropping2D`); at least one
    /// row and one column must remain.
    pub fn crop2d(&mut self, x: Var, sides: Sides) -> Result<Var> {
        let ((top, bottom), (left, right)) = sides;
        let [n, h, w, c] = self.image_dims("crop2d", x, sides)?;
        let shrunk = |size: usize, a: usize, b: usize| size.checked_sub(a.checked_add(b)?).filter(|&s| s > 0);
        let (Some(out_h), Some(out_w)) = (shrunk(h, top, bottom), shrunk(w, left, right)) else {
            return Err(self.sides_error("crop2d", x, sides));
        };
        let offset = self.offset("crop2d", x, sides, (top, left), -1)?;
        Ok(self.frame(x, offset, [n, out_h, out_w, c]))
    }

    /// Each pixel of `x` repeated `factor` = (rows, columns) times (Keras's `UpSampling2D`
    /// with `interpolation="nearest"`).
    pub fn upsample2d(&mut self, x: Var, factor: (usize, usize)) -> Result<Var> {
        self.upsample(x, factor, false)
    }

    /// `x` grown `factor` = (rows, columns) times by bilinear interpolation, as Keras's
    /// `UpSampling2D(interpolation="bilinear")` (TensorFlow's half-pixel centres, no
    /// antialiasing; see `kernels::resize_bilinear`).
    pub fn upsample2d_bilinear(&mut self, x: Var, factor: (usize, usize)) -> Result<Var> {
        self.upsample(x, factor, true)
    }

    /// `x` resized to `size` = (rows, columns), bilinear or nearest-neighbour, as Keras's
    /// `Resizing` (TensorFlow's half-pixel centres, no antialiasing; see
    /// `kernels::resize_bilinear`). Each side of the size must be at least 1.
    pub fn resize2d(&mut self, x: Var, size: (usize, usize), bilinear: bool) -> Result<Var> {
        let [n, h, w, c] = self.image_dims("resize2d", x, ((size.0, size.0), (size.1, size.1)))?;
        if size.0 == 0 || size.1 == 0 || h == 0 || w == 0 {
            return Err(Error::ShapeMismatch {
                op: "resize2d",
                lhs: self.shape(x).to_vec(),
                rhs: vec![size.0, size.1],
            });
        }
        Ok(self.push(
            Op::Resize2d { x, bilinear },
            &[n, size.0, size.1, c],
            |inputs, out, _| {
                let (x, out) = (inputs.get(x).data(), out.data_mut());
                if bilinear {
                    kernels::resize_bilinear(x, (h, w), out, (n, c), size);
                } else {
                    kernels::resize_nearest(x, (h, w), out, (n, c), size);
                }
            },
        ))
    }

    fn upsample(&mut self, x: Var, factor: (usize, usize), bilinear: bool) -> Result<Var> {
        let [n, h, w, c] = self.image_dims("upsample2d", x, ((factor.0, factor.0), (factor.1, factor.1)))?;
        let scaled = |size: usize, f: usize| size.checked_mul(f).filter(|_| f > 0);
        let (Some(out_h), Some(out_w)) = (scaled(h, factor.0), scaled(w, factor.1)) else {
            return Err(Error::ShapeMismatch {
                op: "upsample2d",
                lhs: self.shape(x).to_vec(),
                rhs: vec![factor.0, factor.1],
            });
        };
        let op = Op::Upsample2d { x, factor, bilinear };
        Ok(self.push(op, &[n, out_h, out_w, c], |inputs, out, _| {
            let (x, out) = (inputs.get(x).data(), out.data_mut());
            if bilinear {
                kernels::resize_bilinear(x, (h, w), out, (n, c), (out_h, out_w));
            } else {
                kernels::upsample_nearest(x, (h, w), out, (n, c), factor);
            }
        }))
    }

    /// The `(N, H, W, C)` of an image batch, or a shape error for another rank.
    fn image_dims(&self, op: &'static str, x: Var, sides: Sides) -> Result<[usize; 4]> {
        <[usize; 4]>::try_from(self.shape(x)).map_err(|_| self.sides_error(op, x, sides))
    }

    fn sides_error(&self, op: &'static str, x: Var, ((top, bottom), (left, right)): Sides) -> Error {
        Error::ShapeMismatch {
            op,
            lhs: self.shape(x).to_vec(),
            rhs: vec![top, bottom, left, right],
        }
    }

    /// Where `x`'s pixel (0, 0) lands in the output: `(top, left)` times `sign`.
    fn offset(
        &self,
        op: &'static str,
        x: Var,
        sides: Sides,
        (top, left): (usize, usize),
        sign: isize,
    ) -> Result<(isize, isize)> {
        match (isize::try_from(top), isize::try_from(left)) {
            (Ok(top), Ok(left)) => Ok((sign * top, sign * left)),
            _ => Err(self.sides_error(op, x, sides)),
        }
    }

    /// Records `x` placed at `offset` in a zero image batch of `shape`.
    fn frame(&mut self, x: Var, offset: (isize, isize), shape: [usize; 4]) -> Var {
        let from = self.shape(x).to_vec();
        self.push(Op::Frame2d { x, offset }, &shape, |inputs, out, _| {
            let (from_size, to) = ((from[1], from[2]), (shape[1], shape[2]));
            kernels::frame(
                inputs.get(x).data(),
                from_size,
                out.data_mut(),
                to,
                (from[0], from[3]),
                offset,
            );
        })
    }
}

/// A frame's gradient is the inverse frame of the output's gradient: the padded border's
/// gradient is dropped, a cropped-away edge gets none.
pub(super) fn frame2d_backward(x: Var, offset: (isize, isize), inputs: &Inputs, node: Node, targets: &mut GradTargets) {
    let Some(dx) = targets.get(x) else { return };
    let (from, to) = (inputs.get(x).shape(), node.grad.shape());
    kernels::place(
        node.grad.data(),
        (to[1], to[2]),
        dx,
        (from[1], from[2]),
        (from[0], from[3]),
        (-offset.0, -offset.1),
        true,
    );
}

/// Each input pixel's gradient is the sum over its copies, or (bilinear) over the output
/// pixels it was mixed into, by their weights.
pub(super) fn upsample2d_backward(
    x: Var,
    (factor, bilinear): ((usize, usize), bool),
    inputs: &Inputs,
    node: Node,
    targets: &mut GradTargets,
) {
    let Some(dx) = targets.get(x) else { return };
    let from = inputs.get(x).shape();
    let (size, grad) = ((from[1], from[2]), node.grad.data());
    if bilinear {
        let to = (size.0 * factor.0, size.1 * factor.1);
        kernels::resize_bilinear_backward(grad, dx, size, from[3], to);
    } else {
        kernels::upsample_nearest_backward(grad, dx, size, from[3], factor);
    }
}

/// Each input pixel's gradient is the sum of the output gradients it was copied or (bilinear)
/// mixed into, by their weights.
pub(super) fn resize2d_backward(x: Var, bilinear: bool, inputs: &Inputs, node: Node, targets: &mut GradTargets) {
    let Some(dx) = targets.get(x) else { return };
    let (from, to) = (inputs.get(x).shape(), node.grad.shape());
    let (size, out_size, grad) = ((from[1], from[2]), (to[1], to[2]), node.grad.data());
    if bilinear {
        kernels::resize_bilinear_backward(grad, dx, size, from[3], out_size);
    } else {
        kernels::resize_nearest_backward(grad, dx, size, from[3], out_size);
    }
}

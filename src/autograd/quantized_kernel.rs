//! Int8 weights: a layer's kernel as int8 values and `f32` scales, the form
//! [`ParamStore`](super::ParamStore) keeps beside a weight once the model is quantized.
//!
//! This file sits below the operations (it names no part of the tape): the store holds these
//! kernels, and `quantized.rs` records the int8 products that read them.

use crate::error::{Error, Result};
use crate::kernels::{self, PackedInt8, RowScaling};
use crate::tensor::Tensor;

/// How the activations entering an int8 product are scaled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ActivationScale {
    /// One scale per row: per sample for `Dense` (Keras's `AbsMaxQuantizer(axis=-1)`), per
    /// image for a convolution. The default, and Keras's choice.
    #[default]
    PerRow,
    /// One scale for the whole batch: cheaper, and what static int8 runtimes do, but one
    /// outlying sample coarsens every other's values.
    PerTensor,
}

impl ActivationScale {
    /// The name saved in model files: `per_row` or `per_tensor`.
    pub fn name(self) -> &'static str {
        match self {
            ActivationScale::PerRow => "per_row",
            ActivationScale::PerTensor => "per_tensor",
        }
    }

    /// The scale named `name`, or an error listing both.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "per_row" => Ok(ActivationScale::PerRow),
            "per_tensor" => Ok(ActivationScale::PerTensor),
            other => Err(Error::invalid(
                "activations",
                other,
                "activation scaling is \"per_row\" (Keras's) or \"per_tensor\"",
            )),
        }
    }
}

/// Along which axis a kernel's scales run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleAxis {
    /// One scale per output channel (the last axis), over all the others: `Dense`, `Conv1D`,
    /// `Conv2D` kernels. Keras's `abs_max_quantize(kernel, axis=0)` for `Dense`.
    Columns,
    /// One scale per row of a `(rows, width)` table: `Embedding` (Keras's `axis=-1`).
    Rows,
    /// One scale per output channel of a `DepthwiseConv2D` kernel `(KH, KW, C, M)`: channel
    /// `c·M + m`, the last two axes together, over the taps.
    Depthwise,
}

impl ScaleAxis {
    /// The name saved in model files: `columns`, `rows` or `depthwise`.
    pub fn name(self) -> &'static str {
        match self {
            ScaleAxis::Columns => "columns",
            ScaleAxis::Rows => "rows",
            ScaleAxis::Depthwise => "depthwise",
        }
    }

    /// The axis named `name` (as [`ScaleAxis::name`] spells it), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        [ScaleAxis::Columns, ScaleAxis::Rows, ScaleAxis::Depthwise]
            .into_iter()
            .find(|axis| axis.name() == name)
    }
}

/// A kernel stored as int8 values and `f32` scales (`value ≈ q / scale`, as Keras dequantizes).
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedKernel {
    values: Vec<i8>,
    shape: Vec<usize>,
    scales: Vec<f32>,
    axis: ScaleAxis,
    activations: ActivationScale,
    /// The values in the layout the products read (`Columns` kernels only).
    packed: Option<PackedInt8>,
    /// A convolution kernel whose input channels are not a multiple of 4, with zero rows
    /// added to round each window row's `KW·C` values up to whole quads, packed: its images
    /// are read in place, a window row at a time, instead of through im2col
    /// (`kernels::int8_conv`).
    /// Boxed: most kernels have none, and the file loader holds kernels in an enum beside `f32`
    /// tensors.
    packed_wide: Option<Box<PackedInt8>>,
    /// A calibrated layer's input scale (`127 / max|x|` over a calibration sample): the
    /// activations are quantized with it, not with a scale measured on each batch.
    input_scale: Option<f32>,
    /// With `input_scale`, per output channel `1 / (input_scale · scale)`: what the exact sums
    /// are multiplied by.
    factors: Vec<f32>,
    /// When the layer's output feeds only the next int8 layer of a calibrated model (through a
    /// max pooling at most), that layer's input scale: the output is written as int8 with it.
    output_scale: Option<f32>,
}

/// A value kept as int8 between two int8 layers of a calibrated model, with the scale it was
/// quantized with; its `f32` form on the tape is never written.
#[derive(Debug)]
pub(crate) struct Int8Value {
    /// The quantized values, in the `f32` value's layout.
    pub(crate) values: Vec<i8>,
    /// `q ≈ x · scale`.
    pub(crate) scale: f32,
}

impl QuantizedKernel {
    /// Quantizes `kernel` as Keras's `abs_max_quantize` does: per scale, `127 / (max|w| + 1e-7)`,
    /// then `clip(round_half_even(w · scale), -127, 127)`.
    pub fn quantize(kernel: &Tensor, axis: ScaleAxis, activations: ActivationScale) -> Result<Self> {
        let shape = kernel.shape().to_vec();
        let (rows, width) = matrix_of(&shape, axis)?;
        let w = kernel.data();
        let mut values = vec![0i8; w.len()];
        let scales = match axis {
            ScaleAxis::Columns | ScaleAxis::Depthwise => {
                let scales: Vec<f32> = (0..width)
                    .map(|n| kernels::scale_of((0..rows).fold(0.0f32, |m, k| m.max(w[k * width + n].abs()))))
                    .collect();
                for (out, row) in values.chunks_exact_mut(width.max(1)).zip(w.chunks_exact(width.max(1))) {
                    for ((q, &v), &s) in out.iter_mut().zip(row).zip(&scales) {
                        kernels::quantize_row(&[v], s, std::slice::from_mut(q));
                    }
                }
                scales
            }
            ScaleAxis::Rows => {
                let mut scales = vec![0.0f32; rows];
                kernels::quantize_rows(w, rows, width, width, RowScaling::PerRow, &mut values, &mut scales);
                scales
            }
        };
        Self::from_parts(values, shape, scales, axis, activations)
    }

    /// A quantized kernel from stored parts (a model file): checks that the sizes agree and the
    /// scales are finite and positive, and packs the values for the products.
    pub fn from_parts(
        values: Vec<i8>,
        shape: Vec<usize>,
        scales: Vec<f32>,
        axis: ScaleAxis,
        activations: ActivationScale,
    ) -> Result<Self> {
        let (rows, width) = matrix_of(&shape, axis)?;
        let expected_scales = match axis {
            ScaleAxis::Columns | ScaleAxis::Depthwise => width,
            ScaleAxis::Rows => rows,
        };
        if values.len() != rows * width || scales.len() != expected_scales {
            return Err(Error::Usage(format!(
                "an int8 kernel of shape {shape:?} needs {} values and {expected_scales} scales, not {} and {}",
                rows * width,
                values.len(),
                scales.len()
            )));
        }
        if let Some(bad) = scales.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(Error::Usage(format!(
                "an int8 kernel of shape {shape:?} has the scale {bad}; scales are finite and positive"
            )));
        }
        if values.contains(&i8::MIN) {
            return Err(Error::Usage(format!(
                "an int8 kernel of shape {shape:?} holds -128; Keras's int8 range is [-127, 127]"
            )));
        }
        let packed = match axis {
            ScaleAxis::Columns => Some(PackedInt8::pack(&values, rows, width)),
            ScaleAxis::Rows | ScaleAxis::Depthwise => None,
        };
        // A Conv1D `(K, C, F)` (one window row) or Conv2D `(KH, KW, C, F)` kernel of channels
        // not in whole quads.
        let channels = shape.len().checked_sub(2).map_or(0, |axis| shape[axis]);
        let window_rows = if shape.len() == 4 { shape[0] } else { 1 };
        let row = rows / window_rows.max(1);
        let widened_depth = row.next_multiple_of(4).checked_mul(window_rows);
        let packed_wide = (axis == ScaleAxis::Columns
            && matches!(shape.len(), 3 | 4)
            && channels > 0
            && !channels.is_multiple_of(4)
            && widened_depth.is_some_and(|depth| depth <= kernels::INT8_MAX_DEPTH))
        .then(|| {
            let wide = kernels::widen_int8_kernel(&values, window_rows, width);
            Box::new(PackedInt8::pack(&wide, wide.len() / width.max(1), width))
        });
        Ok(QuantizedKernel {
            values,
            shape,
            scales,
            axis,
            activations,
            packed,
            packed_wide,
            input_scale: None,
            factors: Vec::new(),
            output_scale: None,
        })
    }

    /// The kernel of a calibrated layer: its input is quantized with the fixed `input_scale`
    /// (`127 / max|x|` over a calibration sample, values beyond the range clipped), and the
    /// exact sums are scaled back by one factor per output channel. An embedding table has no
    /// input to scale.
    pub fn with_input_scale(mut self, input_scale: f32) -> Result<Self> {
        if !(input_scale.is_finite() && input_scale > 0.0) {
            return Err(Error::Usage(format!(
                "an int8 kernel of shape {:?} has the input scale {input_scale}; it is finite and positive",
                self.shape
            )));
        }
        if self.axis == ScaleAxis::Rows {
            return Err(Error::Usage(
                "an embedding table's int8 values take no input scale (its input is indices)".into(),
            ));
        }
        self.factors = self.scales.iter().map(|&s| 1.0 / (input_scale * s)).collect();
        self.input_scale = Some(input_scale);
        Ok(self)
    }

    /// The kernel of a calibrated layer whose output goes only to the next int8 layer (through
    /// a max pooling at most): the output is written as int8 with `output_scale`, that layer's
    /// input scale, and never as `f32`. [`Model::quantize_with_options`] decides where this
    /// holds; a reader of the output other than those two would read an unwritten value.
    ///
    /// [`Model::quantize_with_options`]: crate::model::Model::quantize_with_options
    pub fn with_output_scale(mut self, output_scale: f32) -> Result<Self> {
        if !(output_scale.is_finite() && output_scale > 0.0) || self.input_scale.is_none() || self.packed.is_none() {
            return Err(Error::Usage(format!(
                "an int8 kernel of shape {:?} takes the output scale {output_scale} only when calibrated, of a \
                 convolution or Dense, and finite and positive",
                self.shape
            )));
        }
        self.output_scale = Some(output_scale);
        Ok(self)
    }

    /// The scale the layer's output is written with as int8, if it is (see
    /// [`QuantizedKernel::with_output_scale`]).
    pub fn output_scale(&self) -> Option<f32> {
        self.output_scale
    }

    /// A calibrated layer's fixed input scale (see [`QuantizedKernel::with_input_scale`]).
    pub fn input_scale(&self) -> Option<f32> {
        self.input_scale
    }

    /// How the activations entering the product are quantized, and how its sums are scaled
    /// back: with the fixed input scale and the per-channel factors when calibrated, with a
    /// scale measured per row or per batch (and Keras's division) otherwise.
    pub(crate) fn input_scaling(&self) -> (RowScaling, Option<&[f32]>) {
        match (self.input_scale, self.activations) {
            (Some(scale), _) => (RowScaling::Fixed(scale), Some(self.factors.as_slice())),
            (None, ActivationScale::PerRow) => (RowScaling::PerRow, None),
            (None, ActivationScale::PerTensor) => (RowScaling::PerTensor, None),
        }
    }

    /// The int8 values, in the f32 kernel's layout.
    pub fn values(&self) -> &[i8] {
        &self.values
    }

    /// The kernel's shape (that of the f32 kernel it replaces).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The scales: one per output channel, or per row of an embedding table.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// Along which axis the scales run.
    pub fn axis(&self) -> ScaleAxis {
        self.axis
    }

    /// How the activations entering the product are scaled.
    pub fn activations(&self) -> ActivationScale {
        self.activations
    }

    /// The kernel as `f32`, `q / scale` (what Keras's int8 `Embedding` computes per row).
    pub fn dequantized(&self) -> Tensor {
        let (_, width) = matrix_of(&self.shape, self.axis).expect("checked when made");
        let data = self
            .values
            .iter()
            .enumerate()
            .map(|(i, &q)| {
                let scale = match self.axis {
                    ScaleAxis::Columns | ScaleAxis::Depthwise => self.scales[i % width],
                    ScaleAxis::Rows => self.scales[i / width],
                };
                f32::from(q) / scale
            })
            .collect();
        Tensor::from_vec(self.shape.clone(), data).expect("same length as the shape")
    }

    /// A convolution kernel's values with each window row padded to whole quads, packed (see
    /// the field); `None` when the channels are in whole quads, or for another kernel.
    pub(crate) fn packed_wide(&self) -> Option<&PackedInt8> {
        self.packed_wide.as_deref()
    }

    /// The values packed for the products, or an error for a kernel that is not a product's.
    pub(crate) fn packed(&self) -> Result<&PackedInt8> {
        self.packed
            .as_ref()
            .ok_or_else(|| Error::Usage("an embedding table's int8 values are not a product's kernel".into()))
    }
}

/// The kernel as a `(rows, width)` matrix: everything before the last axis by the last axis
/// (a depthwise kernel's taps by its channels).
fn matrix_of(shape: &[usize], axis: ScaleAxis) -> Result<(usize, usize)> {
    let split = match axis {
        ScaleAxis::Depthwise if shape.len() != 4 => {
            return Err(Error::Usage(format!(
                "an int8 depthwise kernel is (KH, KW, C, M), not of shape {shape:?}"
            )));
        }
        ScaleAxis::Depthwise => 2,
        _ if shape.is_empty() => return Err(Error::Usage("an int8 kernel needs at least one axis".into())),
        _ => shape.len() - 1,
    };
    let too_large = || Error::Usage(format!("an int8 kernel of shape {shape:?} is too large"));
    let rows = crate::tensor::checked_numel(&shape[..split]).ok_or_else(too_large)?;
    let width = crate::tensor::checked_numel(&shape[split..]).ok_or_else(too_large)?;
    if axis != ScaleAxis::Rows && rows > kernels::INT8_MAX_DEPTH {
        return Err(Error::Usage(format!(
            "an int8 kernel of shape {shape:?} sums {rows} products per output, over the {} whose exact sum fits an i32",
            kernels::INT8_MAX_DEPTH
        )));
    }
    Ok((rows, width))
}

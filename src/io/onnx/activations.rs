//! ONNX's elementwise activations (and the softmaxes over one axis) as strata layers: the
//! rectifiers as Keras's `ReLU` layer, `PRelu` as `PReLU`, the others as an `Activation` layer
//! under its Keras name.

use super::convert::{Computed, Converter, Node, Tensor};
use super::ops::{channel_values, join};
use serde_json::json;

/// SELU's constants as ONNX's defaults write them (Keras's, to float precision).
const SELU_ALPHA: f32 = 1.673_263_2;
const SELU_GAMMA: f32 = 1.050_701;

impl Converter {
    /// `Relu`, `Clip(0, max)`, `LeakyRelu`, `ThresholdedRelu`: Keras's `ReLU` layer.
    pub(super) fn relu(&mut self, node: &Node) -> Result<Tensor, String> {
        let x = self.computed(node, 0)?;
        let config = match node.proto.op_type.as_str() {
            "LeakyRelu" => json!({"negative_slope": node.float("alpha", 0.01)}),
            "ThresholdedRelu" => json!({"threshold": node.float("alpha", 1.0)}),
            "Clip" => self.clip_config(node)?,
            _ => json!({}),
        };
        let mut y = self.add_same_layout(node.proto, "ReLU", config, &x, vec![])?;
        y.non_negative = node.proto.op_type != "LeakyRelu";
        Ok(Tensor::Computed(y))
    }

    /// `Clip(0, max)` as `ReLU(max_value)`; other lower bounds are refused.
    fn clip_config(&self, node: &Node) -> Result<serde_json::Value, String> {
        let bound = |k: usize, name: &str, default: f32| -> Result<f32, String> {
            match self.optional_constant(node, k, name)? {
                Some(c) if c.len() == 1 => Ok(c.floats()[0]),
                Some(_) => Err(format!("its {name} must be one number")),
                None => Ok(node.float(name, default)),
            }
        };
        let (low, high) = (bound(1, "min", f32::MIN)?, bound(2, "max", f32::MAX)?);
        if low != 0.0 {
            return Err(format!(
                "Clip from {low} is not supported: strata maps Clip(0, max) to ReLU(max_value)"
            ));
        }
        Ok(match high >= f32::MAX {
            true => json!({}),
            false => json!({ "max_value": high }),
        })
    }

    /// `Sigmoid`, `Tanh`, `HardSigmoid` (Keras 3's, α = 1/6, β = 1/2), `HardSwish`, `Elu`,
    /// `Selu` (Keras's constants), `Softplus`, `Softsign`, `Exp`, `Mish`, and `Softmax` and
    /// `LogSoftmax` on strata's last axis: an `Activation` layer.
    pub(super) fn activation(&mut self, node: &Node) -> Result<Tensor, String> {
        let x = self.computed(node, 0)?;
        let op = node.proto.op_type.as_str();
        let name = match op {
            "Sigmoid" => "sigmoid",
            "Tanh" => "tanh",
            "HardSwish" => "hard_swish",
            "Softplus" => "softplus",
            "Softsign" => "softsign",
            "Exp" => "exponential",
            "Mish" => "mish",
            "Elu" => return self.elu(node, x),
            "Selu" => {
                let (alpha, gamma) = (node.float("alpha", SELU_ALPHA), node.float("gamma", SELU_GAMMA));
                if (alpha - SELU_ALPHA).abs() > 1e-6 || (gamma - SELU_GAMMA).abs() > 1e-6 {
                    return Err(format!(
                        "Selu with alpha {alpha}, gamma {gamma} is not supported (strata's selu has Keras's constants, \
                         alpha {SELU_ALPHA}, gamma {SELU_GAMMA})"
                    ));
                }
                "selu"
            }
            "HardSigmoid" => {
                let (alpha, beta) = (node.float("alpha", 0.2), node.float("beta", 0.5));
                if (alpha - 1.0 / 6.0).abs() > 1e-6 || beta != 0.5 {
                    return Err(format!(
                        "HardSigmoid with alpha {alpha}, beta {beta} is not supported (strata's hard_sigmoid is alpha 1/6, beta 1/2)"
                    ));
                }
                "hard_sigmoid"
            }
            "LogSoftmax" => {
                check_last_axis(node, &x)?;
                "log_softmax"
            }
            _ => {
                check_last_axis(node, &x)?;
                "softmax"
            }
        };
        let mut y = self.add_same_layout(node.proto, "Activation", json!({ "activation": name }), &x, vec![])?;
        y.non_negative = matches!(
            name,
            "sigmoid" | "hard_sigmoid" | "softmax" | "softplus" | "exponential"
        );
        Ok(Tensor::Computed(y))
    }

    /// `Elu(alpha)`: Keras's `ELU` layer.
    fn elu(&mut self, node: &Node, x: Computed) -> Result<Tensor, String> {
        let config = json!({ "alpha": node.float("alpha", 1.0) });
        Ok(Tensor::Computed(self.add_same_layout(
            node.proto,
            "ELU",
            config,
            &x,
            vec![],
        )?))
    }

    /// `PRelu` with one slope, or one per channel of strata's last axis: Keras's `PReLU`, its
    /// slope shared over every other axis.
    pub(super) fn prelu(&mut self, node: &Node) -> Result<Tensor, String> {
        let x = self.computed(node, 0)?;
        let slope = self.constant(node, 1, "slope")?;
        let slopes = channel_values(&slope, &x)?;
        let rank = x.shape.len();
        let shared: Vec<usize> = match slopes.len() {
            1 => (1..=rank).collect(),
            _ => (1..rank).collect(),
        };
        let config = json!({ "shared_axes": shared });
        Ok(Tensor::Computed(self.add_same_layout(
            node.proto,
            "PReLU",
            config,
            &x,
            vec![slopes],
        )?))
    }

    /// `Gelu` (opset 20, or the `Erf` and `Tanh` patterns of older opsets fused into one):
    /// Keras's `gelu`, or `gelu_approximate` for `approximate = "tanh"`.
    pub(super) fn gelu(&mut self, node: &Node) -> Result<Tensor, String> {
        let x = self.computed(node, 0)?;
        let activation = match node.string("approximate").as_deref() {
            None | Some("none") => "gelu",
            Some("tanh") => "gelu_approximate",
            Some(other) => {
                return Err(format!(
                    "Gelu with approximate = {other} is not supported (\"none\" and \"tanh\" are)"
                ));
            }
        };
        let config = json!({ "activation": activation });
        Ok(Tensor::Computed(self.add_same_layout(
            node.proto,
            "Activation",
            config,
            &x,
            vec![],
        )?))
    }
}

/// Requires a `Softmax` or `LogSoftmax` node's axis to be strata's last axis of `x` (before
/// opset 13, the axes from `axis` on, which must then be that axis and ones).
fn check_last_axis(node: &Node, x: &Computed) -> Result<(), String> {
    let rank = x.shape.len() as i64 + 1;
    let default = if node.opset >= 13 { -1 } else { 1 };
    let axis = node.int("axis", default);
    let axis = if axis < 0 { axis + rank } else { axis };
    let last_of_strata = x.axes.last().map(|&a| a as i64 + 1) == Some(axis);
    let later = x.shape.get((axis.max(1) as usize).min(x.shape.len())..).unwrap_or(&[]);
    let old_form_ok = node.opset >= 13 || later.iter().all(|&d| d == 1);
    if !(last_of_strata || x.shape.len() == 1 && axis == 1) || !old_form_ok {
        return Err(format!(
            "{} over axis {axis} of ONNX shape (N, {}) is not strata's last axis",
            node.proto.op_type,
            join(&x.shape)
        ));
    }
    Ok(())
}

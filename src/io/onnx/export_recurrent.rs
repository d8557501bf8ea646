//! `SimpleRNN`, `LSTM` and `GRU` as ONNX's `RNN`, `LSTM` and `GRU` operators.
//!
//! Keras keeps `kernel (features, gates·units)` with the gates in the order i, f, c, o (LSTM)
//! or z, r, h (GRU); ONNX wants `W (1, gates·units, features)` in the order i, o, f, c (LSTM)
//! or z, r, h (GRU), the same for the recurrent kernel, and one bias for the input and one for
//! the recurrent product. Keras's GRU (`reset_after=True`) is ONNX's `linear_before_reset=1`.
//! ONNX runs time-major, `(T, N, F)`; `go_backwards` reverses the steps before the operator,
//! which yields Keras's output order (the reversed one) too. `Bidirectional` is two operators,
//! its backward half ONNX's `direction="reverse"`, whose outputs line up with the input steps
//! as Keras's do.

use super::builder::int;
use super::export_layers::{add_output, floats, strings, text, transposed_blocks};
use super::layers::{Emitter, weight};
use crate::error::{Error, Result};
use crate::layers::Layer;
use serde_json::Value;

/// How one run of a recurrent operator reads the steps.
#[derive(Clone, Copy, PartialEq)]
enum Direction {
    /// First to last.
    Forward,
    /// Keras's `go_backwards`: last to first, outputs in that order (the steps are reversed
    /// before the operator).
    Backwards,
    /// Last to first with each output at its input step's position, as a `Bidirectional`'s
    /// backward half: ONNX's `direction="reverse"`.
    Aligned,
}

impl Emitter<'_> {
    /// The operator of a recurrent layer on `x (N, T, F)`: the last output `(N, units)`, or
    /// with `return_sequences` every step's `(N, T, units)`.
    pub(super) fn recurrent(&mut self, layer: &dyn Layer, config: &Value, x: &str, shape: &[usize]) -> Result<String> {
        let direction = match config["go_backwards"].as_bool().unwrap_or(false) {
            true => Direction::Backwards,
            false => Direction::Forward,
        };
        let input = (x, shape[0]);
        self.recurrent_run(layer, (layer.class_name(), config), layer.name(), 0, direction, input)
    }

    /// Bidirectional: the wrapped layer's operator forwards (its weights first) and backwards
    /// (its copy's weights next), merged as `merge_mode` says.
    pub(super) fn bidirectional(
        &mut self,
        layer: &dyn Layer,
        config: &Value,
        x: &str,
        shape: &[usize],
    ) -> Result<String> {
        let name = layer.name();
        let inner = &config["layer"]["config"];
        let class = config["layer"]["class_name"].as_str().unwrap_or("");
        let weights = 2 + inner["use_bias"].as_bool().unwrap_or(true) as usize;
        let (forwards, backwards) = match inner["go_backwards"].as_bool().unwrap_or(false) {
            false => (Direction::Forward, Direction::Aligned),
            true => (Direction::Backwards, Direction::Forward),
        };
        let forward_name = format!("{name}/forward");
        let backward_name = format!("{name}/backward");
        let input = (x, shape[0]);
        let forward = self.recurrent_run(layer, (class, inner), &forward_name, 0, forwards, input)?;
        let backward = self.recurrent_run(layer, (class, inner), &backward_name, weights, backwards, input)?;
        let both = [forward.as_str(), backward.as_str()];
        Ok(match config["merge_mode"].as_str().unwrap_or("concat") {
            "concat" => self.builder.op(name, "Concat", &both, vec![int("axis", -1)]),
            "sum" => self.builder.op(name, "Add", &both, vec![]),
            "mul" => self.builder.op(name, "Mul", &both, vec![]),
            "ave" => {
                let sum = self.builder.op(name, "Add", &both, vec![]);
                let half = self.builder.floats(format!("{name}/half"), &[], &[0.5]);
                self.builder.op(name, "Mul", &[&sum, &half], vec![])
            }
            other => {
                return Err(Error::Usage(format!(
                    "layer '{name}' (Bidirectional): merge_mode '{other}' cannot be exported to ONNX"
                )));
            }
        })
    }

    /// One recurrent operator of class `class` with settings `config`, reading `layer`'s
    /// weights from number `first` on, its nodes and weights named after `owner`, on `x` of
    /// `steps` steps (one operator per step when the input is masked).
    fn recurrent_run(
        &mut self,
        layer: &dyn Layer,
        (class, config): (&str, &Value),
        owner: &str,
        first: usize,
        direction: Direction,
        (x, steps): (&str, usize),
    ) -> Result<String> {
        let name = owner;
        let (op, order): (&str, &[usize]) = match class {
            "LSTM" => ("LSTM", &[0, 3, 1, 2]),
            "GRU" => ("GRU", &[0, 1, 2]),
            _ => ("RNN", &[0]),
        };
        let units = config["units"].as_u64().unwrap_or(0) as usize;
        let gates = order.len();
        let (kshape, kernel) = weight(self.params, layer, first)?;
        let features = kshape[0];
        let w = transposed_blocks(kernel, features, units, order);
        let w = self
            .builder
            .floats(format!("{name}/W"), &[1, gates * units, features], &w);
        let (_, recurrent) = weight(self.params, layer, first + 1)?;
        let r = transposed_blocks(recurrent, units, units, order);
        let r = self.builder.floats(format!("{name}/R"), &[1, gates * units, units], &r);
        let mut operands = vec![w, r];
        if config["use_bias"].as_bool().unwrap_or(true) {
            let (_, bias) = weight(self.params, layer, first + 2)?;
            let width = gates * units;
            let mut b = vec![0.0; 2 * width];
            // The GRU's bias is (2, 3·units): input row, recurrent row; the others have one.
            for (part, source) in bias.chunks(width).enumerate().take(2) {
                for (to, &from) in order.iter().enumerate() {
                    b[part * width + to * units..][..units].copy_from_slice(&source[from * units..][..units]);
                }
            }
            operands.push(self.builder.floats(format!("{name}/B"), &[1, 2 * width], &b));
        }
        let mut attributes = vec![int("hidden_size", units as i64)];
        attributes.extend(activations(layer, class, config)?);
        if op == "GRU" {
            attributes.push(int("linear_before_reset", 1));
        }
        let sequences = config["return_sequences"].as_bool().unwrap_or(false);
        if let Some(mask) = self.input_mask(0) {
            if steps == 0 {
                return Err(Error::Usage(format!(
                    "layer '{name}' ({class}) reads a masked sequence of no steps"
                )));
            }
            let run = MaskedRun {
                op,
                operands: &operands,
                attributes: &attributes,
                direction,
                sequences,
            };
            return Ok(self.masked_run(name, &run, x, &mask, steps));
        }
        if direction == Direction::Aligned {
            attributes.push(text("direction", "reverse"));
        }
        let mut steps = x.to_string();
        if direction == Direction::Backwards {
            let starts = self.builder.int64s(format!("{name}/reverse_starts"), &[-1]);
            let ends = self.builder.int64s(format!("{name}/reverse_ends"), &[i64::MIN]);
            let axes = self.builder.int64s(format!("{name}/reverse_axes"), &[1]);
            let step = self.builder.int64s(format!("{name}/reverse_steps"), &[-1]);
            steps = self
                .builder
                .op(name, "Slice", &[&steps, &starts, &ends, &axes, &step], vec![]);
        }
        let time_major = self.builder.transpose(name, &steps, &[1, 0, 2]);
        let mut all = vec![time_major.as_str()];
        all.extend(operands.iter().map(String::as_str));
        let sequence = self.builder.op(name, op, &all, attributes);
        let last = add_output(self.builder, "_h");
        Ok(match sequences {
            true => {
                // Y is (T, 1, N, units): drop the direction axis, then batch-major again.
                let axis = self.builder.int64s(format!("{name}/direction_axis"), &[1]);
                let squeezed = self.builder.op(name, "Squeeze", &[&sequence, &axis], vec![]);
                self.builder.transpose(name, &squeezed, &[1, 0, 2])
            }
            false => {
                // Y_h is (1, N, units).
                let axis = self.builder.int64s(format!("{name}/state_axis"), &[0]);
                self.builder.op(name, "Squeeze", &[&last, &axis], vec![])
            }
        })
    }
}

/// What one masked run of a recurrent operator writes, besides its input.
struct MaskedRun<'a> {
    /// `RNN`, `LSTM` or `GRU`.
    op: &'a str,
    /// `W`, `R` and, with a bias, `B`.
    operands: &'a [String],
    attributes: &'a [super::proto::AttributeProto],
    direction: Direction,
    /// Every step's output, not the last one only.
    sequences: bool,
}

impl Emitter<'_> {
    /// A recurrent layer over masked steps, one operator per step: a masked step keeps the
    /// state (and repeats the output) of the step before, as strata does (zeros before the
    /// first). `x (N, T, F)`, `mask (N, T)`.
    fn masked_run(&mut self, name: &str, run: &MaskedRun, x: &str, mask: &str, steps: usize) -> String {
        let (xs, masks) = self.split_steps(name, x, mask, steps);
        let order: Vec<usize> = match run.direction {
            Direction::Forward => (0..steps).collect(),
            Direction::Backwards | Direction::Aligned => (0..steps).rev().collect(),
        };
        let zero = self.builder.floats(format!("{name}/zero_state"), &[], &[0.0]);
        let lstm = run.op == "LSTM";
        // The state after each step taken: h, and the LSTM's c.
        let mut state: Option<(String, Option<String>)> = None;
        let mut outputs: Vec<(usize, String)> = Vec::with_capacity(steps);
        for &t in &order {
            let mut inputs: Vec<&str> = vec![xs[t].as_str()];
            inputs.extend(run.operands.iter().map(String::as_str));
            if let Some((h, c)) = &state {
                inputs.resize(4, "");
                inputs.push("");
                inputs.push(h);
                if let Some(c) = c {
                    inputs.push(c);
                }
            }
            self.builder.op(name, run.op, &inputs, run.attributes.to_vec());
            let new_h = super::export_layers::add_output(self.builder, "_h");
            let new_c = lstm.then(|| super::export_layers::add_output(self.builder, "_c"));
            let keep = |previous: Option<&String>| previous.cloned().unwrap_or_else(|| zero.clone());
            let h = keep(state.as_ref().map(|(h, _)| h));
            let h = self.builder.op(name, "Where", &[&masks[t], &new_h, &h], vec![]);
            let c = match new_c {
                Some(new_c) => {
                    let c = keep(state.as_ref().and_then(|(_, c)| c.as_ref()));
                    Some(self.builder.op(name, "Where", &[&masks[t], &new_c, &c], vec![]))
                }
                None => None,
            };
            outputs.push((t, h.clone()));
            state = Some((h, c));
        }
        if !run.sequences {
            let (_, last) = outputs.last().expect("at least one step");
            let axis = self.builder.int64s(format!("{name}/state_axis"), &[0]);
            return self.builder.op(name, "Squeeze", &[last, &axis], vec![]);
        }
        // Keras's `go_backwards` gives the outputs in the order taken; the others by step.
        if run.direction != Direction::Backwards {
            outputs.sort_by_key(|&(t, _)| t);
        }
        let outputs: Vec<&str> = outputs.iter().map(|(_, h)| h.as_str()).collect();
        let sequence = self.builder.op(name, "Concat", &outputs, vec![int("axis", 0)]);
        self.builder.transpose(name, &sequence, &[1, 0, 2])
    }
}

/// The operator's `activations` (gates first: ONNX's f, then g, and the LSTM's h) with the
/// `activation_alpha`/`activation_beta` of those that take them, in their order.
fn activations(layer: &dyn Layer, class: &str, config: &Value) -> Result<Vec<super::proto::AttributeProto>> {
    let activation = config["activation"].as_str().unwrap_or("tanh");
    let gate = config["recurrent_activation"].as_str().unwrap_or("sigmoid");
    let names: Vec<&str> = match class {
        "LSTM" => vec![gate, activation, activation],
        "GRU" => vec![gate, activation],
        _ => vec![activation],
    };
    let (mut onnx, mut alpha, mut beta) = (Vec::new(), Vec::new(), Vec::new());
    for name in names {
        let (function, parameters) = match name {
            "tanh" => ("Tanh", None),
            "sigmoid" => ("Sigmoid", None),
            "relu" => ("Relu", None),
            // Keras 3's hard sigmoid, relu6(x + 3) / 6.
            "hard_sigmoid" => ("HardSigmoid", Some((1.0 / 6.0, 0.5))),
            "linear" => ("Affine", Some((1.0, 0.0))),
            other => {
                return Err(Error::Usage(format!(
                    "layer '{}' ({}): activation '{other}' cannot be exported to ONNX",
                    layer.name(),
                    layer.class_name()
                )));
            }
        };
        onnx.push(function);
        if let Some((a, b)) = parameters {
            alpha.push(a);
            beta.push(b);
        }
    }
    let mut attributes = vec![strings("activations", &onnx)];
    if !alpha.is_empty() {
        attributes.push(floats("activation_alpha", &alpha));
        attributes.push(floats("activation_beta", &beta));
    }
    Ok(attributes)
}

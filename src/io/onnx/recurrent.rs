//! ONNX's recurrent operators (`LSTM`, `GRU`, `RNN`, as PyTorch's `nn.LSTM`, `nn.GRU` and
//! `nn.RNN` export them) as Keras's `LSTM`, `GRU` and `SimpleRNN` (`Bidirectional` for both
//! directions), and the time-major sequences around them.
//!
//! ONNX's recurrent operators read and write sequences time-major, `(steps, N, features)`;
//! strata's layers hold them batch-first. The `Transpose` into time-major order, the operator's
//! `Y` `(steps, directions, N, width)`, the `Transpose`/`Squeeze`/`Reshape` that merge its
//! directions and the `Transpose` back are followed as a [`TimeMajor`] record of strata's
//! batch-first tensor, as attention heads are (`heads.rs`); a step picked from it (`y[-1]`) is
//! a `Cropping1D`. The final states `Y_h` `(directions, N, width)` are a [`Tensor::States`]
//! list that `Gather`/`Squeeze` pick from (one direction: the last step of `Y`, or the layer's
//! only output when `Y` is not read; both directions of a bidirectional layer whose `Y` is
//! not read: its output, the two joined, which `Concat` of the two picked gives back).

use super::convert::{Computed, Converter, Node, State, Tensor, TimeMajor};
use super::tensors::{BATCH, Constant, Values};
use serde_json::json;

/// How one of ONNX's recurrent operators maps to Keras: the class, and where each Keras gate's
/// block sits in ONNX's weights (LSTM: Keras's i, f, c, o are ONNX's blocks 0, 2, 3, 1).
fn keras_form(op: &str) -> (&'static str, &'static [usize]) {
    match op {
        "LSTM" => ("LSTM", &[0, 2, 3, 1]),
        "GRU" => ("GRU", &[0, 1, 2]),
        _ => ("SimpleRNN", &[0]),
    }
}

impl Converter {
    /// Handles `node` when it reads a time-major sequence or final states; `None` otherwise.
    pub(super) fn recurrent_step(&mut self, node: &Node) -> Result<Option<Tensor>, String> {
        let op = node.proto.op_type.as_str();
        let first = node.input(0).and_then(|name| self.tensors.get(name)).cloned();
        match (op, first) {
            ("Transpose", Some(Tensor::Computed(x))) if node.ints("perm").as_deref() == Some(&[1, 0, 2]) => {
                let sequence = x.shape.len() == 2 && x.axes == [0, 1] && x.order.is_none();
                Ok(sequence.then_some({
                    Tensor::TimeMajor(TimeMajor {
                        x,
                        directions: None,
                        batch_first_of_two: false,
                    })
                }))
            }
            ("Transpose", Some(Tensor::TimeMajor(t))) => self.transpose_time_major(node, t).map(Some),
            ("Reshape", Some(Tensor::TimeMajor(t))) if t.directions.is_none() => {
                self.reshape_time_major(node, t).map(Some)
            }
            ("Reshape", Some(Tensor::StepsFlat(t))) => self.unflatten_steps(node, t).map(Some),
            (_, Some(Tensor::Packed(packed))) => self.packed_step(node, packed).map(Some),
            ("Squeeze" | "Reshape", Some(Tensor::TimeMajor(t))) => self.merge_directions(node, t).map(Some),
            ("Gather", Some(Tensor::TimeMajor(t))) if t.directions.is_none() && node.int("axis", 0) == 0 => {
                let index = self.constant(node, 1, "index")?;
                self.step_of(node, t.x, &index).map(Some)
            }
            ("ReduceMean" | "ReduceMax" | "ReduceSum", Some(Tensor::TimeMajor(t))) if t.directions.is_none() => {
                match self.ints_input_or_attribute(node, 1, "axes")?.as_deref() {
                    // Kept, the steps axis of 1 stays in front of the batch: time-major still.
                    Some([0]) | Some([-3]) => match self.reduce_steps(node, t.x)? {
                        Tensor::Computed(x) if x.shape.len() == 2 => Ok(Some(Tensor::TimeMajor(TimeMajor { x, ..t }))),
                        reduced => Ok(Some(reduced)),
                    },
                    axes => Err(format!(
                        "reduces axes {axes:?} of a time-major sequence of ONNX shape {:?}: strata reduces its steps \
                         (axis 0) only",
                        t.onnx_shape()
                    )),
                }
            }
            ("Gather" | "Squeeze", Some(Tensor::States(states))) => self.pick_state(node, &states).map(Some),
            ("Concat", Some(Tensor::States(_))) => self.join_states(node).map(Some),
            (_, Some(Tensor::States(states))) if matches!(states.as_slice(), [State::Joined { picked: true, .. }]) => {
                self.select_direction(node, &states[0])?;
                Ok(None)
            }
            (_, Some(Tensor::TimeMajor(_) | Tensor::States(_) | Tensor::StepsFlat(_))) => Err(format!(
                "reads '{}', a sequence held time-major (steps, N, features) or a recurrent layer's final states; \
                 strata reads those in recurrent operators, per-step operators (Linear, activations, LayerNorm, \
                 elementwise arithmetic), attention, Transpose back to (N, steps, features), Gather of one step, \
                 and Gather/Squeeze/Concat of the states",
                node.input(0).unwrap_or_default()
            )),
            _ => Ok(None),
        }
    }

    /// `Transpose` [1, 0, 2] back to batch-first, or [0, 2, 1, 3] swapping `Y`'s direction and
    /// batch axes.
    fn transpose_time_major(&mut self, node: &Node, mut t: TimeMajor) -> Result<Tensor, String> {
        match (node.ints("perm").as_deref(), t.directions) {
            (Some([1, 0, 2]), None) => Ok(Tensor::Computed(Computed { layer: None, ..t.x })),
            (Some([0, 2, 1, 3]), Some(_)) => {
                t.batch_first_of_two = !t.batch_first_of_two;
                Ok(Tensor::TimeMajor(t))
            }
            (perm, _) => Err(format!(
                "perm {perm:?} on a time-major sequence of ONNX shape {:?}: strata reads [1, 0, 2] back to \
                 (N, steps, features) and [0, 2, 1, 3] of a recurrent output's directions",
                t.onnx_shape()
            )),
        }
    }

    /// `Squeeze` of a one-direction `Y`'s direction axis, or `Reshape` of `(steps, N,
    /// directions, width)` to `(steps, N, directions · width)`: the plain time-major sequence.
    fn merge_directions(&mut self, node: &Node, t: TimeMajor) -> Result<Tensor, String> {
        let shape = t.onnx_shape();
        let merged = TimeMajor {
            directions: None,
            ..t.clone()
        };
        let fits = match (node.proto.op_type.as_str(), t.directions) {
            ("Squeeze", Some(1)) => {
                let axes = self.ints_input_or_attribute(node, 1, "axes")?;
                let axis = if t.batch_first_of_two { 2 } else { 1 };
                matches!(axes.as_deref(), Some([a]) if *a == axis || *a == axis - 4)
            }
            ("Reshape", Some(d)) if t.batch_first_of_two || d == 1 => {
                // The batch stand-in is welcome here: it stays where the batch is.
                let target = match &self.constant(node, 1, "shape")?.values {
                    Values::Int(v) => v.clone(),
                    Values::Float(_) => return Err("Reshape's shape must be an integer tensor".into()),
                };
                let features = t.x.shape[1] as i64;
                // `(steps, N, heads, width)` (an attention's output) flattened with its batch,
                // `(steps·N, heads·width)`, for the output projection.
                if t.batch_first_of_two
                    && let [rows, f] = target.as_slice()
                    && *f == features
                    && self.is_batch_times(*rows, t.x.shape[0])
                {
                    return Ok(Tensor::StepsFlat(merged));
                }
                // A 0 copies the input's size there: the batch's only when it is axis 1.
                let batch = |b: i64| {
                    matches!(b, BATCH | -1)
                        || b == 0 && t.batch_first_of_two
                        || self.static_batch.is_some_and(|n| n as i64 == b)
                };
                matches!(target.as_slice(), [s, b, f] if (*s == shape[0] || *s == 0)
                    && batch(*b) && (*f == features || *f == -1 && *b != -1))
            }
            _ => false,
        };
        match fits {
            true => Ok(Tensor::TimeMajor(merged)),
            false => Err(format!(
                "reshapes a recurrent output of ONNX shape {shape:?} other than by merging its directions into \
                 (steps, N, directions · width)"
            )),
        }
    }

    /// `Gather(Y_h, k)` along the directions (or `Squeeze` of a one-direction `Y_h`): that
    /// direction's final state.
    fn pick_state(&mut self, node: &Node, states: &[State]) -> Result<Tensor, String> {
        let count = states.len() as i64;
        let (index, scalar) = match node.proto.op_type.as_str() {
            "Squeeze" => {
                let axes = self.ints_input_or_attribute(node, 1, "axes")?;
                match (count, axes.as_deref()) {
                    (1, Some([0]) | Some([-3])) => (0, true),
                    _ => {
                        return Err(format!(
                            "squeezes final states of {count} directions other than on axis 0"
                        ));
                    }
                }
            }
            _ => {
                let index = self.constant(node, 1, "index")?;
                match (node.int("axis", 0), index.ints("Gather's indices")?.as_slice()) {
                    (0 | -3, [k]) => (*k, index.shape.is_empty()),
                    (axis, picks) => {
                        return Err(format!(
                            "gathers {picks:?} along axis {axis} of final states: strata picks one direction (axis 0)"
                        ));
                    }
                }
            }
        };
        let k = if index < 0 { index + count } else { index };
        let state = usize::try_from(k)
            .ok()
            .and_then(|k| states.get(k))
            .ok_or_else(|| format!("index {index} is out of range for {count} final states"))?;
        match (state, scalar) {
            (_, false) => Ok(Tensor::States(vec![state.clone()])),
            (State::Ready(x), true) => Ok(Tensor::Computed(Computed {
                layer: None,
                ..x.clone()
            })),
            (
                State::Joined {
                    all,
                    direction,
                    directions,
                    ..
                },
                true,
            ) => Ok(Tensor::States(vec![State::Joined {
                all: all.clone(),
                direction: *direction,
                directions: *directions,
                picked: true,
            }])),
            (State::Missing, true) => Err(
                "picks a final state of a bidirectional operator whose outputs Y are also read; strata gives a \
                 bidirectional layer's final states when its outputs are not read"
                    .into(),
            ),
        }
    }

    /// One direction of a bidirectional layer's final states read alone (`h[-1]`, the
    /// backward direction's): its part of the joined states, a frozen selecting `Dense`
    /// (`selection.rs`), put in place of the node's first input, which then converts as usual.
    fn select_direction(&mut self, node: &Node, state: &State) -> Result<(), String> {
        let State::Joined {
            all,
            direction,
            directions,
            ..
        } = state
        else {
            return Err("reads a final state strata does not hold".into());
        };
        let width = all.shape[0] / directions;
        let sources: Vec<usize> = (direction * width..(direction + 1) * width).collect();
        let part = self.select_last(node, "_direction", all, &sources)?;
        let name = node.input(0).unwrap_or_default().to_string();
        self.tensors.insert(name, Tensor::Computed(part));
        Ok(())
    }

    /// `Concat` of final states along their first axis (PyTorch's stacked layers): one list;
    /// or of a bidirectional layer's picked states in order along the last: its joined states.
    fn join_states(&mut self, node: &Node) -> Result<Tensor, String> {
        let axis = node.int("axis", 0);
        let mut all = Vec::new();
        for k in 0..node.proto.input.len() {
            match self.input(node, k)? {
                Tensor::States(states) => all.extend(states.iter().cloned()),
                _ => return Err("joins final states with something else".into()),
            }
        }
        let picked = |s: &State| matches!(s, State::Joined { picked: true, .. });
        if matches!(axis, 0 | -3) && !all.iter().any(picked) {
            return Ok(Tensor::States(all));
        }
        // Every direction of one bidirectional layer, in order, along the features.
        let joined = match all.first() {
            Some(State::Joined {
                all: whole, directions, ..
            }) if matches!(axis, 1 | -1) && all.len() == *directions => {
                let in_order = all.iter().enumerate().all(|(k, s)| {
                    matches!(s, State::Joined { all: a, direction, picked: true, .. }
                        if *direction == k && a.source == whole.source)
                });
                in_order.then(|| whole.clone())
            }
            _ => None,
        };
        match joined {
            Some(whole) => Ok(Tensor::Computed(Computed { layer: None, ..whole })),
            None => Err(format!(
                "joins final states along axis {axis}: strata reads them joined along axis 0 (stacked layers), or a \
                 bidirectional layer's directions picked one by one and joined in order along the features"
            )),
        }
    }

    /// `LSTM`, `GRU` (`linear_before_reset = 1`, PyTorch's) and `RNN` on a time-major sequence,
    /// starting from zero states: `Y` and `Y_h` (`Y_c`, the cell state, is refused when read).
    pub(super) fn recurrent(&mut self, node: &Node) -> Result<Vec<Tensor>, String> {
        let op = node.proto.op_type.as_str();
        let Tensor::TimeMajor(TimeMajor {
            x, directions: None, ..
        }) = self.input(node, 0)?.clone()
        else {
            return Err(format!(
                "reads '{}', which is not a sequence held time-major (steps, N, features): strata reads the \
                 Transpose of a batch-first sequence or an earlier recurrent output",
                node.input(0).unwrap_or_default()
            ));
        };
        self.check_recurrent_settings(node)?;
        let direction = node.string("direction").unwrap_or_else(|| "forward".into());
        let directions = if direction == "bidirectional" { 2 } else { 1 };
        let read = |k: usize| {
            node.proto
                .output
                .get(k)
                .is_some_and(|name| self.readers.get(name).copied().unwrap_or(0) > 0)
        };
        let (sequence_read, states_read) = (read(0), read(1));
        if read(2) {
            return Err("reads the LSTM's final cell state Y_c, which strata's imported LSTM does not give".into());
        }
        if direction == "reverse" && sequence_read {
            return Err("reads the outputs Y of a reverse operator alone; strata reads its final state only".into());
        }
        let hidden = usize::try_from(node.int("hidden_size", 0)).map_err(|_| "hidden_size is negative")?;
        let (class, _) = keras_form(op);
        let mut config = json!({
            "units": hidden,
            "return_sequences": sequence_read,
            "go_backwards": direction == "reverse",
        });
        let (activation, gate) = self.recurrent_activations(node, directions)?;
        config["activation"] = json!(activation);
        if op != "RNN" {
            config["recurrent_activation"] = json!(gate);
        }
        let mut weights = Vec::new();
        for d in 0..directions {
            weights.extend(self.keras_weights(node, d, x.shape[1], hidden)?);
        }
        let (class, config) = match directions {
            2 => (
                "Bidirectional",
                json!({ "layer": { "class_name": class, "config": config } }),
            ),
            _ => (class, config),
        };
        let (source, shape, layer) = self.add_layer(node.proto, "", class, config, &[&x], weights)?;
        let y = Computed {
            source,
            shape: shape.clone(),
            axes: (0..shape.len()).collect(),
            order: None,
            non_negative: false,
            layer: Some(layer),
        };
        let states = match (sequence_read, directions) {
            (false, 1) => vec![State::Ready(y.clone())],
            (false, _) => (0..directions)
                .map(|direction| State::Joined {
                    all: y.clone(),
                    direction,
                    directions,
                    picked: false,
                })
                .collect(),
            (true, 1) if states_read => {
                let last = Constant::int(vec![], vec![-1]);
                match self.step_of(node, y.clone(), &last)? {
                    Tensor::Computed(state) => vec![State::Ready(state)],
                    _ => unreachable!("a step of a sequence is computed"),
                }
            }
            (true, _) => vec![State::Missing; directions],
        };
        let sequence = match sequence_read {
            true => Tensor::TimeMajor(TimeMajor {
                x: y,
                directions: Some(directions),
                batch_first_of_two: false,
            }),
            false => Tensor::States(vec![State::Missing]),
        };
        Ok(vec![sequence, Tensor::States(states)])
    }

    /// Refuses what strata's layers do not compute: sequence lengths, peepholes, initial states
    /// other than zeros, clipping, a coupled input and forget gate, batch-first `layout`.
    fn check_recurrent_settings(&self, node: &Node) -> Result<(), String> {
        let named = [(4, "sequence_lens"), (7, "the peephole weights P")];
        for (k, what) in named {
            if node.input(k).is_some() {
                return Err(format!("gives {what}, which strata's recurrent layers do not take"));
            }
        }
        for (k, what) in [(5, "initial_h"), (6, "initial_c")] {
            if node.input(k).is_some() {
                let c = self.constant(node, k, what)?;
                if c.floats().iter().any(|&v| v != 0.0) {
                    return Err(format!(
                        "starts from a {what} other than zeros; strata's layers start from zeros"
                    ));
                }
            }
        }
        if node.attribute("clip").is_some() || node.int("input_forget", 0) != 0 || node.int("layout", 0) != 0 {
            return Err("clip, input_forget = 1 and layout = 1 are not supported".into());
        }
        if node.proto.op_type == "GRU" && node.int("linear_before_reset", 0) != 1 {
            return Err(
                "a GRU with linear_before_reset = 0 is not supported (Keras's and PyTorch's GRU apply the \
                        reset gate after the recurrent product: linear_before_reset = 1)"
                    .into(),
            );
        }
        Ok(())
    }

    /// The Keras activation and recurrent activation from ONNX's `activations` (the same for
    /// each direction; the LSTM's cell and output functions one).
    fn recurrent_activations(&self, node: &Node, directions: usize) -> Result<(String, String), String> {
        let op = node.proto.op_type.as_str();
        let defaults: &[&str] = match op {
            "LSTM" => &["Sigmoid", "Tanh", "Tanh"],
            "GRU" => &["Sigmoid", "Tanh"],
            _ => &["Tanh"],
        };
        let given: Vec<String> = match node.attribute("activations") {
            Some(a) => a
                .strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
            None => (0..directions)
                .flat_map(|_| defaults.iter().map(|s| s.to_string()))
                .collect(),
        };
        let per_direction = defaults.len();
        if given.len() != per_direction * directions
            || given.chunks(per_direction).any(|c| c != &given[..per_direction])
            || op == "LSTM" && given[1] != given[2]
        {
            return Err(format!(
                "activations {given:?} are not one set for every direction (the LSTM's cell and output ones equal)"
            ));
        }
        if node.attribute("activation_alpha").is_some() || node.attribute("activation_beta").is_some() {
            return Err("activations with alpha or beta are not supported".into());
        }
        let keras = |name: &str| match name {
            "Tanh" => Ok("tanh".to_string()),
            "Sigmoid" => Ok("sigmoid".to_string()),
            "Relu" => Ok("relu".to_string()),
            other => Err(format!(
                "activation {other} is not supported (Tanh, Sigmoid and Relu are)"
            )),
        };
        let activation = keras(given.last().map_or("Tanh", String::as_str))?;
        let gate = keras(&given[0])?;
        Ok(match op {
            "RNN" => (keras(&given[0])?, gate),
            _ => (activation, gate),
        })
    }

    /// Direction `d`'s weights in Keras's layouts: the kernel `(features, gates · hidden)`, the
    /// recurrent kernel `(hidden, gates · hidden)`, Keras's gate order; the bias the sum of
    /// ONNX's input and recurrent biases (the GRU's kept as its two rows).
    fn keras_weights(&self, node: &Node, d: usize, features: usize, hidden: usize) -> Result<Vec<Vec<f32>>, String> {
        let (_, blocks) = keras_form(&node.proto.op_type);
        let gates = blocks.len();
        let width = gates * hidden;
        let w = self.constant(node, 1, "W")?;
        let r = self.constant(node, 2, "R")?;
        let directions = if node.string("direction").as_deref() == Some("bidirectional") {
            2
        } else {
            1
        };
        let expect = |c: &Constant, shape: Vec<usize>, what: &str| match c.shape == shape {
            true => Ok(c.floats()),
            false => Err(format!(
                "{what} has shape {:?}, not {shape:?} (directions, gates · hidden, inputs)",
                c.shape
            )),
        };
        let w = expect(&w, vec![directions, width, features], "W")?;
        let r = expect(&r, vec![directions, width, hidden], "R")?;
        let kernel = keras_kernel(&w[d * width * features..][..width * features], features, hidden, blocks);
        let recurrent = keras_kernel(&r[d * width * hidden..][..width * hidden], hidden, hidden, blocks);
        let bias = match self.optional_constant(node, 3, "B")? {
            Some(b) => expect(&b, vec![directions, 2 * width], "B")?[d * 2 * width..][..2 * width].to_vec(),
            None => vec![0.0; 2 * width],
        };
        let reorder = |part: &[f32]| -> Vec<f32> {
            blocks
                .iter()
                .flat_map(|&b| part[b * hidden..][..hidden].iter().copied())
                .collect()
        };
        let (input_bias, recurrent_bias) = (reorder(&bias[..width]), reorder(&bias[width..]));
        let bias = match node.proto.op_type.as_str() {
            "GRU" => [input_bias, recurrent_bias].concat(),
            _ => input_bias.iter().zip(&recurrent_bias).map(|(a, b)| a + b).collect(),
        };
        Ok(vec![kernel, recurrent, bias])
    }
}

/// ONNX's `(gates · hidden, inputs)` matrix as Keras's `(inputs, gates · hidden)`, Keras's gate
/// `g` taken from ONNX's block `blocks[g]`.
fn keras_kernel(onnx: &[f32], inputs: usize, hidden: usize, blocks: &[usize]) -> Vec<f32> {
    let width = blocks.len() * hidden;
    let mut kernel = vec![0.0; inputs * width];
    for (g, &block) in blocks.iter().enumerate() {
        for j in 0..hidden {
            let row = &onnx[(block * hidden + j) * inputs..][..inputs];
            for (i, &v) in row.iter().enumerate() {
                kernel[i * width + g * hidden + j] = v;
            }
        }
    }
    kernel
}

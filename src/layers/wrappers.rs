//! Layers that wrap another: `Bidirectional` (a recurrent layer run both ways) and
//! `TimeDistributed` (a layer applied to every step of a sequence).

use super::{Layer, ParamShape, args, base_name};
use crate::autograd::{Graph, ParamId, ParamStore, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::LayerArgs;
use crate::layers::common::layer_builders;
use crate::rng::Rng;

/// A recurrent layer that can be copied to read its sequence the other way, as
/// [`Bidirectional`] needs.
pub trait Reversible: Layer {
    /// A copy that reads the sequence in the opposite direction, its outputs stored at their
    /// input steps' positions (so both directions line up), with no weights yet.
    fn reversed(&self) -> Box<dyn Layer>;
    /// Whether it outputs every step.
    fn returns_sequences(&self) -> bool;
}

/// How [`Bidirectional`] combines the two directions' outputs (Keras's `merge_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeMode {
    /// Concatenated on the last axis (the default): twice the units.
    Concat,
    /// Added.
    Sum,
    /// Multiplied.
    Mul,
    /// Averaged.
    Ave,
}

impl MergeMode {
    /// By Keras name: `"concat"`, `"sum"`, `"mul"`, `"ave"`.
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "concat" => MergeMode::Concat,
            "sum" => MergeMode::Sum,
            "mul" => MergeMode::Mul,
            "ave" => MergeMode::Ave,
            _ => return Err(Error::unknown("merge_mode", name, &["concat", "sum", "mul", "ave"])),
        })
    }

    /// The Keras name.
    pub fn name(self) -> &'static str {
        match self {
            MergeMode::Concat => "concat",
            MergeMode::Sum => "sum",
            MergeMode::Mul => "mul",
            MergeMode::Ave => "ave",
        }
    }
}

/// Keras's `Bidirectional(layer, merge_mode="concat")`: the layer reads the sequence forwards,
/// a copy with its own weights reads it backwards, and their outputs are merged.
///
/// ```
/// use strata::layers::{Bidirectional, LSTM};
/// let both_ways = Bidirectional::new(LSTM::new(32).return_sequences(true));
/// ```
pub struct Bidirectional {
    args: LayerArgs,
    forward: Box<dyn Reversible>,
    backward: Box<dyn Layer>,
    merge_mode: MergeMode,
}

impl Bidirectional {
    /// Wraps a recurrent layer (SimpleRNN, LSTM, GRU); merges by concatenation.
    pub fn new(layer: impl Reversible + 'static) -> Self {
        let backward = layer.reversed();
        Bidirectional {
            args: LayerArgs::default(),
            forward: Box::new(layer),
            backward,
            merge_mode: MergeMode::Concat,
        }
    }

    /// Wraps an already boxed recurrent layer.
    pub fn from_boxed(layer: Box<dyn Reversible>) -> Self {
        let backward = layer.reversed();
        Bidirectional {
            args: LayerArgs::default(),
            forward: layer,
            backward,
            merge_mode: MergeMode::Concat,
        }
    }

    /// How the two directions combine.
    pub fn merge_mode(mut self, mode: MergeMode) -> Self {
        self.merge_mode = mode;
        self
    }
}

layer_builders!(Bidirectional);

impl Layer for Bidirectional {
    fn class_name(&self) -> &'static str {
        "Bidirectional"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn set_trainable(&mut self, trainable: bool) {
        self.forward.set_trainable(trainable);
        self.backward.set_trainable(trainable);
        self.args.trainable = trainable;
    }

    fn set_name(&mut self, name: String) {
        // Keras's sublayer names: `forward_lstm` and `backward_lstm` under the wrapper's name.
        let inner = base_name(self.forward.class_name());
        self.forward.set_name(format!("{name}/forward_{inner}"));
        self.backward.set_name(format!("{name}/backward_{inner}"));
        self.args.name = name;
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let inputs = [input_shape.to_vec()];
        let mut output = super::only_input(
            self.forward.name(),
            self.forward.class_name(),
            &self.forward.output_shapes(&inputs)?,
        )?
        .to_vec();
        if self.merge_mode == MergeMode::Concat
            && let Some(units) = output.last_mut()
        {
            *units = units
                .checked_mul(2)
                .ok_or_else(|| Error::invalid("units", *units, format!("layer '{}' is too wide", self.args.name)))?;
        }
        Ok(output)
    }

    fn param_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<ParamShape>> {
        let mut shapes = self.forward.param_shapes(input_shapes)?;
        shapes.extend(self.backward.param_shapes(input_shapes)?);
        Ok(shapes)
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], params: &mut ParamStore, rng: &mut Rng) -> Result<()> {
        self.forward.build(input_shapes, params, rng)?;
        self.backward.build(input_shapes, params, rng)
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let forwards = self.forward.forward_one(graph, x)?;
        let backwards = self.backward.forward_one(graph, x)?;
        let merged = match self.merge_mode {
            MergeMode::Concat => {
                let axis = graph.shape(forwards).len() - 1;
                graph.concat(forwards, backwards, axis)?
            }
            MergeMode::Sum => graph.add(forwards, backwards)?,
            MergeMode::Mul => graph.mul(forwards, backwards)?,
            MergeMode::Ave => {
                let sum = graph.add(forwards, backwards)?;
                graph.scale(sum, 0.5)
            }
        };
        if let (Some(mask), true) = (graph.mask(x), self.forward.returns_sequences()) {
            graph.set_mask(merged, mask);
        }
        Ok(merged)
    }

    fn wrapped_class(&self) -> Option<&'static str> {
        Some(self.forward.class_name())
    }

    fn params(&self) -> Vec<ParamId> {
        let mut params = self.forward.params();
        params.extend(self.backward.params());
        params
    }

    fn config(&self) -> serde_json::Value {
        let mut inner = self.forward.config();
        inner["name"] = base_name(self.forward.class_name()).into();
        self.args.config(serde_json::json!({
            "layer": {"module": "keras.layers", "class_name": self.forward.class_name(), "config": inner, "registered_name": null},
            "merge_mode": self.merge_mode.name(),
        }))
    }
}

/// Keras's `TimeDistributed(layer)`: the same layer (one set of weights) applied to every step
/// of `(batch, steps, ...)`, giving `(batch, steps, ...layer's output)`.
///
/// ```
/// use strata::layers::{Dense, TimeDistributed};
/// let per_step = TimeDistributed::new(Dense::new(10).activation("softmax"));
/// ```
pub struct TimeDistributed {
    args: LayerArgs,
    layer: Box<dyn Layer>,
    /// Per-step output shape, once built.
    step_output: Vec<usize>,
}

impl TimeDistributed {
    /// Wraps `layer`.
    pub fn new(layer: impl Layer + 'static) -> Self {
        Self::from_boxed(Box::new(layer))
    }

    /// Wraps a boxed layer.
    pub fn from_boxed(layer: Box<dyn Layer>) -> Self {
        TimeDistributed {
            args: LayerArgs::default(),
            layer,
            step_output: Vec::new(),
        }
    }
}

impl TimeDistributed {
    /// The number of steps and the wrapped layer's per-step output shape.
    fn step_shapes(&self, input_shape: &[usize]) -> Result<(usize, Vec<usize>)> {
        let [steps, step_shape @ ..] = input_shape else {
            return Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: "(None, steps, ...): a sequence".into(),
                received: keras_shape(input_shape),
            });
        };
        if step_shape.is_empty() {
            return Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: "(None, steps, features...): each step needs at least one axis".into(),
                received: keras_shape(input_shape),
            });
        }
        let step_output = self.layer.output_shapes(&[step_shape.to_vec()])?;
        let step_output = super::only_input(self.layer.name(), self.layer.class_name(), &step_output)?;
        Ok((*steps, step_output.to_vec()))
    }
}

layer_builders!(TimeDistributed);

impl Layer for TimeDistributed {
    fn class_name(&self) -> &'static str {
        "TimeDistributed"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn set_trainable(&mut self, trainable: bool) {
        self.layer.set_trainable(trainable);
        self.args.trainable = trainable;
    }

    fn set_name(&mut self, name: String) {
        let inner = base_name(self.layer.class_name());
        self.layer.set_name(format!("{name}/{inner}"));
        self.args.name = name;
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let (steps, step_output) = self.step_shapes(input_shape)?;
        let mut output = vec![steps];
        output.extend(step_output);
        Ok(output)
    }

    fn param_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<ParamShape>> {
        let input_shape = super::only_input(&self.args.name, "TimeDistributed", input_shapes)?;
        self.step_shapes(input_shape)?;
        self.layer.param_shapes(&[input_shape[1..].to_vec()])
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], params: &mut ParamStore, rng: &mut Rng) -> Result<()> {
        let input_shape = super::only_input(&self.args.name, "TimeDistributed", input_shapes)?;
        let (_, step_output) = self.step_shapes(input_shape)?;
        self.layer.build(&[input_shape[1..].to_vec()], params, rng)?;
        self.step_output = step_output;
        Ok(())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let shape = graph.dims(x);
        let (n, steps) = (shape[0], shape.get(1).copied().unwrap_or(0));
        let mut flat = vec![n * steps];
        flat.extend(&shape[2..]);
        let rows = graph.reshape(x, &flat)?;
        let y = self.layer.forward_one(graph, rows)?;
        let mut unflat = vec![n, steps];
        unflat.extend(&self.step_output);
        let y = graph.reshape(y, &unflat)?;
        if let Some(mask) = graph.mask(x) {
            graph.set_mask(y, mask);
        }
        Ok(y)
    }

    fn wrapped_class(&self) -> Option<&'static str> {
        Some(self.layer.class_name())
    }

    fn params(&self) -> Vec<ParamId> {
        self.layer.params()
    }

    fn config(&self) -> serde_json::Value {
        let mut inner = self.layer.config();
        inner["name"] = base_name(self.layer.class_name()).into();
        self.args.config(serde_json::json!({
            "layer": {"module": "keras.layers", "class_name": self.layer.class_name(), "config": inner, "registered_name": null},
        }))
    }
}

/// The `"layer"` a wrapper's config holds: its class name and config.
fn wrapped<'a>(class_name: &str, config: &'a serde_json::Value) -> Result<(&'a str, &'a serde_json::Value)> {
    static EMPTY: serde_json::Value = serde_json::Value::Null;
    let inner = config
        .get("layer")
        .ok_or_else(|| Error::Data(format!("{class_name} needs the \"layer\" it wraps")))?;
    let inner_class = inner
        .get("class_name")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| Error::Data(format!("{class_name}: the wrapped layer has no \"class_name\"")))?;
    Ok((inner_class, inner.get("config").unwrap_or(&EMPTY)))
}

/// Keras writes the backward layer it made from the forward one; strata makes its own the same
/// way, so a backward layer that differs in more than its name and direction is an error rather
/// than silently replaced.
fn check_backward_layer(config: &serde_json::Value, inner_class: &str, inner: &serde_json::Value) -> Result<()> {
    let Some(backward) = config.get("backward_layer").filter(|b| !b.is_null()) else {
        return Ok(());
    };
    let comparable = |layer_config: Option<&serde_json::Value>| {
        let mut copy = layer_config.cloned().unwrap_or_default();
        if let Some(object) = copy.as_object_mut() {
            object.remove("name");
            object.remove("go_backwards");
        }
        without_object_ids(&mut copy);
        copy
    };
    let same_class = backward.get("class_name").and_then(serde_json::Value::as_str) == Some(inner_class);
    if same_class && comparable(backward.get("config")) == comparable(Some(inner)) {
        return Ok(());
    }
    Err(Error::Data(
        "Bidirectional: a \"backward_layer\" other than the forward layer reversed is not supported".into(),
    ))
}

/// Removes Keras 3's `shared_object_id`s, anywhere in `value`: bookkeeping of its serializer
/// (which Python object an initializer or dtype policy was), different in every layer.
fn without_object_ids(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(object) => {
            object.remove("shared_object_id");
            object.values_mut().for_each(without_object_ids);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(without_object_ids),
        _ => {}
    }
}

/// Builds a wrapped layer from its class name and config; the registry passes its own, so
/// this file need not know the layers it may wrap.
pub type WrappedConstructor<L> = fn(&str, &serde_json::Value) -> Result<Box<L>>;

impl Bidirectional {
    /// The layer from Keras's `get_config()` keys, the wrapped layer made by `build_inner`.
    pub(crate) fn from_config(
        config: &serde_json::Value,
        build_inner: WrappedConstructor<dyn Reversible>,
    ) -> Result<Self> {
        let (inner_class, inner_config) = wrapped("Bidirectional", config)?;
        check_backward_layer(config, inner_class, inner_config)?;
        let mode = args::string(config, "merge_mode", "concat")?;
        Ok(Bidirectional::from_boxed(build_inner(inner_class, inner_config)?).merge_mode(MergeMode::from_name(&mode)?))
    }
}

impl TimeDistributed {
    /// The layer from Keras's `get_config()` keys, the wrapped layer made by `build_inner`.
    pub(crate) fn from_config(config: &serde_json::Value, build_inner: WrappedConstructor<dyn Layer>) -> Result<Self> {
        let (inner_class, inner_config) = wrapped("TimeDistributed", config)?;
        Ok(TimeDistributed::from_boxed(build_inner(inner_class, inner_config)?))
    }
}

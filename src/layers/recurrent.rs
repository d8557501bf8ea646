//! `SimpleRNN`, `LSTM` and `GRU`: recurrent layers over `(batch, timesteps, features)` with
//! Keras's arguments, defaults and weight layouts (`kernel (features, gates·units)`,
//! `recurrent_kernel (units, gates·units)`, `bias`; gates i, f, c, o for the LSTM and z, r, h
//! for the GRU, whose bias is `(2, 3·units)` with `reset_after=True`).
//!
//! The whole sequence runs as one fused operation (`Graph::recurrent`).

use super::dropout::fill_mask;
use super::{Layer, ParamShape, args};
use crate::autograd::{Cell, Graph, ParamId, ParamStore, RecurrentInputs, RecurrentOptions, Squash, Var};
use crate::error::{Error, Result, keras_shape};
use crate::initializers::Initializer;
use crate::layers::LayerArgs;
use crate::layers::common::layer_builders;
use crate::rng::Rng;
use crate::tensor::Tensor;
use std::marker::PhantomData;

/// Which Keras class a [`Recurrent`] layer is.
pub trait RecurrentKind: Clone + std::fmt::Debug + Send + Sync + 'static {
    /// The cell it runs.
    const CELL: Cell;
    /// Keras's class name.
    const CLASS: &'static str;
}

/// Marker of [`SimpleRNN`].
#[derive(Clone, Copy, Debug)]
pub struct SimpleRnnCell;
/// Marker of [`LSTM`].
#[derive(Clone, Copy, Debug)]
pub struct LstmCell;
/// Marker of [`GRU`].
#[derive(Clone, Copy, Debug)]
pub struct GruCell;

impl RecurrentKind for SimpleRnnCell {
    const CELL: Cell = Cell::SimpleRnn;
    const CLASS: &'static str = "SimpleRNN";
}
impl RecurrentKind for LstmCell {
    const CELL: Cell = Cell::Lstm;
    const CLASS: &'static str = "LSTM";
}
impl RecurrentKind for GruCell {
    const CELL: Cell = Cell::Gru;
    const CLASS: &'static str = "GRU";
}

/// Keras's `SimpleRNN`: `h = tanh(x·W + h·U + b)`.
#[allow(clippy::upper_case_acronyms)]
pub type SimpleRNN = Recurrent<SimpleRnnCell>;
/// Keras's `LSTM`.
///
/// ```
/// use strata::layers::LSTM;
/// let lstm = LSTM::new(128).return_sequences(true);
/// ```
#[allow(clippy::upper_case_acronyms)]
pub type LSTM = Recurrent<LstmCell>;
/// Keras's `GRU` (with `reset_after=True`, Keras's default).
#[allow(clippy::upper_case_acronyms)]
pub type GRU = Recurrent<GruCell>;

/// A recurrent layer; use it as [`SimpleRNN`], [`LSTM`] or [`GRU`].
#[derive(Clone, Debug)]
pub struct Recurrent<K: RecurrentKind> {
    pub(super) args: LayerArgs,
    pub(super) units: usize,
    activation: String,
    recurrent_activation: String,
    use_bias: bool,
    return_sequences: bool,
    /// Keras's `return_state`: a call also yields the final `h` (and the LSTM's `c`).
    return_state: bool,
    go_backwards: bool,
    pub(super) align_output: bool,
    dropout: f32,
    recurrent_dropout: f32,
    kernel_initializer: Initializer,
    recurrent_initializer: Initializer,
    bias_initializer: Initializer,
    unit_forget_bias: bool,
    seed: Option<u64>,
    pub(super) features: usize,
    kernel: Option<ParamId>,
    recurrent_kernel: Option<ParamId>,
    bias: Option<ParamId>,
    kind: PhantomData<K>,
}

impl<K: RecurrentKind> Recurrent<K> {
    /// A layer with `units` state values and Keras's defaults: tanh activation, sigmoid gates,
    /// a bias, the last output only, glorot_uniform kernel, orthogonal recurrent kernel, zero
    /// bias (the LSTM's forget gate starting at 1: `unit_forget_bias`).
    pub fn new(units: usize) -> Self {
        Recurrent {
            args: LayerArgs::default(),
            units,
            activation: "tanh".into(),
            recurrent_activation: "sigmoid".into(),
            use_bias: true,
            return_sequences: false,
            return_state: false,
            go_backwards: false,
            align_output: false,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            kernel_initializer: Initializer::GlorotUniform,
            recurrent_initializer: Initializer::Orthogonal { gain: 1.0 },
            bias_initializer: Initializer::Zeros,
            unit_forget_bias: true,
            seed: None,
            features: 0,
            kernel: None,
            recurrent_kernel: None,
            bias: None,
            kind: PhantomData,
        }
    }

    /// The candidate's and output's activation (`"tanh"`, `"relu"`, `"sigmoid"`, `"linear"`).
    pub fn activation(mut self, name: &str) -> Self {
        self.activation = name.to_string();
        self
    }

    /// The gates' activation (`"sigmoid"`, `"hard_sigmoid"`); unused by SimpleRNN.
    pub fn recurrent_activation(mut self, name: &str) -> Self {
        self.recurrent_activation = name.to_string();
        self
    }

    /// Whether to add biases. Defaults to true.
    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }

    /// Output every step `(batch, timesteps, units)` instead of the last `(batch, units)`.
    pub fn return_sequences(mut self, return_sequences: bool) -> Self {
        self.return_sequences = return_sequences;
        self
    }

    /// Read the sequence from its last step to its first (outputs in that order).
    pub fn go_backwards(mut self, go_backwards: bool) -> Self {
        self.go_backwards = go_backwards;
        self
    }

    /// Fraction of the input features dropped in training (one mask per sequence).
    pub fn dropout(mut self, rate: f32) -> Self {
        self.dropout = rate;
        self
    }

    /// Fraction of the recurrent state dropped in training before the recurrent product.
    pub fn recurrent_dropout(mut self, rate: f32) -> Self {
        self.recurrent_dropout = rate;
        self
    }

    /// How the kernel starts. Defaults to glorot_uniform.
    pub fn kernel_initializer(mut self, initializer: Initializer) -> Self {
        self.kernel_initializer = initializer;
        self
    }

    /// How the recurrent kernel starts. Defaults to orthogonal.
    pub fn recurrent_initializer(mut self, initializer: Initializer) -> Self {
        self.recurrent_initializer = initializer;
        self
    }

    /// How the bias starts. Defaults to zeros.
    pub fn bias_initializer(mut self, initializer: Initializer) -> Self {
        self.bias_initializer = initializer;
        self
    }

    /// LSTM only: start the forget gate's bias at 1 (Keras's default, true).
    pub fn unit_forget_bias(mut self, unit_forget_bias: bool) -> Self {
        self.unit_forget_bias = unit_forget_bias;
        self
    }

    /// Seed of the dropout masks (defaults to a hash of the layer's name).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Keras's `return_state`: each call yields `[output, h]`, or `[output, h, c]` for an LSTM
    /// (see [`Recurrent::call_with_state`]).
    pub fn return_state(mut self, return_state: bool) -> Self {
        self.return_state = return_state;
        self
    }

    /// Number of units.
    pub fn units(&self) -> usize {
        self.units
    }

    pub(super) fn options(&self) -> Result<RecurrentOptions> {
        Ok(RecurrentOptions {
            cell: K::CELL,
            units: self.units,
            activation: Squash::from_name(&self.activation)?,
            recurrent_activation: Squash::from_name(&self.recurrent_activation)?,
            return_sequences: self.return_sequences,
            go_backwards: self.go_backwards,
            align_output: self.align_output,
            emit_states: false,
        })
    }

    /// The kernel and recurrent kernel, once built.
    fn weights(&self) -> Result<[ParamId; 2]> {
        match (self.kernel, self.recurrent_kernel) {
            (Some(k), Some(r)) => Ok([k, r]),
            _ => Err(Error::Usage(format!(
                "layer '{}' used before it was built",
                self.args.name
            ))),
        }
    }

    fn validate(&self) -> Result<()> {
        if self.units == 0 {
            return Err(Error::invalid(
                "units",
                0,
                format!("layer '{}' needs at least one unit", self.args.name),
            ));
        }
        for (name, rate) in [("dropout", self.dropout), ("recurrent_dropout", self.recurrent_dropout)] {
            if !(0.0..1.0).contains(&rate) {
                return Err(Error::invalid(name, rate, "must be in [0, 1)"));
            }
        }
        self.options().map(|_| ())
    }
}

layer_builders!(impl[K: RecurrentKind] Recurrent<K>, input_shape);

impl<K: RecurrentKind> Layer for Recurrent<K> {
    fn class_name(&self) -> &'static str {
        K::CLASS
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_count(&self) -> usize {
        match (self.return_state, K::CELL) {
            (false, _) => 1,
            (true, Cell::Lstm) => 3,
            (true, _) => 2,
        }
    }

    fn output_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<Vec<usize>>> {
        let input_shape = super::only_input(&self.args.name, K::CLASS, input_shapes)?;
        self.validate()?;
        let &[timesteps, features] = input_shape else {
            return Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: "(None, timesteps, features): a 3-D input of sequences".into(),
                received: keras_shape(input_shape),
            });
        };
        if timesteps == 0 || features == 0 {
            return Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: "(None, timesteps, features) with at least one step and feature".into(),
                received: keras_shape(input_shape),
            });
        }
        let (u, g) = (self.units, K::CELL.gates());
        let (rows, columns) = (features.checked_add(u), g.checked_mul(u));
        super::check_weight_count(
            &self.args.name,
            &[rows.unwrap_or(usize::MAX), columns.unwrap_or(usize::MAX)],
        )?;
        let mut shapes = vec![if self.return_sequences {
            vec![timesteps, u]
        } else {
            vec![u]
        }];
        shapes.resize(self.output_count(), vec![u]);
        Ok(shapes)
    }

    fn param_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<ParamShape>> {
        self.output_shapes(input_shapes)?;
        let features = input_shapes[0][1];
        let (u, g, trainable) = (self.units, K::CELL.gates(), self.args.trainable);
        let mut shapes = vec![
            ParamShape::new(vec![features, g * u], trainable),
            ParamShape::new(vec![u, g * u], trainable),
        ];
        if self.use_bias {
            let bias = if K::CELL == Cell::Gru {
                vec![2, g * u]
            } else {
                vec![g * u]
            };
            shapes.push(ParamShape::new(bias, trainable));
        }
        Ok(shapes)
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], params: &mut ParamStore, rng: &mut Rng) -> Result<()> {
        self.output_shapes(input_shapes)?;
        let features = input_shapes[0][1];
        let (u, g) = (self.units, K::CELL.gates());
        self.features = features;
        let kernel = self.kernel_initializer.initialize(&[features, g * u], rng);
        self.kernel = Some(params.add(format!("{}/kernel", self.args.name), kernel, self.args.trainable));
        let recurrent = self.recurrent_initializer.initialize(&[u, g * u], rng);
        self.recurrent_kernel = Some(params.add(
            format!("{}/recurrent_kernel", self.args.name),
            recurrent,
            self.args.trainable,
        ));
        if self.use_bias {
            let shape: Vec<usize> = if K::CELL == Cell::Gru {
                vec![2, g * u]
            } else {
                vec![g * u]
            };
            let mut bias = self.bias_initializer.initialize(&shape, rng);
            if K::CELL == Cell::Lstm && self.unit_forget_bias {
                // Keras: zeros for i, ones for f, then the initializer's values for c and o.
                bias.data_mut()[..u].fill(0.0);
                bias.data_mut()[u..2 * u].fill(1.0);
            }
            self.bias = Some(params.add(format!("{}/bias", self.args.name), bias, self.args.trainable));
        }
        Ok(())
    }

    fn forward(&self, graph: &mut Graph, inputs: &[Var], outputs: &mut Vec<Var>) -> Result<()> {
        let &[x] = inputs else {
            return Err(Error::Usage(format!(
                "layer '{}' ({}) takes one input, but was called on {}",
                self.args.name,
                K::CLASS,
                inputs.len()
            )));
        };
        if !self.return_state {
            outputs.push(self.forward_one(graph, x)?);
            return Ok(());
        }
        // One run yields the output and the final states, packed along the time axis.
        let options = RecurrentOptions {
            emit_states: true,
            ..self.options()?
        };
        let packed = self.run(graph, x, self.weights()?, self.bias, options)?;
        let steps = graph.dims(x)[1];
        let (sequence_rows, state_rows) = options.output_rows(steps);
        let h = graph.select(packed, 1, sequence_rows)?;
        if self.return_sequences {
            let sequence = graph.slice(packed, 1, 0, sequence_rows)?;
            if let Some(mask) = graph.mask(x) {
                graph.set_mask(sequence, mask);
            }
            outputs.push(sequence);
        } else {
            outputs.push(h);
        }
        outputs.push(h);
        for row in sequence_rows + 1..sequence_rows + state_rows {
            outputs.push(graph.select(packed, 1, row)?);
        }
        Ok(())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let y = self.run(graph, x, self.weights()?, self.bias, self.options()?)?;
        if let (Some(mask), true) = (graph.mask(x), self.return_sequences) {
            graph.set_mask(y, mask);
        }
        Ok(y)
    }

    fn params(&self) -> Vec<ParamId> {
        [self.kernel, self.recurrent_kernel, self.bias]
            .into_iter()
            .flatten()
            .collect()
    }

    fn config(&self) -> serde_json::Value {
        self.keras_config()
    }
}

impl<K: RecurrentKind> Recurrent<K> {
    /// Records the recurrent operation on `x` with the layer's weights, drawing the same
    /// dropout masks at each run of one step.
    pub(super) fn run(
        &self,
        graph: &mut Graph,
        x: Var,
        [kernel, recurrent_kernel]: [ParamId; 2],
        bias: Option<ParamId>,
        options: RecurrentOptions,
    ) -> Result<Var> {
        let shape = graph.dims(x);
        if shape.len() != 3 || shape[2] != self.features {
            return Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: format!("(None, timesteps, {})", self.features),
                received: keras_shape(shape.get(1..).unwrap_or(&[])),
            });
        }
        let mask = graph.mask(x);
        let (n, u) = (shape[0], self.units);
        let salt = self.seed.unwrap_or_else(|| crate::rng::hash_name(&self.args.name));
        let mut input = x;
        if graph.training() && self.dropout > 0.0 {
            // One mask per sequence, the same at every step (Keras's dropout on RNN inputs).
            let key = graph.noise_key(salt);
            let rate = self.dropout;
            let keep = graph.constant_with(|keep| {
                keep.resize_for(&[n, 1, shape[2]]);
                fill_mask(keep.data_mut(), rate, key);
            });
            input = graph.mul(x, keep)?;
        }
        let recurrent_mask = (graph.training() && self.recurrent_dropout > 0.0).then(|| {
            let key = graph.noise_key(salt ^ 0x5eed_0f0e_ca11);
            let rate = self.recurrent_dropout;
            graph.constant_with(|keep: &mut Tensor| {
                keep.resize_for(&[n, u]);
                fill_mask(keep.data_mut(), rate, key);
            })
        });
        let operands = RecurrentInputs {
            x: input,
            kernel: graph.param(kernel),
            recurrent_kernel: graph.param(recurrent_kernel),
            bias: bias.map(|b| graph.param(b)),
            mask,
            recurrent_mask,
        };
        graph.recurrent(operands, options)
    }

    pub(super) fn keras_config(&self) -> serde_json::Value {
        let mut config = self.args.config(serde_json::json!({
            "units": self.units,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "kernel_initializer": self.kernel_initializer.name(),
            "recurrent_initializer": self.recurrent_initializer.name(),
            "bias_initializer": self.bias_initializer.name(),
            "seed": self.seed,
        }));
        if K::CELL != Cell::SimpleRnn {
            config["recurrent_activation"] = self.recurrent_activation.clone().into();
        }
        match K::CELL {
            Cell::Lstm => config["unit_forget_bias"] = self.unit_forget_bias.into(),
            Cell::Gru => config["reset_after"] = true.into(),
            Cell::SimpleRnn => {}
        }
        config
    }
}

impl<K: RecurrentKind> super::Reversible for Recurrent<K> {
    fn reversed(&self) -> Box<dyn Layer> {
        let mut copy = Recurrent::<K> {
            kernel: None,
            recurrent_kernel: None,
            bias: None,
            ..self.clone()
        };
        copy.go_backwards = !self.go_backwards;
        copy.return_state = false;
        copy.align_output = true;
        // A different dropout stream from the forward direction.
        copy.seed = self.seed.map(|s| s ^ 0xbac4_0a2d);
        Box::new(copy)
    }

    fn returns_sequences(&self) -> bool {
        self.return_sequences
    }
}

impl<K: RecurrentKind> Recurrent<K> {
    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        let flag = |key: &str, default: bool| args::flag(config, key, default);
        if flag("stateful", false)? || flag("unroll", false)? {
            return Err(Error::Data(format!(
                "{}: stateful and unroll are not supported",
                K::CLASS
            )));
        }
        if K::CLASS == "GRU" && config.get("reset_after").and_then(serde_json::Value::as_bool) == Some(false) {
            return Err(Error::Data(
                "GRU with reset_after=false is not supported (Keras's default, reset_after=true, is)".into(),
            ));
        }
        let mut layer = Recurrent::<K>::new(args::required_size(config, "units", K::CLASS)?)
            .activation(&args::activation(config, "activation", "tanh")?)
            .recurrent_activation(&args::activation(config, "recurrent_activation", "sigmoid")?)
            .use_bias(flag("use_bias", true)?)
            .return_sequences(flag("return_sequences", false)?)
            .return_state(flag("return_state", false)?)
            .go_backwards(flag("go_backwards", false)?)
            .unit_forget_bias(flag("unit_forget_bias", true)?)
            .dropout(args::number(config, "dropout")?.unwrap_or(0.0))
            .recurrent_dropout(args::number(config, "recurrent_dropout")?.unwrap_or(0.0));
        for (key, initializer) in [
            ("kernel_initializer", &mut layer.kernel_initializer),
            ("recurrent_initializer", &mut layer.recurrent_initializer),
            ("bias_initializer", &mut layer.bias_initializer),
        ] {
            if let Some(init) = args::initializer(config, key)? {
                *initializer = init;
            }
        }
        layer.seed = args::seed(config)?;
        layer.args = LayerArgs::with_input_shape(config)?;
        Ok(layer)
    }
}

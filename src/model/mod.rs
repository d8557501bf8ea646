//! [`Model`]: a graph of layers (a stack, or any graph) with Keras's `compile`, `fit`, `evaluate`,
//! `predict`, `summary` and `save`; [`Sequential`] starts a stack.

mod adapt;
mod base;
mod callbacks;
mod checks;
mod distributed;
mod evaluate;
mod fit;
mod fit_data;
mod graph;
mod history;
mod inference;
mod inference_mobilenet;
mod masks;
mod nested;
mod options;
mod plan;
mod predict;
mod predict_split;
mod progress;
mod quantize;
mod step;
mod strategy;
mod summary;
mod totals;
mod trainable;

pub use crate::autograd::ActivationScale;
pub use callbacks::{Callback, Control};
pub(crate) use graph::{Call, Source};
pub use graph::{LayerCall, Node, SharedLayer};
pub use nested::NestedModel;
pub use options::FitOptions;
pub use plan::PlannedLayer;
pub use quantize::{QuantizeOptions, QuantizedLayer};
pub use totals::{OutputScores, Scores};
pub(crate) use trainable::WeightOwner;

pub use history::{EpochLogs, History};

use crate::autograd::{Graph, ParamStore, Tape, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::Layer;
use crate::losses::Loss;
use crate::metrics::{Accuracy, Metric};
use crate::optimizers::{self, Optimizer};
use crate::rng::Rng;
use std::collections::HashMap;

/// A model, as Keras's `keras.Model`: a graph of layer calls with `compile`, `fit`, `evaluate`,
/// `predict`, `summary` and `save`. [`Sequential::new`] (or [`Model::new`]) and `add` build a
/// stack of layers; [`Model::functional`] any graph.
///
/// ```
/// use strata::prelude::*;
/// let mut model = Sequential::new();
/// model.add(Input::new(&[4])).add(Dense::new(8).activation("relu")).add(Dense::new(1));
/// model.compile("sgd", "mse", &[]).unwrap();
/// assert_eq!(model.count_params(), 4 * 8 + 8 + 8 + 1);
/// ```
pub struct Model {
    name: String,
    /// The layers and how they are called.
    network: Network,
    /// The weights.
    params: ParamStore,
    /// What training needs and changes besides the weights.
    training: TrainingState,
    /// Buffers the steps reuse.
    workspace: Workspace,
    /// Named texts saved with the model (a text model's tokenizer, ...).
    attachments: std::collections::BTreeMap<String, String>,
}

/// The graph of layer calls and, once built, its shapes.
#[derive(Default)]
struct Network {
    layers: Vec<Box<dyn Layer>>,
    /// The layer calls, each after its inputs.
    calls: Vec<Call>,
    /// The model's outputs, in order, as indices among all calls' outputs (a `Sequential`'s
    /// is its last call's).
    outputs: Vec<usize>,
    /// How many input tensors the model takes (`Source::ModelInput(0..inputs)`).
    inputs: usize,
    /// Made by `Model::functional` (summaries show connections, configs the graph).
    functional: bool,
    /// Per weight (indexed by `ParamId`), once built: the layer that made it and whether it is
    /// a trainable variable at all (BatchNormalization's moving statistics are not).
    weight_owners: Vec<WeightOwner>,
    /// Per-sample shape of each input, once built (empty before).
    input_shapes: Vec<Vec<usize>>,
    /// The models that were layers of this one, by their layers' names (see `nested.rs`).
    nested: Vec<NestedModel>,
    /// Per-sample output shape of each call, once built.
    output_shapes: Vec<Vec<usize>>,
    /// Once built: the bytes of one sample's activations, of the weights, and what the build
    /// checked against the memory budget (see `plan.rs`); `None` beyond 2⁶⁴ bytes.
    memory: Option<Footprint>,
    /// The names of `layers[..names.indexed]` and the next suffix to try per base name, so
    /// naming a layer costs O(1) however many there are (see `push_unique`).
    names: LayerNames,
}

/// What a built model's memory comes to, for checking batches against the budget (see
/// `plan.rs`); each size `None` beyond 2⁶⁴ bytes.
#[derive(Clone, Copy, Debug)]
struct Footprint {
    /// The activations of one sample, all calls' outputs together.
    sample_bytes: Option<u64>,
    /// The weights' values.
    weight_bytes: Option<u64>,
    /// What building checked against the budget: the weights twice and one sample.
    built_bytes: Option<u64>,
}

/// The layer names in use and, per base name (`dense`), the next suffix to try.
#[derive(Default)]
struct LayerNames {
    taken: std::collections::HashSet<String>,
    next_suffix: HashMap<String, usize>,
    /// How many of the network's layers `taken` holds (layers placed without `push_unique`,
    /// as a model file's, are added on the next call).
    indexed: usize,
}

impl Network {
    /// Records the forward pass of every call on `graph`, from the batch `inputs` (one per model
    /// input); `outputs` receives each call's output (kept between steps to avoid allocating).
    pub(super) fn forward(&self, graph: &mut Graph, inputs: &[Var], outputs: &mut Vec<Var>) -> Result<()> {
        self.forward_planned(graph, inputs, outputs, &[])
    }

    /// [`Network::forward`] for training and evaluation: the calls [`Network::training_plan`]
    /// fuses recorded together, planned into `plan` with `readers` as its working memory
    /// (buffers kept between steps, so neither allocates).
    pub(super) fn forward_fused(
        &self,
        graph: &mut Graph,
        inputs: &[Var],
        outputs: &mut Vec<Var>,
        (readers, plan): (&mut Vec<(usize, usize)>, &mut Vec<inference::Step>),
    ) -> Result<()> {
        self.training_plan(graph.params(), readers, plan);
        self.forward_planned(graph, inputs, outputs, plan)
    }

    /// [`Network::forward`] with the calls `plan` (from [`Network::training_plan`]; empty:
    /// none) fuses recorded together. A fused call's output slot holds the run's output,
    /// which only the run reads.
    pub(super) fn forward_planned(
        &self,
        graph: &mut Graph,
        inputs: &[Var],
        outputs: &mut Vec<Var>,
        plan: &[inference::Step],
    ) -> Result<()> {
        let (layers, calls) = (&self.layers, &self.calls);
        outputs.clear();
        let resolve = |source: &Source, outputs: &[Var]| match *source {
            Source::ModelInput(i) => inputs[i],
            Source::Output(o) => outputs[o],
        };
        for (i, call) in calls.iter().enumerate() {
            match plan.get(i) {
                Some(&inference::Step::ConvPool { pool }) => {
                    let x = resolve(&call.inputs[0], outputs);
                    outputs.push(self.forward_conv_pool(graph, i, x, pool)?);
                }
                Some(&inference::Step::Fused { head }) => outputs.push(outputs[calls[head].first_output]),
                _ => record_call(layers[call.layer].as_ref(), call, &resolve, graph, outputs)?,
            }
        }
        Ok(())
    }
}

/// Records one call of `layer` on `graph`, its inputs looked up by `resolve` among the model's
/// inputs and the `outputs` recorded so far, and checks it recorded as many outputs as it has.
pub(super) fn record_call(
    layer: &dyn Layer,
    call: &Call,
    resolve: &impl Fn(&Source, &[Var]) -> Var,
    graph: &mut Graph,
    outputs: &mut Vec<Var>,
) -> Result<()> {
    match call.inputs.as_slice() {
        // One input needs no list: the training step stays free of allocations.
        [one] => layer.forward(graph, &[resolve(one, outputs)], outputs)?,
        many => {
            let vars: Vec<Var> = many.iter().map(|s| resolve(s, outputs)).collect();
            layer.forward(graph, &vars, outputs)?
        }
    }
    if outputs.len() != call.first_output + layer.output_count() {
        return Err(Error::Usage(format!(
            "layer '{}' recorded {} outputs, not {}",
            layer.name(),
            outputs.len() - call.first_output,
            layer.output_count()
        )));
    }
    Ok(())
}

/// What `compile` chose, the seed of everything drawn, and where training stands (saved with
/// the model, to resume from).
struct TrainingState {
    compiled: Option<Compiled>,
    seed: u64,
    rng: Rng,
    /// The last epoch `fit` completed.
    epochs_trained: usize,
    /// Batches of the next epoch already trained, when training stopped mid-epoch.
    batches_into_epoch: usize,
}

/// A tape and the call outputs recorded on it.
type ImageTape = (Tape, Vec<Var>);

/// The tape and each call's output variables, kept between steps so a step allocates nothing.
#[derive(Default)]
struct Workspace {
    tape: Tape,
    call_outputs: Vec<Var>,
    /// Which calls `predict` fuses (see `inference.rs`), rebuilt by a `predict` that finds
    /// the weights changed since.
    inference_plan: Vec<inference::Step>,
    /// The weights generation (`ParamStore::generation`) `inference_plan` was made for.
    inference_plan_generation: Option<u64>,
    /// `predict` runs every layer as it is (`Model::set_inference_fusion(false)`).
    unfused: bool,
    /// Which calls training and evaluation record fused (see `Network::training_plan`),
    /// planned again for every step into these buffers, and the plan's working memory.
    training_plan: Vec<inference::Step>,
    readers: Vec<(usize, usize)>,
    /// Where `predict` splits its batches (see `predict_split.rs`), made with the plan.
    split: Option<inference::Split>,
    /// The tape of the calls `predict` runs on whole batches after a split, and per thread
    /// the tape and call outputs of the calls it runs image by image before it.
    batch_tape: Tape,
    image_tapes: Vec<ImageTape>,
    /// The value passed across the split, gathered image by image.
    crossing: Vec<f32>,
}

/// Keras's `keras.Sequential`: the familiar way to start a stack of layers. It builds a [`Model`]
/// (there is one model type), to which `add` appends layers.
///
/// ```
/// use strata::prelude::*;
/// let mut model: Model = Sequential::new();
/// model.add(Input::new(&[2])).add(Dense::new(1));
/// model.compile("sgd", "mse", &[]).unwrap();
/// assert_eq!(model.count_params(), 3);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Sequential;

impl Sequential {
    /// An empty stack of layers: [`Model::new`].
    // Keras spells it `keras.Sequential()`; the value is a `Model`, not a `Sequential`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> Model {
        Model::new()
    }

    /// A stack of the given layers: [`Model::from_layers`].
    pub fn from_layers(layers: Vec<Box<dyn Layer>>) -> Model {
        Model::from_layers(layers)
    }
}

/// What `compile` fixed: the optimizer, and per output a loss, its weight, the accuracy and
/// the other metrics with the keys Keras logs them under.
pub(crate) struct Compiled {
    pub(crate) optimizer: Box<dyn Optimizer>,
    pub(crate) losses: Vec<Loss>,
    pub(crate) loss_weights: Vec<f32>,
    pub(crate) accuracies: Vec<Option<Accuracy>>,
    pub(crate) metrics: Vec<Vec<(Metric, &'static str)>>,
}

impl Compiled {
    /// How many metric sums each output keeps.
    pub(crate) fn metric_sums(&self) -> Vec<usize> {
        let output = |metrics: &Vec<(Metric, &str)>| metrics.iter().map(|(m, _)| m.state_len()).sum();
        self.metrics.iter().map(output).collect()
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let layers: Vec<String> = self
            .network
            .layers
            .iter()
            .map(|l| format!("{} ({})", l.name(), l.class_name()))
            .collect();
        f.debug_struct("Model")
            .field("name", &self.name)
            .field("layers", &layers)
            .field("input_shapes", &self.network.input_shapes)
            .field("params", &self.count_params())
            .finish()
    }
}

impl Default for Model {
    fn default() -> Self {
        Self::new()
    }
}

impl Model {
    /// An empty model. Weights are drawn from seed 0 unless [`Model::seed`] says otherwise,
    /// so a program gives the same result every run.
    pub fn new() -> Self {
        Model {
            name: "sequential".into(),
            network: Network {
                inputs: 1,
                ..Network::default()
            },
            params: ParamStore::new(),
            training: TrainingState {
                compiled: None,
                seed: 0,
                rng: Rng::new(0),
                epochs_trained: 0,
                batches_into_epoch: 0,
            },
            workspace: Workspace::default(),
            attachments: Default::default(),
        }
    }

    /// A model from a list of layers.
    pub fn from_layers(layers: Vec<Box<dyn Layer>>) -> Self {
        let mut model = Self::new();
        for layer in layers {
            model.add_boxed(layer);
        }
        model
    }

    /// Sets the seed for weight initialization and shuffling (before the model is built).
    pub fn seed(&mut self, seed: u64) -> &mut Self {
        self.training.seed = seed;
        self.training.rng = Rng::new(seed);
        self
    }

    /// The last epoch `fit` completed (restored by `load_model`): pass it as
    /// `FitOptions::initial_epoch` to resume.
    pub fn epochs_trained(&self) -> usize {
        self.training.epochs_trained
    }

    /// Batches of epoch `epochs_trained() + 1` already trained when training stopped mid-epoch
    /// (pass it as `FitOptions::initial_batch` to resume exactly).
    pub fn batches_into_epoch(&self) -> usize {
        self.training.batches_into_epoch
    }

    /// Restores where a saved run stopped: the last epoch completed and the batches of the next
    /// one already trained.
    pub(crate) fn set_resume_point(&mut self, epochs_trained: usize, batches_into_epoch: usize) {
        self.training.epochs_trained = epochs_trained;
        self.training.batches_into_epoch = batches_into_epoch;
    }

    /// Restores the seed of a saved run without redrawing anything (weights are already loaded).
    pub(crate) fn set_seed_for_resume(&mut self, seed: u64) {
        self.training.seed = seed;
    }

    /// Keeps a named text with the model, saved and loaded with it: a text model's tokenizer
    /// (`"tokenizer"`, its JSON), or anything a program needs to use the model later.
    pub fn set_attachment(&mut self, key: &str, value: impl Into<String>) {
        self.attachments.insert(key.to_string(), value.into());
    }

    /// A text kept with [`Model::set_attachment`], if any.
    pub fn attachment(&self, key: &str) -> Option<&str> {
        self.attachments.get(key).map(String::as_str)
    }

    /// Removes the attachment `key` (a base model's class names, which a new head does not
    /// share), returning it.
    pub fn remove_attachment(&mut self, key: &str) -> Option<String> {
        self.attachments.remove(key)
    }

    /// Every attachment, by key.
    pub fn attachments(&self) -> &std::collections::BTreeMap<String, String> {
        &self.attachments
    }

    /// The seed weights and shuffling are drawn from.
    pub fn seed_value(&self) -> u64 {
        self.training.seed
    }

    /// Sets the model's name (shown by `summary`).
    pub fn set_name(&mut self, name: &str) -> &mut Self {
        self.name = name.to_string();
        self
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Appends a layer. A layer without a name gets Keras's `dense`, `dense_1`, ...
    pub fn add(&mut self, layer: impl Layer + 'static) -> &mut Self {
        self.add_boxed(Box::new(layer))
    }

    /// Appends a boxed layer, called on the current output (the model's input for the first).
    pub fn add_boxed(&mut self, layer: Box<dyn Layer>) -> &mut Self {
        // A stack reads the previous layer's (first) output, as Keras's Sequential does.
        let input = match self.network.outputs.first() {
            None => Source::ModelInput(0),
            Some(&output) => Source::Output(output),
        };
        self.push_unique(layer);
        let output = self.push_call(self.network.layers.len() - 1, vec![input]);
        self.network.outputs = vec![output];
        self.network.output_shapes.clear();
        self.network.input_shapes.clear();
        self
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.network.layers
    }

    /// The weights.
    pub fn params(&self) -> &ParamStore {
        &self.params
    }

    /// The weights, writable (to set or load them).
    pub fn params_mut(&mut self) -> &mut ParamStore {
        &mut self.params
    }

    /// Weights by name (`dense/kernel` → tensor), as Keras's `get_weights` keyed by path.
    pub fn weights(&self) -> HashMap<String, crate::Tensor> {
        self.params
            .ids()
            .map(|id| (self.params.name(id).to_string(), self.params.value(id).clone()))
            .collect()
    }

    /// Total number of weights (scalars). Before the model is built, the count its declared
    /// input shapes would give (as Keras counts a model that starts with an `Input`), found
    /// without making the weights; 0 when the input shape is not known yet.
    pub fn count_params(&self) -> usize {
        if !self.network.input_shapes.is_empty() {
            return self.params.counts().0;
        }
        self.declared_input_shapes()
            .and_then(|shapes| {
                let shapes: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
                self.planned_param_count(&shapes).ok()
            })
            .unwrap_or(0)
    }

    /// Per-sample shape of the (first) input, once built.
    pub fn input_shape(&self) -> Option<&[usize]> {
        self.network.input_shapes.first().map(Vec::as_slice)
    }

    /// Per-sample shape of each input, once built (empty before).
    pub fn input_shapes(&self) -> &[Vec<usize>] {
        &self.network.input_shapes
    }

    /// How many input tensors the model takes (1 for a `Sequential`).
    pub fn input_count(&self) -> usize {
        self.network.inputs
    }

    /// Per-sample shape of the (first) output, once built.
    pub fn output_shape(&self) -> Option<&[usize]> {
        self.network
            .outputs
            .first()
            .and_then(|&c| self.network.output_shapes.get(c))
            .map(Vec::as_slice)
    }

    /// Per-sample shape of each output, once built (empty before).
    pub fn output_shapes(&self) -> Vec<&[usize]> {
        match self.network.output_shapes.is_empty() {
            true => Vec::new(),
            false => self
                .network
                .outputs
                .iter()
                .map(|&c| self.network.output_shapes[c].as_slice())
                .collect(),
        }
    }

    /// The names of the layers whose outputs are the model's outputs, in order: the prefixes of
    /// the per-output metrics (`dense_2_loss`), as Keras names them.
    pub fn output_names(&self) -> Vec<&str> {
        self.network
            .outputs
            .iter()
            .map(|&output| self.network.layers[self.network.calls[self.output_origin(output).0].layer].name())
            .collect()
    }

    /// Builds every layer for per-sample inputs of `input_shape`, creating the weights.
    /// `compile`, `fit` and `predict` call this when the shape is known; calling it again with
    /// the same shape does nothing, and with another shape is an error naming the first layer.
    pub fn build(&mut self, input_shape: &[usize]) -> Result<()> {
        self.build_inputs(&[input_shape])
    }

    /// [`Model::build`] for a model with several inputs: one per-sample shape per input.
    pub fn build_inputs(&mut self, input_shapes: &[&[usize]]) -> Result<()> {
        if self.is_built_for(input_shapes)? {
            return Ok(());
        }
        self.check_buildable(input_shapes)?;
        let plan = self.plan(input_shapes)?;
        plan.check_budget(self)?;
        let params = self.build_weights(&plan.first_inputs)?;
        if params.counts() != plan.param_counts() {
            return Err(Error::Usage(format!(
                "a layer of model '{}' made {:?} weights (all, trainable) where its shapes said {:?}: a bug in a layer's param_shapes",
                self.name,
                params.counts(),
                plan.param_counts()
            )));
        }
        self.params = params;
        self.network.memory = Some(plan.footprint());
        self.network.output_shapes = plan.output_shapes;
        self.network.input_shapes = input_shapes.iter().map(|s| s.to_vec()).collect();
        Ok(())
    }

    /// Plans the built model for other `input_shapes` if an `Input` leaves sizes open (Keras's
    /// `keras.Input(shape=(None,))`; each `Input` checks the sizes it declares) and every layer
    /// takes them with weights of the shapes it has; true if so. A model without such an input
    /// keeps the shapes it was built for, as layers may size what they do by them.
    pub(super) fn replan_with_same_weights(&mut self, input_shapes: &[&[usize]]) -> bool {
        let leaves_sizes_open = self
            .network
            .layers
            .iter()
            .any(|layer| layer.is_input() && layer.declared_input_shape().is_none());
        if !leaves_sizes_open || input_shapes.len() != self.network.inputs {
            return false;
        }
        let Ok(plan) = self.plan(input_shapes) else {
            return false;
        };
        let same_weights = self
            .network
            .layers
            .iter()
            .zip(&plan.first_inputs)
            .all(|(layer, inputs)| {
                let Some(inputs) = inputs else { return true };
                let (Ok(shapes), ids) = (layer.param_shapes(inputs), layer.params()) else {
                    return false;
                };
                shapes.len() == ids.len()
                    && shapes
                        .iter()
                        .zip(ids)
                        .all(|(shape, id)| shape.shape == self.params.value(id).shape())
            });
        if !same_weights || plan.check_budget(self).is_err() {
            return false;
        }
        self.network.memory = Some(plan.footprint());
        self.network.output_shapes = plan.output_shapes;
        self.network.input_shapes = input_shapes.iter().map(|s| s.to_vec()).collect();
        true
    }

    /// Checks that the model has layers and that `input_shapes` gives one shape per input.
    fn check_buildable(&self, input_shapes: &[&[usize]]) -> Result<()> {
        if self.network.layers.iter().all(|l| l.is_input()) {
            return Err(Error::Usage(
                "the model has no layers: add some with `model.add(...)`".into(),
            ));
        }
        if input_shapes.len() != self.network.inputs {
            return Err(Error::Usage(format!(
                "the model takes {} input(s), but {} input shape(s) were given",
                self.network.inputs,
                input_shapes.len()
            )));
        }
        Ok(())
    }

    /// Whether the model is built for `input_shapes` already: false when it is not built, an
    /// error naming its first layer when it is built for other shapes. Other shapes that the
    /// layers take with the same weights (another length of a sequence whose `Input` leaves it
    /// open, as Keras's `keras.Input(shape=(None,))`) are planned anew, keeping the weights.
    fn is_built_for(&mut self, input_shapes: &[&[usize]]) -> Result<bool> {
        if self.network.input_shapes.is_empty() {
            return Ok(false);
        }
        if self
            .network
            .input_shapes
            .iter()
            .map(Vec::as_slice)
            .eq(input_shapes.iter().copied())
        {
            return Ok(true);
        }
        if self.replan_with_same_weights(input_shapes) {
            return Ok(true);
        }
        let built = &self.network.input_shapes;
        let first = self
            .network
            .layers
            .iter()
            .find(|l| !l.is_input())
            .map_or("input", |l| l.name());
        let show = |shapes: &mut dyn Iterator<Item = &[usize]>| shapes.map(keras_shape).collect::<Vec<_>>().join(", ");
        Err(Error::LayerShape {
            layer: first.to_string(),
            expected: show(&mut built.iter().map(Vec::as_slice)),
            received: show(&mut input_shapes.iter().copied()),
        })
    }

    /// The input shapes the model's input layers declare (`Input`, or `input_shape=` on the
    /// first layer), when every input has one.
    fn declared_input_shapes(&self) -> Option<Vec<Vec<usize>>> {
        (0..self.network.inputs)
            .map(|i| {
                let call = self
                    .network
                    .calls
                    .iter()
                    .find(|c| c.inputs == [Source::ModelInput(i)])?;
                self.network.layers[call.layer]
                    .declared_input_shape()
                    .map(<[usize]>::to_vec)
            })
            .collect()
    }

    /// Builds from the declared input shapes if the model is not built yet; true if built.
    fn build_if_declared(&mut self) -> Result<bool> {
        if !self.network.input_shapes.is_empty() {
            return Ok(true);
        }
        match self.declared_input_shapes() {
            Some(shapes) => {
                let borrowed: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
                self.build_inputs(&borrowed).map(|_| true)
            }
            None => Ok(false),
        }
    }

    /// Chooses the optimizer, loss and metrics, as Keras's `compile`.
    ///
    /// Each can be given by name (`"adam"`, `"sparse_categorical_crossentropy"`, `["accuracy"]`)
    /// or by value (`Adam::new(0.01)`, `Loss::MeanSquaredError`). A model with several outputs
    /// uses the loss and metrics for each of them (see [`Model::compile_outputs`] for one
    /// loss per output).
    pub fn compile(&mut self, optimizer: impl IntoOptimizer, loss: impl IntoLoss, metrics: &[&str]) -> Result<()> {
        let loss = loss.into_loss()?;
        let outputs = self.network.outputs.len().max(1);
        self.compile_outputs(optimizer, &vec![loss; outputs], &[], &vec![metrics; outputs])
    }

    /// Keras's `compile(loss=[...], loss_weights=[...], metrics=[[...], ...])` for a model with
    /// several outputs: one loss per output (in [`Model::output_names`]'s order), the
    /// weights of the training objective `Σ weight × loss` (empty: all 1), and the metrics of
    /// each output (empty: none).
    ///
    /// ```
    /// use strata::prelude::*;
    /// # fn main() -> strata::Result<()> {
    /// let input = Input::node(&[8]);
    /// let hidden = Dense::new(16).activation("relu").call(&input)?;
    /// let class = Dense::new(3).activation("softmax").name("class").call(&hidden)?;
    /// let value = Dense::new(1).name("value").call(&hidden)?;
    /// let mut model = Model::functional_multi(&[&input], &[&class, &value])?;
    /// model.compile_outputs("adam", &["sparse_categorical_crossentropy", "mse"], &[1.0, 0.5], &[&["accuracy"], &[]])?;
    /// # Ok(()) }
    /// ```
    pub fn compile_outputs<L: IntoLoss + Clone>(
        &mut self,
        optimizer: impl IntoOptimizer,
        losses: &[L],
        loss_weights: &[f32],
        metrics: &[&[&str]],
    ) -> Result<()> {
        let optimizer = optimizer.into_optimizer()?;
        optimizer.validate()?;
        let losses = losses
            .iter()
            .map(|l| l.clone().into_loss())
            .collect::<Result<Vec<Loss>>>()?;
        let names: Vec<String> = self.output_names().iter().map(|n| n.to_string()).collect();
        let outputs = names.len().max(1);
        let (loss_weights, metrics) = per_output_arguments(&names, &losses, loss_weights, metrics)?;
        self.build_if_declared()?;
        // Keras: a change of `trainable` takes effect when the model is compiled again.
        self.apply_trainable_flags();
        let mut accuracies = Vec::with_capacity(outputs);
        let mut other_metrics = Vec::with_capacity(outputs);
        for (output, (names, loss)) in metrics.iter().zip(&losses).enumerate() {
            let width = self.output_shapes().get(output).map_or(0, |s| s.iter().product());
            let mut accuracy = None;
            let mut others: Vec<(Metric, &'static str)> = Vec::new();
            for name in names.iter() {
                match Metric::resolve(name) {
                    Some(metric) if !others.iter().any(|(_, key)| *key == metric.1) => others.push(metric),
                    Some(_) => {}
                    None => accuracy = Some(Accuracy::resolve(name, *loss, width)?),
                }
            }
            accuracies.push(accuracy);
            other_metrics.push(others);
        }
        self.training.compiled = Some(Compiled {
            optimizer,
            losses,
            loss_weights,
            accuracies,
            metrics: other_metrics,
        });
        Ok(())
    }

    /// The optimizer chosen by `compile`.
    pub fn optimizer(&self) -> Option<&dyn Optimizer> {
        self.training.compiled.as_ref().map(|c| c.optimizer.as_ref())
    }

    /// The optimizer, writable (to change its learning rate).
    pub fn optimizer_mut(&mut self) -> Option<&mut (dyn Optimizer + 'static)> {
        self.training.compiled.as_mut().map(|c| c.optimizer.as_mut())
    }

    /// `compile`'s settings in Keras's vocabulary (for saving), if compiled. With several
    /// outputs, `loss`, `from_logits` and `metrics` are lists (one entry per output) and
    /// `loss_weights` is added; `label_smoothing` (a number, or a list with several outputs) only
    /// where a loss smooths its labels.
    pub fn compile_config(&self) -> Option<serde_json::Value> {
        let compiled = self.training.compiled.as_ref()?;
        let optimizer = &compiled.optimizer;
        let metrics = |output: usize| -> Vec<&str> {
            let accuracy = compiled.accuracies[output].iter().map(|_| "accuracy");
            accuracy
                .chain(compiled.metrics[output].iter().map(|&(_, key)| key))
                .collect()
        };
        let optimizer = serde_json::json!({"class_name": optimizer.class_name(), "config": optimizer.config()});
        let smoothed = compiled.losses.iter().any(|loss| loss.label_smoothing() != 0.0);
        let mut config = if let [loss] = compiled.losses.as_slice() {
            serde_json::json!({
                "optimizer": optimizer,
                "loss": loss.name(),
                "from_logits": loss.from_logits(),
                "metrics": metrics(0),
            })
        } else {
            serde_json::json!({
                "optimizer": optimizer,
                "loss": compiled.losses.iter().map(Loss::name).collect::<Vec<_>>(),
                "from_logits": compiled.losses.iter().map(Loss::from_logits).collect::<Vec<_>>(),
                "loss_weights": compiled.loss_weights,
                "metrics": (0..compiled.losses.len()).map(metrics).collect::<Vec<_>>(),
            })
        };
        if smoothed {
            let smoothing: Vec<f32> = compiled.losses.iter().map(Loss::label_smoothing).collect();
            config["label_smoothing"] = match smoothing.as_slice() {
                [one] => serde_json::json!(one),
                many => serde_json::json!(many),
            };
        }
        Some(config)
    }

    /// The loss chosen by `compile` (the first output's, with several outputs).
    pub fn loss(&self) -> Option<Loss> {
        self.training.compiled.as_ref().and_then(|c| c.losses.first().copied())
    }

    /// The loss of each output, chosen by `compile`.
    pub fn losses(&self) -> Option<&[Loss]> {
        self.training.compiled.as_ref().map(|c| c.losses.as_slice())
    }

    /// Keras's model config, for saving the architecture: the layer list of a `Sequential`, or
    /// for a functional model the layers with their inbound nodes (Keras 2's `to_json` layout).
    pub fn config(&self) -> serde_json::Value {
        if !self.network.functional {
            let layers: Vec<_> = self
                .network
                .layers
                .iter()
                .map(|l| serde_json::json!({"class_name": l.class_name(), "config": l.config()}))
                .collect();
            let mut config =
                serde_json::json!({"class_name": "Sequential", "config": {"name": self.name, "layers": layers}});
            if let Some(nested) = self.nested_models_json() {
                config["config"]["nested_models"] = nested;
            }
            return config;
        }
        let layers: Vec<_> = self
            .network
            .layers
            .iter()
            .enumerate()
            .map(|(index, layer)| {
                serde_json::json!({
                    "class_name": layer.class_name(),
                    "name": layer.name(),
                    "config": layer.config(),
                    "inbound_nodes": self.inbound_nodes(index),
                })
            })
            .collect();
        // Keras's [layer name, node index, tensor index] of a call.
        let reference = |output: usize| {
            let (call, tensor) = self.output_origin(output);
            let (name, node) = self.call_reference(call);
            serde_json::json!([name, node, tensor])
        };
        let input_layers: Vec<_> = (0..self.network.inputs)
            .filter_map(|i| self.network.calls.iter().find(|c| c.inputs == [Source::ModelInput(i)]))
            .map(|c| reference(c.first_output))
            .collect();
        let output_layers: Vec<_> = self.network.outputs.iter().map(|&c| reference(c)).collect();
        let mut config = serde_json::json!({"class_name": "Functional", "config": {
            "name": self.name,
            "layers": layers,
            "input_layers": input_layers,
            "output_layers": output_layers,
        }});
        if let Some(nested) = self.nested_models_json() {
            config["config"]["nested_models"] = nested;
        }
        config
    }

    /// Keras 2's `inbound_nodes` of layer `index`: per call of the layer, the `[name, node,
    /// tensor, {}]` references of the outputs it reads (none for an input layer).
    fn inbound_nodes(&self, index: usize) -> Vec<serde_json::Value> {
        let reference = |source: &Source| match *source {
            Source::ModelInput(_) => None,
            Source::Output(output) => {
                let (call, tensor) = self.output_origin(output);
                let (name, node) = self.call_reference(call);
                Some(serde_json::json!([name, node, tensor, {}]))
            }
        };
        let layer = &self.network.layers[index];
        self.network
            .calls
            .iter()
            .filter(|c| c.layer == index && !layer.is_input())
            .map(|call| call.inputs.iter().filter_map(reference).collect::<Vec<_>>().into())
            .collect()
    }
}

/// Checks `compile_outputs`'s arguments against the outputs `names`: one loss per output, and
/// returns one loss weight and one list of metrics per output.
fn per_output_arguments<'a>(
    names: &[String],
    losses: &[Loss],
    loss_weights: &[f32],
    metrics: &[&'a [&'a str]],
) -> Result<(Vec<f32>, Vec<&'a [&'a str]>)> {
    let outputs = names.len().max(1);
    if losses.len() < outputs {
        return Err(Error::Usage(format!(
            "the output '{}' has no loss: give one loss per output ({} outputs: {})",
            names[losses.len()],
            outputs,
            names.join(", ")
        )));
    }
    if losses.len() > outputs {
        return Err(Error::Usage(format!(
            "{} losses for {outputs} output(s) ({}): give one loss per output",
            losses.len(),
            names.join(", ")
        )));
    }
    let loss_weights = match loss_weights {
        [] => vec![1.0; outputs],
        weights if weights.len() == outputs => weights.to_vec(),
        weights => {
            return Err(Error::invalid(
                "loss_weights",
                format!("{weights:?}"),
                format!("give one weight per output ({outputs}: {})", names.join(", ")),
            ));
        }
    };
    if let Some(bad) = loss_weights.iter().find(|w| !w.is_finite() || **w < 0.0) {
        return Err(Error::invalid("loss_weights", bad, "must be finite and not negative"));
    }
    let metrics: Vec<&[&str]> = match metrics {
        [] => vec![&[]; outputs],
        all if all.len() == outputs => all.to_vec(),
        all => {
            return Err(Error::Usage(format!(
                "metrics for {} outputs, but the model has {outputs} ({}): give one list per output",
                all.len(),
                names.join(", ")
            )));
        }
    };
    Ok((loss_weights, metrics))
}

/// A loss given by name (`"mse"`) or by value (`Loss::MeanSquaredError`).
pub trait IntoLoss {
    /// The loss, or an error for an unknown name.
    fn into_loss(self) -> Result<Loss>;
}

impl IntoLoss for &str {
    fn into_loss(self) -> Result<Loss> {
        Loss::from_name(self)
    }
}

impl IntoLoss for Loss {
    fn into_loss(self) -> Result<Loss> {
        Ok(self)
    }
}

/// An optimizer given by name (`"adam"`) or by value (`Adam::new(0.01)`).
pub trait IntoOptimizer {
    /// The boxed optimizer, or an error for an unknown name.
    fn into_optimizer(self) -> Result<Box<dyn Optimizer>>;
}

impl IntoOptimizer for &str {
    fn into_optimizer(self) -> Result<Box<dyn Optimizer>> {
        optimizers::from_name(self)
    }
}

impl IntoOptimizer for Box<dyn Optimizer> {
    fn into_optimizer(self) -> Result<Box<dyn Optimizer>> {
        Ok(self)
    }
}

macro_rules! into_optimizer {
    ($($t:ty),*) => {$(
        impl IntoOptimizer for $t {
            fn into_optimizer(self) -> Result<Box<dyn Optimizer>> {
                Ok(Box::new(self))
            }
        }
    )*};
}
into_optimizer!(
    optimizers::Sgd,
    optimizers::Adam,
    optimizers::AdamW,
    optimizers::RMSprop,
    optimizers::Adagrad
);

//! `return_state`: a recurrent layer's final states as separate nodes of a functional model.
//!
//! Keras's `outputs, h, c = LSTM(64, return_state=True)(x)` gives one layer three outputs.
//! strata's layers have one output each, so [`Recurrent::call_with_state`] adds one
//! [`RecurrentState`] layer per state: it reads the sequence (and, to be ordered after it, the
//! recurrent layer's output), uses the recurrent layer's weights and dropout masks, and outputs
//! `h_T` or the LSTM's `c_T`. Each state layer runs the recurrence again (the same values); its
//! gradient flows into the shared weights, so training is exact.

use super::Layer;
use super::recurrent::{GruCell, LstmCell, Recurrent, RecurrentKind, SimpleRnnCell, configured, units};
use crate::autograd::{Cell, Graph, ParamId, ParamStore, Var};
use crate::error::{Error, Result, keras_shape};
use crate::model::{LayerCall, Node};
use crate::rng::Rng;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Which final state a [`RecurrentState`] outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// The last hidden state `h_T` (every cell).
    Hidden,
    /// The LSTM's last cell state `c_T`.
    Cell,
}

/// The final state of a recurrent layer of the same model (see the module docs).
#[derive(Clone, Debug)]
pub struct RecurrentState<K: RecurrentKind> {
    name: String,
    source: Recurrent<K>,
    state: State,
    weights: Option<([ParamId; 2], Option<ParamId>)>,
}

/// Names recurrent layers that give their states uniquely, so their state layers find them.
static STATEFUL: AtomicUsize = AtomicUsize::new(1);

impl<K: RecurrentKind> Recurrent<K> {
    /// Keras's `return_state=True` in the functional API: calls the layer on `x` and returns
    /// `[output, h]`, or `[output, h, c]` for an LSTM (with `return_sequences` off, `output` and
    /// `h` hold the same values, as in Keras).
    ///
    /// ```
    /// use strata::prelude::*;
    /// # fn main() -> strata::Result<()> {
    /// let x = Input::node(&[5, 3]);
    /// let [output, h, c] = <[Node; 3]>::try_from(LSTM::new(4).call_with_state(&x)?).unwrap();
    /// assert_eq!((h.shape(), c.shape()), (&[4][..], &[4][..]));
    /// # let _ = output; Ok(()) }
    /// ```
    pub fn call_with_state(mut self, x: &Node) -> Result<Vec<Node>> {
        if self.name.is_empty() {
            let base = super::base_name(K::CLASS);
            self.name = format!("{base}_{}", STATEFUL.fetch_add(1, Ordering::Relaxed));
        }
        let source = self.clone();
        let output = self.call(x)?;
        let states: &[State] = if K::CELL == Cell::Lstm {
            &[State::Hidden, State::Cell]
        } else {
            &[State::Hidden]
        };
        let mut nodes = vec![output.clone()];
        for &state in states {
            let layer = RecurrentState {
                name: String::new(),
                source: source.clone(),
                state,
                weights: None,
            };
            nodes.push(layer.call_many(&[x, &output])?);
        }
        Ok(nodes)
    }
}

impl<K: RecurrentKind> Layer for RecurrentState<K> {
    fn class_name(&self) -> &'static str {
        "RecurrentState"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
    }

    fn build(&mut self, _: &[usize], _: &mut ParamStore, _: &mut Rng) -> Result<Vec<usize>> {
        Err(Error::Usage(format!(
            "layer '{}' reads two inputs: the sequence and the output of '{}'",
            self.name, self.source.name
        )))
    }

    fn build_multi(&mut self, input_shapes: &[&[usize]], params: &mut ParamStore, _: &mut Rng) -> Result<Vec<usize>> {
        let [sequence, _] = input_shapes else {
            return self.build(&[], params, &mut Rng::new(0));
        };
        let &[_, features] = *sequence else {
            return Err(Error::LayerShape {
                layer: self.name.clone(),
                expected: "(None, timesteps, features): a 3-D input of sequences".into(),
                received: keras_shape(sequence),
            });
        };
        self.source.features = features;
        // The source layer is built first (its output is this layer's second input); a scratch
        // build while the graph is drawn has no weights yet, and forward says so if it runs.
        let find = |weight: &str| {
            let name = format!("{}/{weight}", self.source.name);
            params.ids().find(|&id| params.name(id) == name)
        };
        self.weights = match (find("kernel"), find("recurrent_kernel")) {
            (Some(kernel), Some(recurrent)) => Some(([kernel, recurrent], find("bias"))),
            _ => None,
        };
        Ok(vec![self.source.units])
    }

    fn forward(&self, _: &mut Graph, _: Var) -> Result<Var> {
        Err(Error::Usage(format!("layer '{}' reads two inputs", self.name)))
    }

    fn forward_multi(&self, graph: &mut Graph, inputs: &[Var]) -> Result<Var> {
        let (weights, bias) = self.weights.ok_or_else(|| {
            Error::Usage(format!(
                "the state layer '{}' finds no weights of '{}' in this model",
                self.name, self.source.name
            ))
        })?;
        let mut options = self.source.options()?;
        options.return_sequences = false;
        options.align_output = false;
        options.emit_cell_state = self.state == State::Cell;
        self.source.run(graph, inputs[0], weights, bias, options)
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "state": if self.state == State::Cell { "c" } else { "h" },
            "layer": {"class_name": K::CLASS, "config": self.source.keras_config()},
        })
    }
}

/// A RecurrentState from its config: the source layer's config and which state.
pub(super) fn from_config(config: &serde_json::Value) -> Result<Box<dyn Layer>> {
    let inner = config
        .get("layer")
        .ok_or_else(|| Error::Data("RecurrentState needs the \"layer\" whose state it gives".into()))?;
    let class = inner
        .get("class_name")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    let empty = serde_json::Value::Object(Default::default());
    let layer_config = inner.get("config").unwrap_or(&empty);
    let state = match config.get("state").and_then(serde_json::Value::as_str) {
        Some("c") if class == "LSTM" => State::Cell,
        Some("h") | None => State::Hidden,
        Some(other) => return Err(Error::Data(format!("RecurrentState of {class}: no state \"{other}\""))),
    };
    fn state_of<K: RecurrentKind>(config: &serde_json::Value, state: State) -> Result<Box<dyn Layer>> {
        let mut source = configured(Recurrent::<K>::new(units(config, K::CLASS)?), config)?;
        source.name = config
            .get("name")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_string();
        Ok(Box::new(RecurrentState {
            name: String::new(),
            source,
            state,
            weights: None,
        }))
    }
    match class {
        "SimpleRNN" => state_of::<SimpleRnnCell>(layer_config, state),
        "LSTM" => state_of::<LstmCell>(layer_config, state),
        "GRU" => state_of::<GruCell>(layer_config, state),
        other => Err(Error::Data(format!("RecurrentState of {other}: not a recurrent layer"))),
    }
}

//! `PositionIds`: the position of each token counted as RoBERTa-style models count it, skipping
//! padding, for the position embedding that follows.

use super::{Layer, LayerArgs, args};
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::common::layer_builders;

/// Position ids from token ids `(batch, steps)`, as Hugging Face's RoBERTa, XLM-R and CamemBERT
/// make them (`create_position_ids_from_input_ids`): a token that is not `padding_idx` gets
/// `padding_idx + n`, `n` the count of non-padding tokens up to and including it; a padding
/// token gets `padding_idx`. The ids are read as whole numbers stored in floats (strata's token
/// ids); the output is the same shape, whole numbers in floats, for an `Embedding` of
/// positions. No weights; nothing flows back through it (its output is piecewise constant).
///
/// ```
/// use strata::layers::PositionIds;
/// let positions = PositionIds::new(1);
/// ```
#[derive(Clone, Debug)]
pub struct PositionIds {
    args: LayerArgs,
    padding_idx: i64,
}

impl PositionIds {
    /// Positions counted after `padding_idx`, the id of the padding token.
    pub fn new(padding_idx: i64) -> Self {
        PositionIds {
            args: LayerArgs::default(),
            padding_idx,
        }
    }

    /// The layer from its `get_config()` keys.
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        let padding_idx = args::required_size(config, "padding_idx", "PositionIds")?;
        let mut layer = PositionIds::new(padding_idx as i64);
        layer.args = LayerArgs::with_input_shape(config)?;
        Ok(layer)
    }

    /// The positions of one sample's `ids`, written into `out`.
    fn positions(&self, ids: &[f32], out: &mut [f32]) {
        let padding = self.padding_idx as f32;
        let mut count = 0.0f32;
        for (position, &id) in out.iter_mut().zip(ids) {
            if id == padding {
                *position = padding;
            } else {
                count += 1.0;
                *position = padding + count;
            }
        }
    }
}

layer_builders!(PositionIds, input_shape);

impl Layer for PositionIds {
    fn class_name(&self) -> &'static str {
        "PositionIds"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        match input_shape {
            [_] => Ok(input_shape.to_vec()),
            _ => Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: "(None, steps) token ids".into(),
                received: keras_shape(input_shape),
            }),
        }
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let shape = graph.dims(x);
        let steps = shape.get(1).copied().unwrap_or(0).max(1);
        let ids = graph.value(x).data().to_vec();
        Ok(graph.constant_with(|t| {
            t.resize_for(&shape);
            for (ids, out) in ids.chunks(steps).zip(t.data_mut().chunks_mut(steps)) {
                self.positions(ids, out);
            }
        }))
    }

    fn config(&self) -> serde_json::Value {
        self.args.config(serde_json::json!({ "padding_idx": self.padding_idx }))
    }
}

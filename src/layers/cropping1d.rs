//! `Cropping1D`: steps cut from the start and end of a sequence. A causal language model reads
//! its prediction for the next token from the last step: `Cropping1D((T - 1, 0))`, then
//! `Flatten`.

use super::{Layer, LayerArgs};
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::common::layer_builders;
use serde_json::Value;

/// Keras's `Cropping1D(cropping=(1, 1))` on `(batch, steps, features)`: drops `cropping.0`
/// steps at the start and `cropping.1` at the end.
#[derive(Clone, Debug)]
pub struct Cropping1D {
    args: LayerArgs,
    cropping: (usize, usize),
}

impl Cropping1D {
    /// Drops `start` steps at the start and `end` at the end.
    pub fn new(start: usize, end: usize) -> Self {
        Cropping1D {
            args: LayerArgs::default(),
            cropping: (start, end),
        }
    }

    /// The layer from Keras's `get_config()` keys (`cropping`: a number for both ends, or a
    /// pair).
    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        let (start, end) = sequence_ends(config, "cropping", "Cropping1D")?;
        let mut layer = Cropping1D::new(start, end);
        layer.args = LayerArgs::with_input_shape(config)?;
        Ok(layer)
    }
}

/// Keras's amounts for a sequence's two ends under `key`: one number for both, or a pair; 1
/// and 1 when absent (`Cropping1D`'s and `ZeroPadding1D`'s default).
pub(super) fn sequence_ends(config: &Value, key: &str, class_name: &str) -> Result<(usize, usize)> {
    let size = |v: &Value| v.as_u64().and_then(|n| usize::try_from(n).ok());
    let ends = match config.get(key) {
        None | Some(Value::Null) => Some((1, 1)),
        Some(Value::Array(pair)) if pair.len() == 2 => size(&pair[0]).zip(size(&pair[1])),
        Some(one) => size(one).map(|n| (n, n)),
    };
    ends.ok_or_else(|| {
        Error::Data(format!(
            "{class_name}'s \"{key}\" must be a non-negative integer or a pair of them, got {}",
            config[key]
        ))
    })
}

layer_builders!(Cropping1D, input_shape);

impl Layer for Cropping1D {
    fn class_name(&self) -> &'static str {
        "Cropping1D"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let (start, end) = self.cropping;
        match input_shape {
            [steps, features] if start.checked_add(end).is_some_and(|cut| cut < *steps) => {
                Ok(vec![steps - start - end, *features])
            }
            _ => Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: format!("(None, steps > {start} + {end}, features)"),
                received: keras_shape(input_shape),
            }),
        }
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let shape = graph.shape(x).to_vec();
        let kept = self.output_shape(shape.get(1..).unwrap_or(&[]))?[0];
        graph.slice(x, 1, self.cropping.0, kept)
    }

    fn config(&self) -> Value {
        self.args
            .config(serde_json::json!({ "cropping": [self.cropping.0, self.cropping.1] }))
    }
}

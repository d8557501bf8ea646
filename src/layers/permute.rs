//! `Permute`: the axes of each sample in another order (a sequence's steps and features
//! swapped, an image's channels moved first).

use super::{Layer, LayerArgs};
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result, keras_shape};
use crate::kernels::MAX_PERMUTED_AXES;
use crate::layers::common::layer_builders;
use serde_json::{Value, json};

/// Keras's `Permute(dims)`: output axis `i` (counting from 1 after the batch) is the input's
/// axis `dims[i − 1]`, so `Permute((2, 1))` turns `(None, steps, features)` into `(None,
/// features, steps)`. `dims` lists `1..=rank` in some order, at most five axes. No weights.
///
/// ```
/// use strata::layers::Permute;
/// let swap = Permute::new(&[2, 1]);
/// ```
#[derive(Clone, Debug)]
pub struct Permute {
    args: LayerArgs,
    dims: Vec<usize>,
}

impl Permute {
    /// Puts the sample's axes in the order `dims` (1-based, as Keras counts them).
    pub fn new(dims: &[usize]) -> Self {
        Permute {
            args: LayerArgs::default(),
            dims: dims.to_vec(),
        }
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        let dims = config
            .get("dims")
            .and_then(Value::as_array)
            .and_then(|items| {
                items
                    .iter()
                    .map(|d| d.as_u64().map(|d| d as usize))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| Error::Data("Permute needs \"dims\", a list of axes counted from 1".into()))?;
        let mut layer = Permute::new(&dims);
        layer.args = LayerArgs::with_input_shape(config)?;
        Ok(layer)
    }

    /// Whether `dims` lists `1..=len` once each.
    fn valid_dims(&self) -> bool {
        let mut sorted = self.dims.clone();
        sorted.sort_unstable();
        sorted.iter().copied().eq(1..=self.dims.len()) && self.dims.len() < MAX_PERMUTED_AXES
    }
}

layer_builders!(Permute, input_shape);

impl Layer for Permute {
    fn class_name(&self) -> &'static str {
        "Permute"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        if !self.valid_dims() {
            return Err(Error::invalid(
                "dims",
                format!("{:?}", self.dims),
                format!(
                    "layer '{}' (Permute): the axes must be 1, 2, ... (at most {}) in some order, each once",
                    self.args.name,
                    MAX_PERMUTED_AXES - 1
                ),
            ));
        }
        if input_shape.len() != self.dims.len() {
            return Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: format!("a sample of {} axes (dims {:?})", self.dims.len(), self.dims),
                received: keras_shape(input_shape),
            });
        }
        Ok(self.dims.iter().map(|&d| input_shape[d - 1]).collect())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let axes: Vec<usize> = std::iter::once(0).chain(self.dims.iter().copied()).collect();
        graph.permute(x, &axes)
    }

    fn config(&self) -> Value {
        self.args.config(json!({ "dims": self.dims }))
    }
}

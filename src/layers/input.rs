//! `Input`: declares the per-sample shape a model takes.

use super::{Layer, args};
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::LayerArgs;

/// Declares the shape of one sample, without the batch axis: `Input::new(&[28, 28])` is
/// Keras's `keras.Input(shape=(28, 28))`.
#[derive(Clone, Debug)]
pub struct Input {
    /// Each size, `None` where the data decides it.
    dims: Vec<Option<usize>>,
    /// The sizes, when all are declared.
    shape: Option<Vec<usize>>,
    args: LayerArgs,
}

impl Input {
    /// An input of one sample's `shape`.
    pub fn new(shape: &[usize]) -> Self {
        Input::with_dims(&shape.iter().map(|&d| Some(d)).collect::<Vec<_>>())
    }

    /// An input whose sizes may be left to the data, as Keras's `keras.Input(shape=(None,))`
    /// for sequences of any length: `None` there. A model with such an input is built when it
    /// first meets data (`fit`, `predict`), for that data's sizes.
    ///
    /// ```
    /// let tokens = strata::layers::Input::with_dims(&[None]);
    /// ```
    pub fn with_dims(dims: &[Option<usize>]) -> Self {
        Input {
            dims: dims.to_vec(),
            shape: dims.iter().copied().collect(),
            args: LayerArgs::default(),
        }
    }
}

impl Input {
    /// The layer from Keras's `get_config()` keys (`shape`, or `batch_shape` with the batch
    /// axis), `null` sizes left to the data.
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        let dims = args::input_dims(config)?
            .ok_or_else(|| Error::Data("InputLayer needs \"shape\" or \"batch_shape\"".into()))?;
        Ok(Input::with_dims(&dims))
    }
}

impl Layer for Input {
    fn class_name(&self) -> &'static str {
        "InputLayer"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let fits = input_shape.len() == self.dims.len()
            && self
                .dims
                .iter()
                .zip(input_shape)
                .all(|(dim, &size)| dim.is_none_or(|d| d == size));
        if !fits {
            let expected: Vec<String> = self
                .dims
                .iter()
                .map(|d| d.map_or("None".into(), |d| d.to_string()))
                .collect();
            return Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: format!("(None, {})", expected.join(", ")),
                received: keras_shape(input_shape),
            });
        }
        Ok(input_shape.to_vec())
    }

    fn forward_one(&self, _: &mut Graph, x: Var) -> Result<Var> {
        Ok(x)
    }

    fn declared_input_shape(&self) -> Option<&[usize]> {
        self.shape.as_deref()
    }

    fn is_input(&self) -> bool {
        true
    }

    fn config(&self) -> serde_json::Value {
        let mut batch_shape = vec![serde_json::Value::Null];
        batch_shape.extend(self.dims.iter().map(|&d| d.map_or(serde_json::Value::Null, Into::into)));
        self.args.config(serde_json::json!({ "batch_shape": batch_shape }))
    }
}

//! `Reshape`: gives each sample a new shape with the same number of values.

use super::Layer;
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::LayerArgs;
use crate::layers::common::layer_builders;
use crate::tensor::{Dims, budgeted_numel, checked_numel};

/// Reshapes each sample to `target_shape` (without the batch axis), as Keras's
/// `Reshape(target_shape)`; row-major order is kept. One size may be left to infer from the
/// input (Keras's `-1`). Has no weights.
#[derive(Clone, Debug)]
pub struct Reshape {
    args: LayerArgs,
    /// The sizes; `None` is the one inferred.
    target_shape: Vec<Option<usize>>,
}

impl Reshape {
    /// Reshapes samples to `target_shape`, e.g. `&[28, 28, 1]`.
    pub fn new(target_shape: &[usize]) -> Self {
        Reshape {
            args: LayerArgs::default(),
            target_shape: target_shape.iter().map(|&size| Some(size)).collect(),
        }
    }

    /// Reshapes samples to `target_shape`, where one `None` (Keras's `-1`) takes the size that
    /// makes the values fit: `Reshape::inferring(&[None, Some(2)])` is Keras's
    /// `Reshape((-1, 2))`.
    pub fn inferring(target_shape: &[Option<usize>]) -> Self {
        Reshape {
            args: LayerArgs::default(),
            target_shape: target_shape.to_vec(),
        }
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        let invalid = |value: &serde_json::Value| {
            Error::Data(format!(
                "Reshape's \"target_shape\" must list positive sizes and at most one -1, got {value}"
            ))
        };
        let value = config
            .get("target_shape")
            .ok_or_else(|| Error::Data("Reshape needs \"target_shape\"".into()))?;
        let items = value.as_array().ok_or_else(|| invalid(value))?;
        let target = items
            .iter()
            .map(|item| match (item.as_u64(), item.as_i64()) {
                (Some(size), _) if size > 0 => usize::try_from(size).map(Some).map_err(|_| invalid(value)),
                (_, Some(-1)) => Ok(None),
                _ => Err(invalid(value)),
            })
            .collect::<Result<Vec<_>>>()?;
        if target.iter().filter(|size| size.is_none()).count() > 1 {
            return Err(invalid(value));
        }
        Ok(Reshape {
            args: LayerArgs::with_input_shape(config)?,
            ..Reshape::inferring(&target)
        })
    }

    /// `target_shape` as Keras writes it, `-1` for the inferred size.
    fn keras_target(&self) -> Vec<serde_json::Value> {
        let size = |size: &Option<usize>| size.map_or(serde_json::json!(-1), |s| serde_json::json!(s));
        self.target_shape.iter().map(size).collect()
    }

    /// `target_shape` as a Keras tuple, `(-1, 2)`.
    fn shown(&self) -> String {
        let size = |size: &Option<usize>| size.map_or("-1".to_string(), |s| s.to_string());
        let sizes: Vec<String> = self.target_shape.iter().map(size).collect();
        format!("({})", sizes.join(", "))
    }

    fn shape_error(&self, expected: String, input_shape: &[usize]) -> Error {
        Error::LayerShape {
            layer: self.args.name.clone(),
            expected,
            received: keras_shape(input_shape),
        }
    }
}

layer_builders!(Reshape, input_shape);

impl Layer for Reshape {
    fn class_name(&self) -> &'static str {
        "Reshape"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let shown = || self.shown();
        if self.target_shape.iter().filter(|size| size.is_none()).count() > 1 {
            return Err(Error::invalid(
                "target_shape",
                shown(),
                format!("layer '{}' (Reshape) can infer one size only", self.args.name),
            ));
        }
        let known: Vec<usize> = self.target_shape.iter().flatten().copied().collect();
        // Checked: [2^63 + 392, 2] holds 784 values in wrapping arithmetic.
        let known_values = budgeted_numel(
            || format!("layer '{}' (Reshape) to {}", self.args.name, shown()),
            &known,
        )?;
        let values = checked_numel(input_shape);
        let inferred = self.target_shape.iter().any(Option::is_none);
        let fits = match (values, inferred) {
            (Some(values), true) => known_values > 0 && values.is_multiple_of(known_values),
            (Some(values), false) => values == known_values,
            (None, _) => false,
        };
        if !fits {
            let expected = match inferred {
                true => format!(
                    "a multiple of {known_values} values per sample to reshape to {}",
                    shown()
                ),
                false => format!("{known_values} values per sample to reshape to {}", shown()),
            };
            return Err(self.shape_error(expected, input_shape));
        }
        let rest = values.unwrap_or_default() / known_values.max(1);
        Ok(self.target_shape.iter().map(|size| size.unwrap_or(rest)).collect())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        // The sizes were checked when the model was built; the inferred one is what is left.
        let input = graph.shape(x);
        let known: usize = self.target_shape.iter().flatten().product();
        let rest = input[1..].iter().product::<usize>() / known.max(1);
        let mut shape = Dims::from_slice(&input[..1]);
        shape.extend(self.target_shape.iter().map(|size| size.unwrap_or(rest)));
        graph.reshape(x, &shape)
    }

    fn config(&self) -> serde_json::Value {
        self.args
            .config(serde_json::json!({"target_shape": self.keras_target()}))
    }
}

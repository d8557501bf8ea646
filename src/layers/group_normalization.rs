//! `GroupNormalization`: each sample's channels cut into groups, each group normalized over
//! its channels and every position together (Wu & He, 2018), then scaled and shifted per
//! channel. One group is layer normalization over all of a sample's values; as many groups as
//! channels is instance normalization (`groups=-1`).

use super::normalization::{affine_params, affine_shapes, check_last_axis, last_axis_only};
use super::{Layer, LayerArgs, ParamShape, args};
use crate::autograd::{Graph, ParamId, ParamStore, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::common::layer_builders;
use crate::rng::Rng;

/// Keras's `GroupNormalization(groups=32, axis=-1, epsilon=0.001, center=True, scale=True)`:
/// the last axis's channels in `groups` groups of consecutive channels, each group of each
/// sample normalized to mean 0 and variance 1 over its channels and all positions, then
/// `gamma · x + beta` per channel. `groups` must divide the channels; `-1` makes one group per
/// channel (instance normalization). The same in training and inference; a mask passes on.
///
/// ```
/// use strata::prelude::*;
/// use strata::layers::GroupNormalization;
/// let mut model: Model = Sequential::new();
/// model.add(Input::new(&[8, 8, 16])).add(GroupNormalization::new(4));
/// model.compile("adam", "mse", &[]).unwrap();
/// assert_eq!(model.count_params(), 32); // gamma and beta, one per channel
/// ```
#[derive(Clone, Debug)]
pub struct GroupNormalization {
    args: LayerArgs,
    /// Keras's `groups`: a positive count, or -1 for one group per channel.
    groups: i64,
    /// Keras's `axis`: -1, or the last axis counted with the batch.
    axis: i64,
    epsilon: f32,
    center: bool,
    scale: bool,
    gamma: Option<ParamId>,
    beta: Option<ParamId>,
}

impl GroupNormalization {
    /// Group normalization with `groups` groups (Keras's default is 32; -1: one per channel)
    /// and Keras's other defaults.
    pub fn new(groups: i64) -> Self {
        GroupNormalization {
            args: LayerArgs::default(),
            groups,
            axis: -1,
            epsilon: 1e-3,
            center: true,
            scale: true,
            gamma: None,
            beta: None,
        }
    }

    /// Added to each group's variance before its square root. Defaults to 0.001.
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Whether to add the learned offset `beta`. Defaults to true.
    pub fn center(mut self, center: bool) -> Self {
        self.center = center;
        self
    }

    /// Whether to multiply by the learned scale `gamma`. Defaults to true.
    pub fn scale(mut self, scale: bool) -> Self {
        self.scale = scale;
        self
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        let groups = match config.get("groups") {
            None | Some(serde_json::Value::Null) => 32,
            Some(value) => value
                .as_i64()
                .ok_or_else(|| Error::Data(format!("GroupNormalization's groups {value} is not a whole number")))?,
        };
        Ok(GroupNormalization {
            args: LayerArgs::with_input_shape(config)?,
            axis: last_axis_only("GroupNormalization", config)?,
            ..GroupNormalization::new(groups)
                .epsilon(args::number(config, "epsilon")?.unwrap_or(1e-3))
                .center(args::flag(config, "center", true)?)
                .scale(args::flag(config, "scale", true)?)
        })
    }

    /// The number of groups for `channels` channels, or the error naming the layer and shape
    /// when they do not divide them.
    fn group_count(&self, input_shape: &[usize]) -> Result<usize> {
        let channels = input_shape.last().copied().unwrap_or(0);
        let groups = match self.groups {
            -1 => channels,
            g => usize::try_from(g).unwrap_or(0),
        };
        if groups == 0 || channels == 0 || !channels.is_multiple_of(groups) {
            return Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: format!(
                    "(None, ..., channels) with channels a positive multiple of groups={}",
                    self.groups
                ),
                received: keras_shape(input_shape),
            });
        }
        Ok(groups)
    }
}

layer_builders!(GroupNormalization, input_shape);

impl Layer for GroupNormalization {
    fn class_name(&self) -> &'static str {
        "GroupNormalization"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        check_last_axis(&self.args.name, self.axis, input_shape)?;
        self.group_count(input_shape)?;
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(Error::invalid(
                "epsilon",
                self.epsilon,
                format!("layer '{}' needs epsilon > 0", self.args.name),
            ));
        }
        Ok(input_shape.to_vec())
    }

    fn param_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<ParamShape>> {
        let input_shape = super::only_input(&self.args.name, self.class_name(), input_shapes)?;
        self.output_shape(input_shape)?;
        let channels = input_shape[input_shape.len() - 1];
        Ok(affine_shapes(&self.args, channels, self.scale, self.center))
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], params: &mut ParamStore, _: &mut Rng) -> Result<()> {
        let input_shape = super::only_input(&self.args.name, self.class_name(), input_shapes)?;
        self.output_shape(input_shape)?;
        let channels = input_shape[input_shape.len() - 1];
        let settings = (channels, self.epsilon, self.scale, self.center);
        (self.gamma, self.beta) = affine_params(&self.args, settings, params)?;
        Ok(())
    }

    /// `(N, positions…, C)` as `(N, positions, groups, C/groups)`, each group's values brought
    /// together as one row (`(N·groups, positions·C/groups)`), layer-normalized without its
    /// affine part, put back, then scaled and shifted per channel.
    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let shape = graph.shape(x).to_vec();
        let groups = self.group_count(&shape[1..])?;
        let (batch, channels) = (shape[0], shape[shape.len() - 1]);
        let positions = shape[1..shape.len() - 1].iter().product::<usize>();
        let per_group = channels / groups;
        // With one group or one position, each group's values are already consecutive.
        let gathered = positions > 1 && groups > 1;
        let grouped = graph.reshape(x, &[batch, positions, groups, per_group])?;
        let grouped = if gathered {
            graph.permute(grouped, &[0, 2, 1, 3])?
        } else {
            grouped
        };
        let rows = graph.reshape(grouped, &[batch * groups, positions * per_group])?;
        let normalized = graph.layer_norm(rows, None, None, self.epsilon)?;
        let mut y = graph.reshape(normalized, &[batch, groups, positions, per_group])?;
        if gathered {
            y = graph.permute(y, &[0, 2, 1, 3])?;
        }
        let mut y = graph.reshape(y, &shape)?;
        if let Some(gamma) = self.gamma {
            let gamma = graph.param(gamma);
            y = graph.mul(y, gamma)?;
        }
        if let Some(beta) = self.beta {
            let beta = graph.param(beta);
            y = graph.add(y, beta)?;
        }
        graph.pass_mask(x, y);
        Ok(y)
    }

    fn params(&self) -> Vec<ParamId> {
        self.gamma.into_iter().chain(self.beta).collect()
    }

    fn config(&self) -> serde_json::Value {
        self.args.config(serde_json::json!({
            "groups": self.groups,
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
        }))
    }
}

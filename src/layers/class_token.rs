//! `ClassToken`: learned vectors put in front of a sequence, as Vision Transformers (ViT,
//! DeiT) and BERT-style classifiers do before their encoder, whose output at that position then
//! summarizes the whole sequence for the classifier head.

use super::{Layer, LayerArgs, ParamShape, args};
use crate::autograd::{Graph, ParamId, ParamStore, Var};
use crate::error::{Error, Result, keras_shape};
use crate::initializers::Initializer;
use crate::layers::common::layer_builders;
use crate::rng::Rng;

/// The `ClassToken` layer of vit-keras (and of PyTorch's ViT, `torch.cat([class_token.expand(N,
/// -1, -1), x], dim=1)`): `(batch, steps, features)` → `(batch, tokens + steps, features)`,
/// the first `tokens` steps the learned weight `cls (1, tokens, features)` (zeros at first,
/// as in vit-keras), the same for every sample.
///
/// ```
/// use strata::layers::ClassToken;
/// let class_token = ClassToken::new();
/// let class_and_distillation = ClassToken::new().tokens(2);
/// ```
#[derive(Clone, Debug)]
pub struct ClassToken {
    args: LayerArgs,
    tokens: usize,
    cls: Option<ParamId>,
}

impl Default for ClassToken {
    fn default() -> Self {
        Self::new()
    }
}

impl ClassToken {
    /// One learned token.
    pub fn new() -> Self {
        ClassToken {
            args: LayerArgs::default(),
            tokens: 1,
            cls: None,
        }
    }

    /// How many tokens go in front (1 for ViT, 2 for DeiT's class and distillation tokens).
    pub fn tokens(mut self, tokens: usize) -> Self {
        self.tokens = tokens;
        self
    }

    /// The layer from its `get_config()` keys (vit-keras writes none: one token).
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        let mut layer = ClassToken::new();
        if config.get("tokens").is_some() {
            layer.tokens = args::required_size(config, "tokens", "ClassToken")?;
        }
        layer.args = LayerArgs::with_input_shape(config)?;
        Ok(layer)
    }
}

layer_builders!(ClassToken, input_shape);

impl Layer for ClassToken {
    fn class_name(&self) -> &'static str {
        "ClassToken"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let [steps, features] = input_shape else {
            return Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: "(None, steps, features)".into(),
                received: keras_shape(input_shape),
            });
        };
        if self.tokens == 0 {
            return Err(Error::invalid(
                "tokens",
                self.tokens,
                format!("layer '{}' (ClassToken) needs 1 token or more", self.args.name),
            ));
        }
        super::check_weight_count(&self.args.name, &[self.tokens, *features])?;
        let steps = steps.checked_add(self.tokens).ok_or_else(|| Error::LayerShape {
            layer: self.args.name.clone(),
            expected: "a sequence short enough to take the tokens".into(),
            received: keras_shape(input_shape),
        })?;
        Ok(vec![steps, *features])
    }

    fn param_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<ParamShape>> {
        let input = super::only_input(&self.args.name, self.class_name(), input_shapes)?;
        self.output_shape(input)?;
        Ok(vec![ParamShape::new(
            vec![1, self.tokens, input[1]],
            self.args.trainable,
        )])
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], params: &mut ParamStore, rng: &mut Rng) -> Result<()> {
        let input = super::only_input(&self.args.name, self.class_name(), input_shapes)?;
        self.output_shape(input)?;
        let cls = Initializer::Zeros.initialize(&[1, self.tokens, input[1]], rng);
        let name = format!("{}/cls", self.args.name);
        self.cls = Some(params.add(name, cls, self.args.trainable));
        Ok(())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let id = self
            .cls
            .ok_or_else(|| Error::Usage(format!("layer '{}' used before it was built", self.args.name)))?;
        let batch = graph.dims(x)[0];
        let cls = graph.param(id);
        let tokens = super::position::repeated_over_batch(graph, cls, batch)?;
        graph.concat(tokens, x, 1)
    }

    fn params(&self) -> Vec<ParamId> {
        self.cls.into_iter().collect()
    }

    fn config(&self) -> serde_json::Value {
        self.args.config(serde_json::json!({ "tokens": self.tokens }))
    }
}

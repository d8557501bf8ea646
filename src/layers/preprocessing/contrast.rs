//! [`RandomContrast`], as `keras.layers.RandomContrast`.

use super::{IntoFactor, Layer, bad_argument, check_after_input, check_range, factor_config};
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result};
use crate::layers::common::layer_builders;
use crate::layers::{LayerArgs, args};
use crate::rng::hash_name;
use rayon::prelude::*;
use serde_json::{Value, json};

/// Scales each training image's contrast by its own random factor, as `RandomContrast(factor,
/// value_range=(0, 255), seed=None)`: every channel becomes `(x − mean) · c + mean`, its mean
/// taken over the image, with `c` drawn from `[1 − lower, 1 + upper]`, then clipped to
/// `value_range`. `factor=0.2` draws `c` from [0.8, 1.2], as Keras documents (its code reads a
/// single number as `(0, f)`; a saved pair means the same in both). The identity at inference.
///
/// ```
/// use strata::layers::RandomContrast;
/// let contrast = RandomContrast::new(0.2).value_range(0.0, 1.0);
/// ```
#[derive(Clone, Debug)]
pub struct RandomContrast {
    args: LayerArgs,
    factor: (f32, f32),
    value_range: (f32, f32),
    seed: Option<u64>,
}

impl RandomContrast {
    /// Contrast factors drawn from `[1 − lower, 1 + upper]` for `factor` `f` (meaning `(f, f)`)
    /// or `(lower, upper)`, each within [0, 1].
    pub fn new(factor: impl IntoFactor) -> Self {
        let (lower, upper) = factor.into_factor();
        // `IntoFactor` reads one number as (−f, f); here the range's ends are distances from 1.
        let lower = if lower == -upper { upper } else { lower };
        RandomContrast {
            args: LayerArgs::default(),
            factor: (lower, upper),
            value_range: (0.0, 255.0),
            seed: None,
        }
    }

    /// Sets `value_range`, what outputs are clipped to. Defaults to (0, 255).
    pub fn value_range(mut self, low: f32, high: f32) -> Self {
        self.value_range = (low, high);
        self
    }

    /// Seeds this layer's draws (mixed with the model's per-step seed).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        let factor = match config.get("factor") {
            // A saved pair is (lower, upper), as Keras's `self.factor` holds it.
            Some(Value::Array(_)) => factor_config(config, "factor", "RandomContrast")?,
            Some(Value::Number(f)) => f.as_f64().map(|f| (f as f32, f as f32)),
            _ => None,
        };
        let mut layer = RandomContrast::new(0.0);
        layer.factor =
            factor.ok_or_else(|| Error::Data("RandomContrast needs \"factor\": a number or a list of two".into()))?;
        if let Some(range) = factor_config(config, "value_range", "RandomContrast")? {
            layer.value_range = range;
        }
        layer.seed = args::seed(config)?;
        Ok(layer)
    }
}

layer_builders!(RandomContrast);

impl Layer for RandomContrast {
    fn class_name(&self) -> &'static str {
        "RandomContrast"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        check_range(
            (&self.args.name, "RandomContrast"),
            "factor",
            self.factor,
            (0.0, 1.0),
            false,
        )?;
        let (low, high) = self.value_range;
        if !(low.is_finite() && high.is_finite() && low < high) {
            let value = format!("({low}, {high})");
            return Err(bad_argument(
                &self.args.name,
                "RandomContrast",
                "value_range",
                value,
                "must be finite, low < high",
            ));
        }
        super::image_shape(&self.args.name, input_shape)?;
        Ok(input_shape.to_vec())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        check_after_input(graph, x, &self.args.name, self.class_name())?;
        if !graph.training() {
            return Ok(x);
        }
        let shape = graph.shape(x).to_vec();
        let [height, width, channels] = super::image_shape(&self.args.name, &shape[1..])?;
        let image_len = height * width * channels;
        if image_len == 0 {
            return Ok(x);
        }
        let mut rng = graph.noise_rng(self.seed.unwrap_or_else(|| hash_name(&self.args.name)));
        let (lower, upper) = self.factor;
        let factors: Vec<f32> = (0..shape[0]).map(|_| rng.uniform(1.0 - lower, 1.0 + upper)).collect();
        let source = graph.value(x).data().to_vec();
        let range = self.value_range;
        Ok(graph.constant_with(|out| {
            out.resize_for(&shape);
            out.data_mut()
                .par_chunks_exact_mut(image_len)
                .zip(source.par_chunks_exact(image_len))
                .zip(factors.par_iter())
                .for_each(|((image, source), &factor)| adjust_contrast(source, image, channels, factor, range));
        }))
    }

    fn config(&self) -> Value {
        self.args.config(json!({
            "factor": [self.factor.0, self.factor.1],
            "value_range": [self.value_range.0, self.value_range.1],
            "seed": self.seed,
        }))
    }
}

/// Writes `(x − mean) · factor + mean` per channel of one image into `dest`, clipped to `range`.
fn adjust_contrast(source: &[f32], dest: &mut [f32], channels: usize, factor: f32, (low, high): (f32, f32)) {
    let pixels = (source.len() / channels) as f64;
    let mut means = vec![0.0f64; channels];
    for pixel in source.chunks_exact(channels) {
        for (mean, &value) in means.iter_mut().zip(pixel) {
            *mean += value as f64;
        }
    }
    let means: Vec<f32> = means.iter().map(|sum| (sum / pixels) as f32).collect();
    for (out, pixel) in dest.chunks_exact_mut(channels).zip(source.chunks_exact(channels)) {
        for ((value, &x), &mean) in out.iter_mut().zip(pixel).zip(&means) {
            *value = ((x - mean) * factor + mean).clamp(low, high);
        }
    }
}

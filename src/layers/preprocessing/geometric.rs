//! What the geometric layers ([`RandomFlip`](super::RandomFlip), [`RandomRotation`](super::RandomRotation),
//! [`RandomTranslation`](super::RandomTranslation), [`RandomZoom`](super::RandomZoom)) share:
//! Keras's `fill_mode`, `fill_value` and `interpolation`, and one pass that warps every image of
//! a batch by its own [`Transform`].

use super::bad_argument;
use super::warp::{FILL_MODES, FillMode, InverseMap, Transform, transform_image};
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result};
use crate::layers::args;
use crate::rng::Rng;
use rayon::prelude::*;
use serde_json::{Value, json};

/// A batch is split across threads in runs of images of at least this many values, so a small
/// batch stays on one thread where spawning would cost more than it saves.
const PARALLEL_VALUES: usize = 1 << 14;

/// How a geometric layer reads between and beyond pixels.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Warp {
    /// `"constant"`, `"nearest"`, `"reflect"` or `"wrap"`. Keras's default is `"reflect"`.
    pub fill_mode: String,
    /// The value beyond the edges when `fill_mode` is `"constant"`. Defaults to 0.
    pub fill_value: f32,
    /// Keras accepts `"bilinear"` (its default) and `"nearest"`; strata has bilinear only.
    pub interpolation: String,
}

impl Default for Warp {
    fn default() -> Self {
        Warp {
            fill_mode: "reflect".into(),
            fill_value: 0.0,
            interpolation: "bilinear".into(),
        }
    }
}

impl Warp {
    /// Reads Keras's keys, with Keras's defaults for those absent.
    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        let fill_value = args::number(config, "fill_value")?.unwrap_or(0.0);
        Ok(Warp {
            fill_mode: args::string(config, "fill_mode", "reflect")?,
            fill_value,
            interpolation: args::string(config, "interpolation", "bilinear")?,
        })
    }

    /// Keras's keys for [`Layer::config`](crate::layers::Layer::config).
    pub(crate) fn config(&self) -> [(&'static str, Value); 3] {
        [
            ("fill_mode", json!(self.fill_mode)),
            ("fill_value", json!(self.fill_value)),
            ("interpolation", json!(self.interpolation)),
        ]
    }

    /// The parsed fill, or an error naming the layer and the argument.
    pub(crate) fn checked(&self, layer: &str, class_name: &str) -> Result<(FillMode, f32)> {
        if self.interpolation != "bilinear" {
            return Err(bad_argument(
                layer,
                class_name,
                "interpolation",
                &self.interpolation,
                "strata interpolates \"bilinear\" only",
            ));
        }
        if !self.fill_value.is_finite() {
            return Err(bad_argument(
                layer,
                class_name,
                "fill_value",
                self.fill_value,
                "must be finite",
            ));
        }
        let mode = FillMode::from_name(&self.fill_mode).map_err(|_| {
            let why = format!("must be one of {}", FILL_MODES.join(", "));
            bad_argument(layer, class_name, "fill_mode", &self.fill_mode, &why)
        })?;
        Ok((mode, self.fill_value))
    }
}

/// Records on `graph` the batch `x` with each image warped by the transform `draw` gives it
/// (called in image order with the layer's generator, the image height and width).
pub(crate) fn warp_batch(
    graph: &mut Graph,
    x: Var,
    (layer, salt): (&str, u64),
    fill: (FillMode, f32),
    mut draw: impl FnMut(&mut Rng, usize, usize) -> Transform,
) -> Result<Var> {
    let shape = graph.shape(x).to_vec();
    let [height, width, channels] = super::image_shape(layer, &shape[1..])?;
    let image_len = height * width * channels;
    if image_len == 0 || shape[0] == 0 {
        return Ok(x);
    }
    let mut rng = graph.noise_rng(salt);
    let maps = (0..shape[0])
        .map(|_| {
            let transform = draw(&mut rng, height, width);
            if transform.is_identity() {
                return Ok(None);
            }
            InverseMap::new(&transform, height, width).map(Some).ok_or_else(|| {
                Error::invalid(
                    "transform",
                    format!("{transform:?}"),
                    format!(
                        "layer '{layer}': no pixel may read more than {} pixels away",
                        super::warp::FAR
                    ),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let source = graph.value(x).data().to_vec();
    Ok(graph.constant_with(|out| {
        out.resize_for(&shape);
        out.data_mut()
            .par_chunks_exact_mut(image_len)
            .zip(source.par_chunks_exact(image_len))
            .zip(maps.par_iter())
            .with_min_len(PARALLEL_VALUES.div_ceil(image_len))
            .for_each(|((image, source), map)| match map {
                Some(map) => transform_image(source, image, [height, width, channels], map, fill),
                None => image.copy_from_slice(source),
            });
    }))
}

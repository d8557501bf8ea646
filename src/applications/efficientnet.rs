//! EfficientNetB0–B7, as `keras/src/applications/efficientnet.py` builds them: B0's seven
//! stages of mobile inverted bottlenecks with squeeze-and-excitation and swish, widened and
//! deepened by each variant's coefficients. The model takes 0–255 pixels: it rescales and
//! normalizes them itself.

use super::options::{AutoNames, Options, correct_pad, graph, image_input, pool};
use crate::error::Result;
use crate::initializers::{Distribution, FanMode, Initializer};
use crate::layers::{
    Activation, Add, BatchNormalization, Conv2D, Dense, DepthwiseConv2D, Dropout, GlobalAveragePooling2D, Multiply,
    Normalization, Rescaling, Reshape, ZeroPadding2D,
};
use crate::model::{LayerCall, Model, Node};

/// Keras's `CONV_KERNEL_INITIALIZER`.
pub(super) const CONV_KERNEL: Initializer = Initializer::VarianceScaling {
    scale: 2.0,
    mode: FanMode::FanOut,
    distribution: Distribution::TruncatedNormal,
};

/// Keras's `DENSE_KERNEL_INITIALIZER`.
pub(super) const DENSE_KERNEL: Initializer = Initializer::VarianceScaling {
    scale: 1.0 / 3.0,
    mode: FanMode::FanOut,
    distribution: Distribution::Uniform,
};

/// One stage of B0: (kernel, repeats, filters in, filters out, expansion, stride).
const STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (3, 1, 32, 16, 1, 1),
    (3, 2, 16, 24, 6, 2),
    (5, 2, 24, 40, 6, 2),
    (3, 3, 40, 80, 6, 2),
    (5, 3, 80, 112, 6, 1),
    (5, 4, 112, 192, 6, 2),
    (3, 1, 192, 320, 6, 1),
];

/// Each variant's (width coefficient, depth coefficient, default size, dropout rate), B0 to B7.
pub(super) const VARIANTS: [(f64, f64, usize, f32); 8] = [
    (1.0, 1.0, 224, 0.2),
    (1.0, 1.1, 240, 0.2),
    (1.1, 1.2, 260, 0.3),
    (1.2, 1.4, 300, 0.3),
    (1.4, 1.8, 380, 0.4),
    (1.6, 2.2, 456, 0.4),
    (1.8, 2.6, 528, 0.5),
    (2.0, 3.1, 600, 0.5),
];

/// Keras's `round_filters`: `filters × width` rounded to a multiple of 8, never 10% below.
fn round_filters(filters: usize, width: f64) -> usize {
    let scaled = filters as f64 * width;
    let rounded = ((scaled + 4.0) as usize / 8 * 8).max(8);
    match (rounded as f64) < 0.9 * scaled {
        true => rounded + 8,
        false => rounded,
    }
}

/// One mobile inverted bottleneck `name` (`block2a_`): 1×1 expansion, depthwise convolution,
/// squeeze-and-excitation, 1×1 projection, and with equal shapes a drop-connect residual.
#[allow(clippy::too_many_arguments)]
fn block(
    x: &Node,
    drop_rate: f32,
    name: &str,
    kernel: usize,
    filters_in: usize,
    filters_out: usize,
    expansion: usize,
    stride: usize,
) -> Result<Node> {
    let filters = filters_in * expansion;
    let mut y = x.clone();
    if expansion != 1 {
        y = Conv2D::new(filters, 1)
            .padding("same")
            .use_bias(false)
            .kernel_initializer(CONV_KERNEL)
            .name(&format!("{name}expand_conv"))
            .call(&y)?;
        y = BatchNormalization::new().name(&format!("{name}expand_bn")).call(&y)?;
        y = Activation::new("silu")
            .name(&format!("{name}expand_activation"))
            .call(&y)?;
    }
    if stride == 2 {
        y = ZeroPadding2D::new(correct_pad(&y, kernel))
            .name(&format!("{name}dwconv_pad"))
            .call(&y)?;
    }
    let y = DepthwiseConv2D::new(kernel)
        .strides(stride)
        .padding(if stride == 2 { "valid" } else { "same" })
        .use_bias(false)
        .depthwise_initializer(CONV_KERNEL)
        .name(&format!("{name}dwconv"))
        .call(&y)?;
    let y = BatchNormalization::new().name(&format!("{name}bn")).call(&y)?;
    let y = Activation::new("silu").name(&format!("{name}activation")).call(&y)?;
    // Squeeze and excitation, se_ratio 0.25 of the block's input filters.
    let squeezed = (filters_in / 4).max(1);
    let se = GlobalAveragePooling2D::new()
        .name(&format!("{name}se_squeeze"))
        .call(&y)?;
    let se = Reshape::new(&[1, 1, filters])
        .name(&format!("{name}se_reshape"))
        .call(&se)?;
    let se = Conv2D::new(squeezed, 1)
        .padding("same")
        .activation("silu")
        .kernel_initializer(CONV_KERNEL)
        .name(&format!("{name}se_reduce"))
        .call(&se)?;
    let se = Conv2D::new(filters, 1)
        .padding("same")
        .activation("sigmoid")
        .kernel_initializer(CONV_KERNEL)
        .name(&format!("{name}se_expand"))
        .call(&se)?;
    let y = Multiply::new()
        .name(&format!("{name}se_excite"))
        .call_many(&[&y, &se])?;
    let y = Conv2D::new(filters_out, 1)
        .padding("same")
        .use_bias(false)
        .kernel_initializer(CONV_KERNEL)
        .name(&format!("{name}project_conv"))
        .call(&y)?;
    let mut y = BatchNormalization::new().name(&format!("{name}project_bn")).call(&y)?;
    if stride == 1 && filters_in == filters_out {
        if drop_rate > 0.0 {
            y = Dropout::new(drop_rate)
                .noise_shape(&[None, Some(1), Some(1), Some(1)])
                .name(&format!("{name}drop"))
                .call(&y)?;
        }
        y = Add::new().name(&format!("{name}add")).call_many(&[&y, x])?;
    }
    Ok(y)
}

/// EfficientNetB`variant` (`keras.applications.EfficientNetB0`, ...), not built.
pub(super) fn efficientnet(options: &Options, variant: usize) -> Result<Model> {
    let architecture = format!("EfficientNetB{variant}");
    options.no_family_arguments(&architecture)?;
    let (width, depth, size, dropout) = VARIANTS[variant];
    let shape = options.image_shape(&architecture, size, 32)?;
    let mut auto = AutoNames::default();
    let input = image_input(options, shape);
    let x = Rescaling::new(1.0 / 255.0).name(&auto.next("rescaling")).call(&input)?;
    let x = Normalization::new().name(&auto.next("normalization")).call(&x)?;
    let x = ZeroPadding2D::new(correct_pad(&x, 3)).name("stem_conv_pad").call(&x)?;
    let x = Conv2D::new(round_filters(32, width), 3)
        .strides(2)
        .use_bias(false)
        .kernel_initializer(CONV_KERNEL)
        .name("stem_conv")
        .call(&x)?;
    let x = BatchNormalization::new().name("stem_bn").call(&x)?;
    let mut x = Activation::new("silu").name("stem_activation").call(&x)?;
    let repeats = |r: usize| (depth * r as f64).ceil() as usize;
    let total = STAGES.iter().map(|s| repeats(s.1)).sum::<usize>() as f64;
    let mut b = 0;
    for (i, &(kernel, count, filters_in, filters_out, expansion, stride)) in STAGES.iter().enumerate() {
        let (filters_in, filters_out) = (round_filters(filters_in, width), round_filters(filters_out, width));
        for j in 0..repeats(count) {
            let name = format!("block{}{}_", i + 1, char::from(b'a' + j as u8));
            // Drop-connect grows linearly to 0.2 over the blocks.
            let drop_rate = (0.2 * b as f64 / total) as f32;
            x = match j {
                0 => block(&x, drop_rate, &name, kernel, filters_in, filters_out, expansion, stride)?,
                _ => block(&x, drop_rate, &name, kernel, filters_out, filters_out, expansion, 1)?,
            };
            b += 1;
        }
    }
    let x = Conv2D::new(round_filters(1280, width), 1)
        .padding("same")
        .use_bias(false)
        .kernel_initializer(CONV_KERNEL)
        .name("top_conv")
        .call(&x)?;
    let x = BatchNormalization::new().name("top_bn").call(&x)?;
    let x = Activation::new("silu").name("top_activation").call(&x)?;
    let x = match options.include_top {
        true => {
            let x = GlobalAveragePooling2D::new().name("avg_pool").call(&x)?;
            let x = Dropout::new(dropout).name("top_dropout").call(&x)?;
            Dense::new(options.classes)
                .activation(options.activation())
                .kernel_initializer(DENSE_KERNEL)
                .name("predictions")
                .call(&x)?
        }
        false => pool(x, options, (Some("avg_pool"), Some("max_pool")), &mut auto)?,
    };
    graph(
        &input,
        &x,
        options.name.as_deref().unwrap_or(&format!("efficientnetb{variant}")),
    )
}

//! EfficientNetV2B0–B3, as `keras/src/applications/efficientnet_v2.py` builds them: fused
//! inverted bottlenecks (one full convolution instead of expansion and depthwise) in the early
//! stages, squeeze-and-excitation bottlenecks after, swish, BatchNormalization momentum 0.9.
//! The model takes 0–255 pixels and normalizes them itself with the ImageNet statistics.

use super::efficientnet::{CONV_KERNEL, DENSE_KERNEL};
use super::options::{AutoNames, Options, graph, image_input, pool};
use crate::error::Result;
use crate::initializers::Initializer;
use crate::layers::{
    Activation, Add, BatchNormalization, Conv2D, Dense, DepthwiseConv2D, Dropout, GlobalAveragePooling2D, Multiply,
    Normalization, Rescaling, Reshape,
};
use crate::model::{LayerCall, Model, Node};

/// One stage of the B variants: (fused, repeats, filters in, filters out, expansion, stride,
/// squeeze-excite); every kernel is 3×3.
const STAGES: [(bool, usize, usize, usize, usize, usize, bool); 6] = [
    (true, 1, 32, 16, 1, 1, false),
    (true, 2, 16, 32, 4, 2, false),
    (true, 2, 32, 48, 4, 2, false),
    (false, 3, 48, 96, 4, 2, true),
    (false, 5, 96, 112, 6, 1, true),
    (false, 8, 112, 192, 6, 2, true),
];

/// Each variant's (width coefficient, depth coefficient, default size), B0 to B3.
const VARIANTS: [(f64, f64, usize); 4] = [(1.0, 1.0, 224), (1.0, 1.1, 240), (1.1, 1.2, 260), (1.2, 1.4, 300)];

/// Keras's `round_filters` for V2: `filters × width` rounded to a multiple of 8, at least 8.
fn round_filters(filters: usize, width: f64) -> usize {
    ((filters as f64 * width + 4.0) as usize / 8 * 8).max(8)
}

fn bn(name: &str) -> BatchNormalization {
    BatchNormalization::new().momentum(0.9).name(name)
}

fn conv(filters: usize, kernel: usize, stride: usize, name: &str) -> Conv2D {
    Conv2D::new(filters, kernel)
        .strides(stride)
        .padding("same")
        .use_bias(false)
        .kernel_initializer(CONV_KERNEL)
        .name(name)
}

/// What a block is asked to make.
struct Block<'a> {
    name: &'a str,
    fused: bool,
    filters_in: usize,
    filters_out: usize,
    expansion: usize,
    stride: usize,
    squeeze_excite: bool,
    drop_rate: f32,
}

/// Keras's `MBConvBlock` (expansion, depthwise) or `FusedMBConvBlock` (one 3×3 convolution),
/// each with optional squeeze-and-excitation, a 1×1 projection and, with equal shapes, a
/// drop-connect residual.
fn block(x: &Node, b: &Block) -> Result<Node> {
    let name = b.name;
    let filters = b.filters_in * b.expansion;
    let mut y = x.clone();
    if b.expansion != 1 {
        let (kernel, stride) = if b.fused { (3, b.stride) } else { (1, 1) };
        y = conv(filters, kernel, stride, &format!("{name}expand_conv")).call(&y)?;
        y = bn(&format!("{name}expand_bn")).call(&y)?;
        y = Activation::new("silu")
            .name(&format!("{name}expand_activation"))
            .call(&y)?;
    }
    if !b.fused {
        y = DepthwiseConv2D::new(3)
            .strides(b.stride)
            .padding("same")
            .use_bias(false)
            .depthwise_initializer(CONV_KERNEL)
            .name(&format!("{name}dwconv2"))
            .call(&y)?;
        y = bn(&format!("{name}bn")).call(&y)?;
        y = Activation::new("silu").name(&format!("{name}activation")).call(&y)?;
    }
    if b.squeeze_excite {
        let se = GlobalAveragePooling2D::new()
            .name(&format!("{name}se_squeeze"))
            .call(&y)?;
        let se = Reshape::new(&[1, 1, filters])
            .name(&format!("{name}se_reshape"))
            .call(&se)?;
        let se = Conv2D::new((b.filters_in / 4).max(1), 1)
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
        y = Multiply::new()
            .name(&format!("{name}se_excite"))
            .call_many(&[&y, &se])?;
    }
    // A fused block without expansion does its 3×3 (and stride) here.
    let (kernel, stride) = match b.fused && b.expansion == 1 {
        true => (3, b.stride),
        false => (1, 1),
    };
    y = conv(b.filters_out, kernel, stride, &format!("{name}project_conv")).call(&y)?;
    y = bn(&format!("{name}project_bn")).call(&y)?;
    if b.fused && b.expansion == 1 {
        y = Activation::new("silu")
            .name(&format!("{name}project_activation"))
            .call(&y)?;
    }
    if b.stride == 1 && b.filters_in == b.filters_out {
        if b.drop_rate > 0.0 {
            y = Dropout::new(b.drop_rate)
                .noise_shape(&[None, Some(1), Some(1), Some(1)])
                .name(&format!("{name}drop"))
                .call(&y)?;
        }
        y = Add::new().name(&format!("{name}add")).call_many(&[&y, x])?;
    }
    Ok(y)
}

/// EfficientNetV2B`variant` (`keras.applications.EfficientNetV2B0`, ...), with its
/// preprocessing, not built.
pub(super) fn efficientnet_v2(options: &Options, variant: usize) -> Result<Model> {
    let architecture = format!("EfficientNetV2B{variant}");
    options.family_arguments(&architecture, &["include_preprocessing"])?;
    let (width, depth, size) = VARIANTS[variant];
    let shape = options.image_shape(&architecture, size, 32)?;
    let mut auto = AutoNames::default();
    let input = image_input(options, shape);
    // Keras normalizes three-channel images with the ImageNet statistics, others to [-1, 1];
    // without its preprocessing the model takes them prepared so.
    let x = match shape[2] {
        _ if !options.include_preprocessing => input.clone(),
        3 => {
            let x = Rescaling::new(1.0 / 255.0).name(&auto.next("rescaling")).call(&input)?;
            let variance = [0.229f64, 0.224, 0.225].map(|s| (s * s) as f32).to_vec();
            Normalization::with_statistics(vec![0.485, 0.456, 0.406], variance)
                .name(&auto.next("normalization"))
                .call(&x)?
        }
        _ => Rescaling::new(1.0 / 128.0)
            .offset(-1.0)
            .name(&auto.next("rescaling"))
            .call(&input)?,
    };
    let x = conv(round_filters(STAGES[0].2, width), 3, 2, "stem_conv").call(&x)?;
    let x = bn("stem_bn").call(&x)?;
    let mut x = Activation::new("silu").name("stem_activation").call(&x)?;
    // Keras divides by the repeats before rounding: the drop rate never reaches 0.2.
    let total = STAGES.iter().map(|s| s.1).sum::<usize>() as f64;
    let mut b = 0;
    for (i, &(fused, count, filters_in, filters_out, expansion, stride, squeeze_excite)) in STAGES.iter().enumerate() {
        let (filters_in, filters_out) = (round_filters(filters_in, width), round_filters(filters_out, width));
        for j in 0..(depth * count as f64).ceil() as usize {
            let name = format!("block{}{}_", i + 1, char::from(b'a' + j as u8));
            x = block(
                &x,
                &Block {
                    name: &name,
                    fused,
                    filters_in: if j == 0 { filters_in } else { filters_out },
                    filters_out,
                    expansion,
                    stride: if j == 0 { stride } else { 1 },
                    squeeze_excite,
                    drop_rate: (0.2 * b as f64 / total) as f32,
                },
            )?;
            b += 1;
        }
    }
    let x = conv(round_filters(1280, width), 1, 1, "top_conv").call(&x)?;
    let x = bn("top_bn").call(&x)?;
    let x = Activation::new("silu").name("top_activation").call(&x)?;
    let x = match options.include_top {
        true => {
            let x = GlobalAveragePooling2D::new().name("avg_pool").call(&x)?;
            let x = Dropout::new(0.2).name("top_dropout").call(&x)?;
            Dense::new(options.classes)
                .activation(options.activation())
                .kernel_initializer(DENSE_KERNEL)
                .bias_initializer(Initializer::Constant(0.0))
                .name("predictions")
                .call(&x)?
        }
        false => pool(x, options, (Some("avg_pool"), Some("max_pool")), &mut auto)?,
    };
    let name = format!("efficientnetv2-b{variant}");
    graph(&input, &x, options.name.as_deref().unwrap_or(&name))
}

//! ResNet50/101/152 and ResNet50V2/101V2/152V2, as `keras/src/applications/resnet.py` and
//! `resnet_v2.py` build them: a 7×7 stem, four stacks of bottleneck blocks (v1: post-activation,
//! convolution shortcut in each stack's first block; v2: pre-activation, the stride at each
//! stack's last block), global pooling, the classifier.

use super::options::{AutoNames, Options, graph, image_input, pool};
use crate::error::Result;
use crate::layers::{
    Activation, Add, BatchNormalization, Conv2D, Dense, GlobalAveragePooling2D, MaxPooling2D, ZeroPadding2D,
};
use crate::model::{LayerCall, Model, Node};

/// ResNet's BatchNormalization (epsilon 1.001e-5, Keras's default momentum).
fn bn(name: &str) -> BatchNormalization {
    BatchNormalization::new().epsilon(1.001e-5).name(name)
}

fn relu(x: &Node, name: &str) -> Result<Node> {
    Activation::new("relu").name(name).call(x)
}

/// Keras's `residual_block_v1`: 1×1 (stride), 3×3, 1×1 to `4·filters`, each with
/// BatchNormalization; added to the shortcut (identity, or a strided 1×1 convolution) and
/// passed through ReLU.
fn block_v1(x: &Node, filters: usize, stride: usize, conv_shortcut: bool, name: &str) -> Result<Node> {
    let shortcut = match conv_shortcut {
        true => {
            let s = Conv2D::new(4 * filters, 1)
                .strides(stride)
                .name(&format!("{name}_0_conv"))
                .call(x)?;
            bn(&format!("{name}_0_bn")).call(&s)?
        }
        false => x.clone(),
    };
    let y = Conv2D::new(filters, 1)
        .strides(stride)
        .name(&format!("{name}_1_conv"))
        .call(x)?;
    let y = bn(&format!("{name}_1_bn")).call(&y)?;
    let y = relu(&y, &format!("{name}_1_relu"))?;
    let y = Conv2D::new(filters, 3)
        .padding("same")
        .name(&format!("{name}_2_conv"))
        .call(&y)?;
    let y = bn(&format!("{name}_2_bn")).call(&y)?;
    let y = relu(&y, &format!("{name}_2_relu"))?;
    let y = Conv2D::new(4 * filters, 1).name(&format!("{name}_3_conv")).call(&y)?;
    let y = bn(&format!("{name}_3_bn")).call(&y)?;
    let y = Add::new().name(&format!("{name}_add")).call_many(&[&shortcut, &y])?;
    relu(&y, &format!("{name}_out"))
}

/// Keras's `residual_block_v2`: BatchNormalization and ReLU first ("preact"), then 1×1, 3×3
/// (stride, after explicit padding), 1×1 to `4·filters`; added to the shortcut (a 1×1
/// convolution of the preactivation, a strided 1×1 max pooling, or the identity).
fn block_v2(
    x: &Node,
    filters: usize,
    stride: usize,
    conv_shortcut: bool,
    name: &str,
    auto: &mut AutoNames,
) -> Result<Node> {
    let preact = bn(&format!("{name}_preact_bn")).call(x)?;
    let preact = relu(&preact, &format!("{name}_preact_relu"))?;
    let shortcut = match (conv_shortcut, stride) {
        (true, _) => Conv2D::new(4 * filters, 1)
            .strides(stride)
            .name(&format!("{name}_0_conv"))
            .call(&preact)?,
        (false, 1) => x.clone(),
        (false, _) => MaxPooling2D::new(1)
            .strides(stride)
            .name(&auto.next("max_pooling2d"))
            .call(x)?,
    };
    let y = Conv2D::new(filters, 1)
        .use_bias(false)
        .name(&format!("{name}_1_conv"))
        .call(&preact)?;
    let y = bn(&format!("{name}_1_bn")).call(&y)?;
    let y = relu(&y, &format!("{name}_1_relu"))?;
    let y = ZeroPadding2D::new(1).name(&format!("{name}_2_pad")).call(&y)?;
    let y = Conv2D::new(filters, 3)
        .strides(stride)
        .use_bias(false)
        .name(&format!("{name}_2_conv"))
        .call(&y)?;
    let y = bn(&format!("{name}_2_bn")).call(&y)?;
    let y = relu(&y, &format!("{name}_2_relu"))?;
    let y = Conv2D::new(4 * filters, 1).name(&format!("{name}_3_conv")).call(&y)?;
    Add::new().name(&format!("{name}_out")).call_many(&[&shortcut, &y])
}

/// Keras's `stack_residual_blocks_v1` / `_v2`: `blocks` blocks named `{name}_block1`, ...
fn stack(
    x: Node,
    filters: usize,
    blocks: usize,
    stride: usize,
    name: &str,
    v2: bool,
    auto: &mut AutoNames,
) -> Result<Node> {
    let mut x = x;
    for i in 1..=blocks {
        let block = format!("{name}_block{i}");
        x = match v2 {
            // v1: the stride and the convolution shortcut in the first block.
            false => block_v1(&x, filters, if i == 1 { stride } else { 1 }, i == 1, &block)?,
            // v2: the convolution shortcut in the first block, the stride in the last.
            true => block_v2(&x, filters, if i == blocks { stride } else { 1 }, i == 1, &block, auto)?,
        };
    }
    Ok(x)
}

/// A ResNet with `blocks` bottleneck blocks per stack (`[3, 4, 6, 3]` is ResNet50), v1 or v2,
/// named `name` (Keras's `resnet50`, `resnet50v2`, ...), not built.
pub(super) fn resnet(options: &Options, blocks: [usize; 4], v2: bool, name: &str, architecture: &str) -> Result<Model> {
    options.no_family_arguments(architecture)?;
    let shape = options.image_shape(architecture, 224, 32)?;
    let mut auto = AutoNames::default();
    let input = image_input(options, shape);
    let x = ZeroPadding2D::new(3).name("conv1_pad").call(&input)?;
    let mut x = Conv2D::new(64, 7).strides(2).name("conv1_conv").call(&x)?;
    if !v2 {
        x = bn("conv1_bn").call(&x)?;
        x = relu(&x, "conv1_relu")?;
    }
    let x = ZeroPadding2D::new(1).name("pool1_pad").call(&x)?;
    let mut x = MaxPooling2D::new(3).strides(2).name("pool1_pool").call(&x)?;
    // v1 strides at conv3..conv5's first blocks; v2 at conv2..conv4's last blocks.
    let strides = match v2 {
        false => [1, 2, 2, 2],
        true => [2, 2, 2, 1],
    };
    for (i, (&count, &stride)) in blocks.iter().zip(&strides).enumerate() {
        let filters = 64 << i;
        x = stack(x, filters, count, stride, &format!("conv{}", i + 2), v2, &mut auto)?;
    }
    if v2 {
        x = bn("post_bn").call(&x)?;
        x = relu(&x, "post_relu")?;
    }
    let x = match options.include_top {
        true => {
            let x = GlobalAveragePooling2D::new().name("avg_pool").call(&x)?;
            Dense::new(options.classes)
                .activation(options.activation())
                .name("predictions")
                .call(&x)?
        }
        false => pool(x, options, (Some("avg_pool"), Some("max_pool")), &mut auto)?,
    };
    graph(&input, &x, options.name.as_deref().unwrap_or(name))
}

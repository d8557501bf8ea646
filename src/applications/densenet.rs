//! DenseNet121/169/201, as `keras/src/applications/densenet.py` builds them: four dense blocks
//! (each layer's 32 new channels concatenated to all before it) joined by transitions that
//! halve the channels and the resolution.

use super::options::{AutoNames, Options, graph, image_input, pool};
use crate::error::Result;
use crate::layers::{
    Activation, AveragePooling2D, BatchNormalization, Concatenate, Conv2D, Dense, GlobalAveragePooling2D, MaxPooling2D,
    ZeroPadding2D,
};
use crate::model::{LayerCall, Model, Node};

/// How many channels each layer of a dense block adds.
const GROWTH_RATE: usize = 32;

fn bn(name: &str) -> BatchNormalization {
    BatchNormalization::new().epsilon(1.001e-5).name(name)
}

/// Keras's `conv_block`: BN, ReLU, 1×1 to `4·growth`, BN, ReLU, 3×3 to `growth`, concatenated
/// to the block's input.
fn conv_block(x: &Node, name: &str) -> Result<Node> {
    let y = bn(&format!("{name}_0_bn")).call(x)?;
    let y = Activation::new("relu").name(&format!("{name}_0_relu")).call(&y)?;
    let y = Conv2D::new(4 * GROWTH_RATE, 1)
        .use_bias(false)
        .name(&format!("{name}_1_conv"))
        .call(&y)?;
    let y = bn(&format!("{name}_1_bn")).call(&y)?;
    let y = Activation::new("relu").name(&format!("{name}_1_relu")).call(&y)?;
    let y = Conv2D::new(GROWTH_RATE, 3)
        .padding("same")
        .use_bias(false)
        .name(&format!("{name}_2_conv"))
        .call(&y)?;
    Concatenate::new(-1).name(&format!("{name}_concat")).call_many(&[x, &y])
}

/// Keras's `transition_block` with reduction 0.5: BN, ReLU, 1×1 to half the channels, 2×2
/// average pooling.
fn transition(x: &Node, name: &str) -> Result<Node> {
    let channels = x.shape()[2];
    let y = bn(&format!("{name}_bn")).call(x)?;
    let y = Activation::new("relu").name(&format!("{name}_relu")).call(&y)?;
    let y = Conv2D::new(channels / 2, 1)
        .use_bias(false)
        .name(&format!("{name}_conv"))
        .call(&y)?;
    AveragePooling2D::new(2)
        .strides(2)
        .name(&format!("{name}_pool"))
        .call(&y)
}

/// A DenseNet with `blocks[b]` layers in dense block `b` (`[6, 12, 24, 16]` is DenseNet121),
/// named `name`, not built.
pub(super) fn densenet(options: &Options, blocks: [usize; 4], name: &str, architecture: &str) -> Result<Model> {
    options.no_family_arguments(architecture)?;
    let shape = options.image_shape(architecture, 224, 32)?;
    let mut auto = AutoNames::default();
    let input = image_input(options, shape);
    let x = ZeroPadding2D::new(3).name(&auto.next("zero_padding2d")).call(&input)?;
    let x = Conv2D::new(64, 7)
        .strides(2)
        .use_bias(false)
        .name("conv1_conv")
        .call(&x)?;
    let x = bn("conv1_bn").call(&x)?;
    let x = Activation::new("relu").name("conv1_relu").call(&x)?;
    let x = ZeroPadding2D::new(1).name(&auto.next("zero_padding2d")).call(&x)?;
    let mut x = MaxPooling2D::new(3).strides(2).name("pool1").call(&x)?;
    for (b, &count) in blocks.iter().enumerate() {
        for i in 1..=count {
            x = conv_block(&x, &format!("conv{}_block{i}", b + 2))?;
        }
        if b < 3 {
            x = transition(&x, &format!("pool{}", b + 2))?;
        }
    }
    let x = bn("bn").call(&x)?;
    let x = Activation::new("relu").name("relu").call(&x)?;
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
